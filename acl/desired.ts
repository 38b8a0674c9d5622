// The desired iptables/ipset state, with change tracking so the dataplane diffs only what
// changed since its last successful apply (and everything after a resync).
import type { Family, Table } from './render.js';

export type IpsetType = 'hash:net' | 'hash:ip,port' | 'hash:net,iface';

export interface DesiredIpset {
  name: string;
  type: IpsetType;
  family: Family;
  members: Set<string>;
}

export const FAMILIES: readonly Family[] = [4, 6];
export const TABLES: readonly Table[] = ['filter', 'nat'];

export type ChainKey = string; // `${family}|${table}|${chain}`
export const chainKey = (f: Family, t: Table, name: string): ChainKey => `${f}|${t}|${name}`;
export function splitChainKey(k: ChainKey): { family: Family; table: Table; name: string } {
  const i = k.indexOf('|');
  const j = k.indexOf('|', i + 1);
  return { family: Number(k.slice(0, i)) as Family, table: k.slice(i + 1, j) as Table, name: k.slice(j + 1) };
}

function sameRules(a: readonly string[] | undefined, b: readonly string[]): boolean {
  if (a === b) return true;
  if (!a || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export class DesiredState {
  /** FelixConfiguration chainInsertMode: our jumps at the top (Insert) or bottom of built-in chains. */
  insertMode: 'Insert' | 'Append' = 'Insert';
  /** FelixConfiguration maxIpsetSize. */
  maxIpsetSize = 1048576;
  readonly chains = new Map<ChainKey, string[]>();
  /** Our jump rules at the top (or bottom) of built-in chains: `${family}|${table}|INPUT` → rules. */
  readonly hooks = new Map<ChainKey, string[]>();
  readonly ipsets = new Map<string, DesiredIpset>();
  /** Chains (and hooks) changed since the last `takeChanges()`. */
  private dirtyChains = new Set<ChainKey>();
  private dirtyHooks = new Set<ChainKey>();
  /** Sets created/re-typed/deleted since the last take (compared in full). */
  private dirtySets = new Set<string>();
  /** Member changes of sets not in dirtySets: name → member → added(true)/removed(false). */
  private deltas = new Map<string, Map<string, boolean>>();

  setChain(f: Family, t: Table, name: string, rules: string[]): void {
    const k = chainKey(f, t, name);
    if (sameRules(this.chains.get(k), rules)) return;
    this.chains.set(k, rules);
    this.dirtyChains.add(k);
  }

  deleteChain(f: Family, t: Table, name: string): void {
    const k = chainKey(f, t, name);
    if (!this.chains.has(k)) return;
    this.chains.delete(k);
    this.dirtyChains.add(k);
  }

  hasChain(f: Family, t: Table, name: string): boolean {
    return this.chains.has(chainKey(f, t, name));
  }

  setHook(f: Family, t: Table, builtin: string, rules: string[]): void {
    const k = chainKey(f, t, builtin);
    if (sameRules(this.hooks.get(k), rules)) return;
    this.hooks.set(k, rules);
    this.dirtyHooks.add(k);
  }

  ensureIpset(name: string, type: IpsetType, family: Family): DesiredIpset {
    const cur = this.ipsets.get(name);
    if (cur && cur.type === type && cur.family === family) return cur;
    const s: DesiredIpset = { name, type, family, members: cur ? cur.members : new Set() };
    this.ipsets.set(name, s);
    this.dirtySets.add(name);
    this.deltas.delete(name);
    return s;
  }

  deleteIpset(name: string): void {
    if (!this.ipsets.delete(name)) return;
    this.dirtySets.add(name);
    this.deltas.delete(name);
  }

  addMember(name: string, member: string): void {
    const s = this.ipsets.get(name);
    if (!s || s.members.has(member)) return;
    s.members.add(member);
    this.delta(name, member, true);
  }

  delMember(name: string, member: string): void {
    const s = this.ipsets.get(name);
    if (!s || !s.members.has(member)) return;
    s.members.delete(member);
    this.delta(name, member, false);
  }

  private delta(name: string, member: string, add: boolean): void {
    if (this.dirtySets.has(name)) return;
    let d = this.deltas.get(name);
    if (!d) this.deltas.set(name, (d = new Map()));
    d.set(member, add);
  }

  /** Everything dirty (after a resync the dataplane compares all). */
  markAllDirty(): void {
    for (const k of this.chains.keys()) this.dirtyChains.add(k);
    for (const k of this.hooks.keys()) this.dirtyHooks.add(k);
    for (const k of this.ipsets.keys()) this.dirtySets.add(k);
    this.deltas.clear();
  }

  /** True when something changed since the last take. */
  get dirty(): boolean {
    return this.dirtyChains.size > 0 || this.dirtyHooks.size > 0 || this.dirtySets.size > 0 || this.deltas.size > 0;
  }

  /** Hands the pending changes to the dataplane; on a failed apply it calls `markAllDirty()`. */
  takeChanges(): { chains: Set<ChainKey>; hooks: Set<ChainKey>; sets: Set<string>; deltas: Map<string, Map<string, boolean>> } {
    const out = { chains: this.dirtyChains, hooks: this.dirtyHooks, sets: this.dirtySets, deltas: this.deltas };
    this.dirtyChains = new Set();
    this.dirtyHooks = new Set();
    this.dirtySets = new Set();
    this.deltas = new Map();
    return out;
  }

  stats(): { chains: number; rules: number; ipsets: number; members: number } {
    let rules = 0;
    for (const r of this.chains.values()) rules += r.length;
    let members = 0;
    for (const s of this.ipsets.values()) members += s.members.size;
    return { chains: this.chains.size, rules, ipsets: this.ipsets.size, members };
  }
}
