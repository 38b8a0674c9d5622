// Applying DesiredState to the kernel: iptables-save / ipset save to read (validated: garbage
// fails loudly), minimal diffs, one `iptables-restore --noflush` per table and family, and
// `ipset restore` before (creates, added members) and after (removed members, destroys) the rule changes.
//
// Rules are identified by a hash comment `<tag>:<16 chars>` (tag = prefix without its
// trailing dash, `pet` by default): base64url(SHA-224(chain + rule + occurrence)), so a rule
// keeps its id wherever it moves and a chain diff is a prefix/suffix match. Only chains with
// our prefix are ever created, flushed or deleted; in built-in chains we touch only rules
// carrying our hash comment.
import { existsSync } from 'node:fs';
import { counter, gauge, histogram } from '../agent/metrics.js';
import { defaultExec, type Exec } from './exec.js';
import { defaultSpawner, IpsetSession, type SessionSpawner } from './ipset-session.js';
import { logger, type Logger } from '../agent/log.js';
import { chainKey, splitChainKey, TABLES, type ChainKey, type DesiredState, type IpsetType } from './desired.js';
import { b64hash, DEFAULT_PREFIX, Names, type Family, type Table } from './render.js';

export type Backend = 'nft' | 'legacy';

const restoreSeconds = histogram({
  name: 'petrel_iptables_restore_seconds',
  help: 'Time taken by one iptables-restore / ipset restore run',
  labelNames: ['family', 'table'],
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
});
const restoreErrors = counter({
  name: 'petrel_iptables_restore_errors_total',
  help: 'Failed iptables-restore / ipset restore runs',
  labelNames: ['family', 'table'],
});
const ipsetMembers = gauge({ name: 'petrel_ipset_members', help: 'Members of Petrel ipsets programmed in the kernel' });

export { defaultExec, type Exec, type ExecResult } from './exec.js';

/** Unparseable iptables-save / ipset output: never act on it. */
export class DataplaneReadError extends Error {
  override name = 'DataplaneReadError';
}

export class DataplaneWriteError extends Error {
  override name = 'DataplaneWriteError';
}

// ---------------------------------------------------------------------------------------
// Parsing

export interface TableState {
  /** every chain in the table (ours and others'). */
  chains: Set<string>;
  /** our chains: rule hashes in order ('' for a rule without our hash). */
  ours: Map<string, string[]>;
  /** built-in chains: our rules' hashes with their 1-based positions, and the rule count. */
  builtins: Map<string, { hashes: Array<{ hash: string; pos: number }>; count: number }>;
}

const BUILTIN = new Set(['INPUT', 'FORWARD', 'OUTPUT', 'PREROUTING', 'POSTROUTING']);

/** Parses `iptables-save -t <table>` output. Throws DataplaneReadError on anything unexpected. */
export function parseIptablesSave(text: string, table: Table, names: Names): TableState {
  const st: TableState = { chains: new Set(), ours: new Map(), builtins: new Map() };
  const hashRe = new RegExp(`--comment "?${escapeRe(names.tag)}:([A-Za-z0-9_-]{16})"?(?:\\s|$)`);
  let inTable = false;
  let committed = false;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trimEnd();
    if (line === '' || line.startsWith('#')) {
      if (/incompatible|use 'nft'|legacy tables present/i.test(line)) throw new DataplaneReadError(`iptables-save (${table}) line ${i + 1}: ${line}`);
      continue;
    }
    if (line.startsWith('*')) {
      if (line.slice(1) !== table) throw new DataplaneReadError(`iptables-save: expected table ${table}, got ${line}`);
      inTable = true;
      continue;
    }
    if (!inTable) throw new DataplaneReadError(`iptables-save (${table}) line ${i + 1}: unexpected ${JSON.stringify(line.slice(0, 80))} before the table header`);
    if (line === 'COMMIT') {
      committed = true;
      inTable = false;
      continue;
    }
    if (line.startsWith(':')) {
      const m = line.match(/^:(\S+) (\S+) \[\d+:\d+\]$/);
      if (!m) throw new DataplaneReadError(`iptables-save (${table}) line ${i + 1}: bad chain line ${JSON.stringify(line)}`);
      st.chains.add(m[1]!);
      if (names.isOurChain(m[1]!)) st.ours.set(m[1]!, []);
      if (BUILTIN.has(m[1]!)) st.builtins.set(m[1]!, { hashes: [], count: 0 });
      continue;
    }
    if (line.startsWith('-A ')) {
      const sp = line.indexOf(' ', 3);
      const chain = sp < 0 ? line.slice(3) : line.slice(3, sp);
      const m = line.match(hashRe);
      const ours = st.ours.get(chain);
      if (ours) {
        ours.push(m ? m[1]! : '');
        continue;
      }
      const b = st.builtins.get(chain);
      if (b) {
        b.count++;
        if (m) b.hashes.push({ hash: m[1]!, pos: b.count });
        continue;
      }
      if (!st.chains.has(chain)) throw new DataplaneReadError(`iptables-save (${table}) line ${i + 1}: rule for undeclared chain ${chain}`);
      continue;
    }
    throw new DataplaneReadError(`iptables-save (${table}) line ${i + 1}: unexpected ${JSON.stringify(line.slice(0, 80))}`);
  }
  if (inTable || (!committed && st.chains.size > 0)) throw new DataplaneReadError(`iptables-save (${table}): output ends without COMMIT`);
  return st;
}

export interface IpsetState {
  type: string;
  family: string;
  maxelem?: number;
  members: Set<string>;
}

/** Parses `ipset save` output, keeping our sets. Throws DataplaneReadError on garbage. */
export function parseIpsetSave(text: string, names: Names): Map<string, IpsetState> {
  const sets = new Map<string, IpsetState>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (!line) continue;
    const parts = line.split(/\s+/);
    if (parts[0] === 'create' && parts.length >= 3) {
      if (!names.isOurIpset(parts[1]!)) continue;
      const fi = parts.indexOf('family');
      const mi = parts.indexOf('maxelem');
      sets.set(parts[1]!, {
        type: parts[2]!,
        family: fi > 0 ? parts[fi + 1]! : 'inet',
        maxelem: mi > 0 ? Number(parts[mi + 1]) : undefined,
        members: new Set(),
      });
      continue;
    }
    if (parts[0] === 'add' && parts.length >= 3) {
      const s = sets.get(parts[1]!);
      if (s) s.members.add(parts[2]!);
      else if (names.isOurIpset(parts[1]!)) throw new DataplaneReadError(`ipset save line ${i + 1}: member of undeclared set ${parts[1]}`);
      continue;
    }
    throw new DataplaneReadError(`ipset save line ${i + 1}: unexpected ${JSON.stringify(line.slice(0, 80))}`);
  }
  return sets;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

// ---------------------------------------------------------------------------------------
// Hashing

const hashCache = new Map<string, string>();

/**
 * Rule ids: base64url(SHA-224(rule, occurrence)) cut to 16 characters. Ids only need to be
 * unique within a chain (duplicates are told apart by their occurrence), so identical rules in
 * different chains share an id and its computation (memoized).
 */
export function ruleHashes(_chain: string, rules: readonly string[]): string[] {
  const seen = new Map<string, number>();
  const out = new Array<string>(rules.length);
  for (let i = 0; i < rules.length; i++) {
    const r = rules[i]!;
    const n = seen.get(r) ?? 0;
    seen.set(r, n + 1);
    const key = n === 0 ? r : `${r}\0${n}`;
    let h = hashCache.get(key);
    if (!h) {
      h = b64hash('sha224', key).slice(0, 16);
      if (hashCache.size > 500_000) hashCache.clear();
      hashCache.set(key, h);
    }
    out[i] = h;
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Backend detection (Felix / kubernetes-sigs iptables-wrappers), binaries

export interface Binaries {
  save: string;
  restore: string;
}

export function binaries(backend: Backend, family: Family): Binaries {
  const base = family === 4 ? 'iptables' : 'ip6tables';
  const mode = (b: string) => (existsSync(`/usr/sbin/${b}`) || existsSync(`/sbin/${b}`) || existsSync(`/usr/bin/${b}`) ? b : undefined);
  return {
    save: mode(`${base}-${backend}-save`) ?? `${base}-save`,
    restore: mode(`${base}-${backend}-restore`) ?? `${base}-restore`,
  };
}

/**
 * nft when the nft tables hold the kube canaries, else legacy when the legacy tables do,
 * else the one with more rules; a tie goes to the system's default `iptables` (whose
 * `--version` names its backend). Legacy is probed only when its module is loaded.
 */
export async function detectBackend(exec: Exec, log?: Logger): Promise<Backend> {
  const hint = /KUBE-IPTABLES-HINT|KUBE-KUBELET-CANARY/;
  const count = (t: string) => t.split('\n').filter((l) => l.startsWith('-A ')).length;
  const nft = await exec('iptables-nft-save', ['-t', 'mangle']).catch(() => undefined);
  const nft6 = await exec('ip6tables-nft-save', ['-t', 'mangle']).catch(() => undefined);
  const nftText = `${nft?.stdout ?? ''}${nft6?.stdout ?? ''}`;
  if (hint.test(nftText)) return 'nft';
  let legacyText = '';
  if (existsSync('/proc/net/ip_tables_names')) {
    const l = await exec('iptables-legacy-save', ['-t', 'mangle']).catch(() => undefined);
    const l6 = await exec('ip6tables-legacy-save', ['-t', 'mangle']).catch(() => undefined);
    legacyText = `${l?.stdout ?? ''}${l6?.stdout ?? ''}`;
    if (hint.test(legacyText)) return 'legacy';
  }
  const nNft = nft && nft.code === 0 ? count(nftText) : -1;
  const nLegacy = count(legacyText);
  if (nNft > nLegacy) return 'nft';
  if (nLegacy > nNft) return 'legacy';
  const v = await exec('iptables', ['--version']).catch(() => undefined);
  const backend: Backend = v && /legacy/.test(v.stdout) ? 'legacy' : nft && nft.code === 0 ? 'nft' : 'legacy';
  log?.debug({ backend }, 'iptables backend: tie, following the system default');
  return backend;
}

// ---------------------------------------------------------------------------------------
// The dataplane

export interface IptablesDataplaneOptions {
  prefix?: string;
  ipVersions?: Family[];
  log?: Logger;
  /** `auto` (default) detects; FelixConfiguration iptablesBackend. */
  backend?: Backend | 'auto';
  exec?: Exec;
  /** full re-read and repair period (FelixConfiguration iptablesRefreshInterval, default 90 s). */
  refreshIntervalMs?: number;
  /** seconds to wait for the xtables lock (`-w`). */
  lockTimeoutSecs?: number;
  /** Insert (top, default) or Append our jumps into built-in chains. */
  chainInsertMode?: 'Insert' | 'Append';
  maxIpsetSize?: number;
  /** Called with every restore input, for tests and debugging. */
  onRestore?: (what: string, input: string) => void;
  /**
   * Starts the long-lived `ipset -` session used for small member changes; `false` sends
   * everything through `ipset restore`. Default: on when commands run directly (no `exec`).
   */
  ipsetSession?: SessionSpawner | false;
}

/** Member changes up to this many lines go through the ipset session; more through `ipset restore`. */
const SESSION_MAX_LINES = 256;

export interface DataplaneStatus {
  backend?: Backend;
  applied: boolean;
  /** an apply is running. */
  applying: boolean;
  lastApply?: string;
  lastApplyMs?: number;
  lastError?: string;
  applies: number;
  errors: number;
  chains: number;
  rules: number;
  ipsets: number;
  ipsetMembers: number;
}

type Changes = ReturnType<DesiredState['takeChanges']>;

interface IpsetChanges {
  /** `create` lines of new sets. */
  creates: string;
  /** Members added, and sets re-created under another type (through a temp set and swap). */
  fills: string;
  /** Members removed. */
  dels: string;
  /** Sets destroyed. */
  post: string;
}

/** An iptables-restore input for one table. */
function restoreText(t: Table, ...parts: string[][]): string {
  return [`*${t}`, ...parts.flat(), 'COMMIT', ''].join('\n');
}

/** Waits for all; then throws the first failure (none left running behind a rejection). */
async function settled(ps: Array<Promise<unknown>>): Promise<void> {
  const rs = await Promise.allSettled(ps);
  const failed = rs.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

interface KernelView {
  tables: Map<string, TableState>; // `${family}|${table}`
  ipsets: Map<string, IpsetState>;
}

export class IptablesDataplane {
  readonly names: Names;
  readonly families: Family[];
  private readonly log: Logger;
  private readonly exec: Exec;
  private backend?: Backend;
  private kernel?: KernelView;
  private desiredRef?: DesiredState;
  private timer?: NodeJS.Timeout;
  private running: Promise<void> = Promise.resolve();
  private tempCounter = 0;
  private readonly st: DataplaneStatus = { applied: false, applying: false, applies: 0, errors: 0, chains: 0, rules: 0, ipsets: 0, ipsetMembers: 0 };

  private readonly session?: IpsetSession;

  constructor(private readonly opts: IptablesDataplaneOptions = {}) {
    this.names = new Names(opts.prefix ?? DEFAULT_PREFIX);
    this.families = opts.ipVersions ?? [4, 6];
    this.log = opts.log ?? logger('iptables');
    this.exec = opts.exec ?? defaultExec;
    if (opts.backend && opts.backend !== 'auto') this.backend = opts.backend;
    const spawner = opts.ipsetSession ?? (this.exec === defaultExec ? defaultSpawner : false);
    if (spawner) this.session = new IpsetSession(spawner, this.log);
  }

  /** Detects the backend and starts the periodic resync (which re-applies the last desired state). */
  private started = false;

  async start(): Promise<void> {
    this.started = true;
    if (!this.backend) {
      this.backend = await detectBackend(this.exec, this.log);
      this.log.info({ backend: this.backend }, 'iptables backend chosen');
    }
    this.st.backend = this.backend;
    const every = this.opts.refreshIntervalMs ?? 90_000;
    if (every > 0 && !this.timer) {
      this.timer = setInterval(() => void this.resync().catch((e) => this.log.warn({ err: String(e) }, 'periodic resync failed')), every);
      this.timer.unref();
    }
  }

  stop(): void {
    this.started = false;
    this.session?.close();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  status(): DataplaneStatus {
    return { ...this.st };
  }

  /** Re-reads the kernel and repairs any drift against the last applied desired state. */
  async resync(): Promise<void> {
    this.kernel = undefined;
    if (this.desiredRef) {
      this.desiredRef.markAllDirty();
      await this.apply(this.desiredRef);
    }
  }

  /**
   * Makes the kernel match `desired`: only what changed since the last apply, everything
   * after a resync or a failure (the kernel is then re-read first). Serialized.
   */
  apply(desired: DesiredState): Promise<void> {
    const run = this.running.then(() => this.applyNow(desired));
    this.running = run.catch(() => undefined);
    return run;
  }

  private async applyNow(desired: DesiredState): Promise<void> {
    this.st.applying = true;
    try {
      await this.applyInner(desired);
    } finally {
      this.st.applying = false;
    }
  }

  private async applyInner(desired: DesiredState): Promise<void> {
    if (!this.backend) {
      this.backend = await detectBackend(this.exec, this.log);
      this.st.backend = this.backend;
      this.log.info({ backend: this.backend }, 'iptables backend chosen');
    }
    this.desiredRef = desired;
    const t0 = performance.now();
    if (!this.kernel) desired.markAllDirty();
    const changes = desired.takeChanges();
    try {
      const fresh = !this.kernel;
      if (!this.kernel) this.kernel = await this.readKernel();
      const kernel = this.kernel;
      // Dark: none of our rules is in a built-in chain, so nothing reaches our chains (a fresh
      // node, or after our hooks were removed). Then sets can be filled while the chains are
      // written, and the hooks go in last.
      const dark = this.families.every((f) => TABLES.every((t) => [...(kernel.tables.get(`${f}|${t}`)?.builtins.values() ?? [])].every((b) => !b.hashes.length)));
      const sets = this.ipsetRestore(desired, changes.sets, changes.deltas, kernel);
      if (dark) await this.applyDark(desired, changes, kernel, fresh, sets);
      else await this.applyLive(desired, changes, kernel, fresh, sets);
      // Then sets no longer referenced.
      if (sets.post) {
        try {
          await this.restoreIpset(sets.post);
        } catch (e) {
          // A set still referenced by someone else's rule: keep it, retry on the next resync.
          this.log.warn({ err: String(e) }, 'could not destroy stale ipsets; will retry');
          this.kernel = undefined;
        }
      }
      this.st.applied = true;
      this.st.applies++;
      this.st.lastApply = new Date().toISOString();
      this.st.lastApplyMs = performance.now() - t0;
      this.st.lastError = undefined;
      const s = desired.stats();
      Object.assign(this.st, { chains: s.chains, rules: s.rules, ipsets: s.ipsets, ipsetMembers: s.members });
      ipsetMembers.set(s.members);
    } catch (e) {
      this.st.errors++;
      this.st.lastError = String((e as Error).message ?? e);
      this.kernel = undefined; // re-read and compare everything next time
      desired.markAllDirty();
      this.log.error({ err: this.st.lastError }, 'dataplane apply failed; will re-read the kernel and retry');
      this.scheduleRetry();
      throw e;
    }
  }

  /**
   * With our chains reachable: (1) sets created and filled, (2) rules, (3) removed members.
   * A workload moving to another body's interface set is never in neither set while the
   * dispatch rule for the new one is written; a rule never names a set not yet filled.
   */
  private async applyLive(desired: DesiredState, changes: Changes, kernel: KernelView, fresh: boolean, sets: IpsetChanges): Promise<void> {
    const pre = sets.creates + sets.fills;
    // Sets must exist (and be filled) before rules name them: when there are creates, their
    // restore starts now and the rule text is built while it runs. Added members alone run
    // alongside step 2.
    const membersOnly = pre !== '' && !/^(create|swap) /m.test(pre);
    const setsDone = pre && !membersOnly ? this.restoreIpset(pre) : undefined;
    setsDone?.catch(() => undefined); // awaited below; not an unhandled rejection meanwhile
    const tables: Array<{ f: Family; t: Table; input: string }> = [];
    for (const f of this.families) {
      for (const t of TABLES) {
        const r = this.tableRestore(desired, f, t, changes.chains, changes.hooks, kernel, fresh);
        // Hooks are inserted after our chains exist and removed before they go.
        if (r) tables.push({ f, t, input: restoreText(t, r.decl, r.body, r.hookOps, r.deletes) });
      }
    }
    await setsDone;
    if (!tables.length) {
      // Membership only (a pod add/delete whose body chains exist).
      const rest = (membersOnly ? pre : '') + sets.dels;
      if (rest) await this.changeMembers(rest);
      return;
    }
    // IPv4 and IPv6 are separate kernel tables, restored side by side.
    await settled([
      ...(membersOnly ? [this.changeMembers(pre)] : []),
      ...this.families.map(async (f) => {
        for (const x of tables) if (x.f === f) await this.restoreTable(x.f, x.t, x.input);
      }),
    ]);
    if (sets.dels) await this.changeMembers(sets.dels);
  }

  /**
   * With nothing of ours reachable: new sets created, then their members, the chains of each
   * family (as soon as its text is built) and member removals all at once; then the hooks.
   */
  private async applyDark(desired: DesiredState, changes: Changes, kernel: KernelView, fresh: boolean, sets: IpsetChanges): Promise<void> {
    // Creating many sets is mostly waiting (the kernel grows its set table 64 at a time, an
    // RCU grace period each: ~150 ms for 1000 sets, little CPU): the rule text is built meanwhile.
    const created = sets.creates ? this.restoreIpset(sets.creates) : Promise.resolve();
    const filling = created.then(() => {
      // The creates again (no-ops under -exist): ipset looks up the type of a set it did not
      // create in the same run once per `add` line, which made 58k adds 2.7x slower.
      return sets.fills || sets.dels ? this.changeMembers(sets.creates + sets.fills + sets.dels) : undefined;
    });
    const work: Promise<unknown>[] = [filling];
    filling.catch(() => undefined);
    const hooks: Array<{ f: Family; t: Table; input: string }> = [];
    for (const f of this.families) {
      const chains: Array<{ t: Table; input: string }> = [];
      for (const t of TABLES) {
        const r = this.tableRestore(desired, f, t, changes.chains, changes.hooks, kernel, fresh);
        if (!r) continue;
        if (r.decl.length || r.body.length || r.deletes.length) chains.push({ t, input: restoreText(t, r.decl, r.body, r.deletes) });
        if (r.hookOps.length) hooks.push({ f, t, input: restoreText(t, r.hookOps) });
      }
      const p = created.then(async () => {
        for (const x of chains) await this.restoreTable(f, x.t, x.input);
      });
      p.catch(() => undefined);
      work.push(p);
      // Let this family's restore start before the next family's text is built.
      await new Promise((res) => setImmediate(res));
    }
    await settled(work);
    await settled(this.families.map(async (f) => {
      for (const x of hooks) if (x.f === f) await this.restoreTable(f, x.t, x.input);
    }));
  }

  private retryTimer?: NodeJS.Timeout;
  private retryDelayMs = 0;

  /** After a failure, re-applies the last desired state with backoff (1 s doubling to 30 s) while started. */
  private scheduleRetry(): void {
    if (!this.started || this.retryTimer) return;
    this.retryDelayMs = Math.min(30_000, this.retryDelayMs ? this.retryDelayMs * 2 : 1000);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.desiredRef) this.apply(this.desiredRef).then(() => (this.retryDelayMs = 0), () => undefined);
    }, this.retryDelayMs);
    this.retryTimer.unref();
  }

  private async readKernel(): Promise<KernelView> {
    // Every table and the ipsets at once: separate processes, separate kernel tables.
    const reads = this.families.flatMap((f) => {
      const bin = binaries(this.backend!, f);
      return TABLES.map(async (t) => {
        const r = await this.exec(bin.save, ['-t', t]);
        if (r.code !== 0) throw new DataplaneReadError(`${bin.save} -t ${t} exited ${r.code}: ${r.stderr.trim()}`);
        if (/incompatible|use 'nft' tool/i.test(r.stderr)) throw new DataplaneReadError(`${bin.save} -t ${t}: ${r.stderr.trim()}`);
        return [`${f}|${t}`, parseIptablesSave(r.stdout, t, this.names)] as const;
      });
    });
    const sets = this.exec('ipset', ['save']).then((r) => {
      if (r.code !== 0) throw new DataplaneReadError(`ipset save exited ${r.code}: ${r.stderr.trim()}`);
      return parseIpsetSave(r.stdout, this.names);
    });
    const [tables, ipsets] = await Promise.all([Promise.all(reads), sets]);
    return { tables: new Map(tables), ipsets };
  }

  private ipsetRestore(
    desired: DesiredState,
    full: Set<string>,
    deltas: Map<string, Map<string, boolean>>,
    kernel: KernelView,
  ): { creates: string; fills: string; dels: string; post: string } {
    const creates: string[] = [];
    const pre: string[] = [];
    const dels: string[] = [];
    const post: string[] = [];
    const maxelem = this.opts.maxIpsetSize ?? desired.maxIpsetSize;
    const create = (name: string, type: IpsetType, family: Family) =>
      `create ${name} ${type} family ${family === 4 ? 'inet' : 'inet6'} maxelem ${maxelem}`;
    // Sets to compare in full: the dirty ones, plus (after a read) every kernel set of ours.
    const names = new Set(full);
    for (const name of names) {
      const want = desired.ipsets.get(name);
      const have = kernel.ipsets.get(name);
      if (!want) {
        if (have) {
          post.push(`destroy ${name}`);
          kernel.ipsets.delete(name);
        }
        continue;
      }
      const fam = want.family === 4 ? 'inet' : 'inet6';
      if (!have) {
        creates.push(create(name, want.type, want.family));
        for (const m of want.members) pre.push(`add ${name} ${m}`);
        kernel.ipsets.set(name, { type: want.type, family: fam, maxelem, members: new Set(want.members) });
      } else if (have.type !== want.type || have.family !== fam || (have.maxelem !== undefined && have.maxelem !== maxelem)) {
        // Re-created with another type: fill a temp set and swap it in atomically.
        const tmp = this.names.tempIpset(want.family, this.tempCounter++ % 1000);
        pre.push(`create ${tmp} ${want.type} family ${fam} maxelem ${maxelem}`);
        for (const m of want.members) pre.push(`add ${tmp} ${m}`);
        pre.push(`swap ${name} ${tmp}`, `destroy ${tmp}`);
        kernel.ipsets.set(name, { type: want.type, family: fam, maxelem, members: new Set(want.members) });
      } else {
        for (const m of have.members) if (!want.members.has(m)) dels.push(`del ${name} ${m}`);
        for (const m of want.members) if (!have.members.has(m)) pre.push(`add ${name} ${m}`);
        have.members = new Set(want.members);
      }
    }
    for (const [name, d] of deltas) {
      if (names.has(name)) continue;
      const have = kernel.ipsets.get(name);
      if (!have) continue;
      for (const [m, add] of d) {
        if (add && !have.members.has(m)) {
          pre.push(`add ${name} ${m}`);
          have.members.add(m);
        } else if (!add && have.members.has(m)) {
          dels.push(`del ${name} ${m}`);
          have.members.delete(m);
        }
      }
    }
    // Stale sets of ours the desired state never mentioned (after a restart).
    for (const name of [...kernel.ipsets.keys()]) {
      if (!desired.ipsets.has(name) && !names.has(name)) {
        post.push(`destroy ${name}`);
        kernel.ipsets.delete(name);
      }
    }
    const text = (l: string[]) => (l.length ? l.join('\n') + '\n' : '');
    return { creates: text(creates), fills: text(pre), dels: text(dels), post: text(post) };
  }

  /**
   * What to restore in one family's table: `decl` and `body` (declarations and rules of our
   * chains), `deletes` (stale chains of ours) and `hookOps` (our rules in the built-in chains:
   * removed before the chains they jump to go, inserted after those chains exist). Undefined:
   * nothing to do.
   */
  private tableRestore(
    desired: DesiredState,
    f: Family,
    t: Table,
    dirty: Set<ChainKey>,
    dirtyHooks: Set<ChainKey>,
    kernel: KernelView,
    fresh: boolean,
  ): { decl: string[]; body: string[]; hookOps: string[]; deletes: string[] } | undefined {
    const ts = kernel.tables.get(`${f}|${t}`)!;
    const decl: string[] = [];
    const body: string[] = [];
    const deletes: string[] = [];
    const tag = this.names.tag;
    const withHash = (h: string, rule: string) => `-m comment --comment "${tag}:${h}" ${rule}`;
    const updated = new Map<string, string[]>();
    // Which chains to compare: dirty ones of this table, and every one of ours in the kernel
    // that the desired state does not hold (stale).
    const toCheck = new Set<string>();
    for (const k of dirty) {
      const c = splitChainKey(k);
      if (c.family === f && c.table === t) toCheck.add(c.name);
    }
    // Chains of ours the desired state does not know (stale, e.g. from before a restart) are
    // looked for after each kernel read; between reads deletions arrive as dirty chains.
    if (fresh) for (const name of ts.ours.keys()) if (!desired.chains.has(chainKey(f, t, name))) toCheck.add(name);
    // Top-down order (top-level, dispatch, endpoint, then policy/profile chains): with nft,
    // adding a jump makes the kernel walk the target chain for loops, so referencing rules go
    // in while their targets are still empty.
    const ordered = [...toCheck].sort((a, b) => this.rank(a) - this.rank(b) || (a < b ? -1 : a > b ? 1 : 0));
    for (const name of ordered) {
      const rules = desired.chains.get(chainKey(f, t, name));
      const have = ts.ours.get(name);
      if (!rules) {
        if (have) {
          decl.push(`:${name} - [0:0]`);
          deletes.push(`-X ${name}`);
          ts.ours.delete(name);
          ts.chains.delete(name);
        }
        continue;
      }
      const want = ruleHashes(name, rules);
      if (!have) {
        decl.push(`:${name} - [0:0]`);
        rules.forEach((r, i) => body.push(`-A ${name} ${withHash(want[i]!, r)}`));
        updated.set(name, want);
        continue;
      }
      let p = 0;
      while (p < have.length && p < want.length && have[p] === want[p]) p++;
      let s = 0;
      while (s < have.length - p && s < want.length - p && have[have.length - 1 - s] === want[want.length - 1 - s]) s++;
      const nDel = have.length - p - s;
      const nIns = want.length - p - s;
      if (nDel === 0 && nIns === 0) continue;
      if (nDel + nIns > Math.max(8, want.length / 2)) {
        decl.push(`:${name} - [0:0]`); // flushes the chain in --noflush mode
        rules.forEach((r, i) => body.push(`-A ${name} ${withHash(want[i]!, r)}`));
      } else {
        for (let i = 0; i < nDel; i++) body.push(`-D ${name} ${p + 1}`);
        for (let i = 0; i < nIns; i++) body.push(`-I ${name} ${p + 1 + i} ${withHash(want[p + i]!, rules[p + i]!)}`);
      }
      updated.set(name, want);
    }
    // Our jump rules in built-in chains.
    const hookChains = new Set<string>();
    for (const k of dirtyHooks) {
      const c = splitChainKey(k);
      if (c.family === f && c.table === t) hookChains.add(c.name);
    }
    if (fresh) for (const [builtin, b] of ts.builtins) if (b.hashes.length) hookChains.add(builtin);
    const hookOps: string[] = [];
    const insertMode = this.opts.chainInsertMode ?? desired.insertMode;
    for (const builtin of hookChains) {
      const rules = desired.hooks.get(chainKey(f, t, builtin)) ?? [];
      const want = ruleHashes(builtin, rules);
      const b = ts.builtins.get(builtin) ?? { hashes: [], count: 0 };
      const haveHashes = b.hashes.map((x) => x.hash);
      const inPlace =
        insertMode === 'Insert'
          ? b.hashes.every((x, i) => x.pos === i + 1) && haveHashes.join() === want.join()
          : b.hashes.every((x, i) => x.pos === b.count - b.hashes.length + i + 1) && haveHashes.join() === want.join();
      if (inPlace) continue;
      for (const x of [...b.hashes].reverse()) hookOps.push(`-D ${builtin} ${x.pos}`);
      const rest = b.count - b.hashes.length;
      if (insertMode === 'Insert') rules.forEach((r, i) => hookOps.push(`-I ${builtin} ${i + 1} ${withHash(want[i]!, r)}`));
      else rules.forEach((r, i) => hookOps.push(`-A ${builtin} ${withHash(want[i]!, r)}`));
      ts.builtins.set(builtin, {
        hashes: want.map((h, i) => ({ hash: h, pos: insertMode === 'Insert' ? i + 1 : rest + i + 1 })),
        count: rest + want.length,
      });
    }
    if (!decl.length && !body.length && !deletes.length && !hookOps.length) return undefined;
    for (const [name, want] of updated) {
      ts.ours.set(name, want);
      ts.chains.add(name);
    }
    return { decl, body, hookOps, deletes };
  }

  private rank(chain: string): number {
    const n = chain.slice(this.names.prefix.length);
    if (/^[A-Z]/.test(n) || n === 'wl-to-host' || n === 'nat-outgoing') return 0;
    if (n.includes('dispatch') || n.endsWith('host-endpoint')) return 1;
    if (/^(th|fh)-/.test(n)) return 2;
    if (/^(twb|fwb)-/.test(n)) return 3;
    if (/^(pi|po|pri|pro)-/.test(n)) return 4;
    return 5;
  }

  private async restoreTable(f: Family, t: Table, input: string): Promise<void> {
    const bin = binaries(this.backend!, f);
    const args = ['--noflush', '-w', String(this.opts.lockTimeoutSecs ?? 10), '-W', '50000'];
    this.opts.onRestore?.(`${f}|${t}`, input);
    const end = restoreSeconds.startTimer({ family: String(f), table: t });
    try {
      for (let attempt = 1; ; attempt++) {
        const r = await this.exec(bin.restore, args, input);
        if (r.code === 0) return;
        const lock = /xtables lock|Resource temporarily unavailable|Another app is currently holding/i.test(r.stderr);
        if (lock && attempt < 5) {
          await new Promise((res) => setTimeout(res, 50 * attempt));
          continue;
        }
        restoreErrors.inc({ family: String(f), table: t });
        throw new DataplaneWriteError(`${bin.restore} (${t}, IPv${f}) exited ${r.code}: ${r.stderr.trim().slice(0, 2000)}`);
      }
    } finally {
      end();
    }
  }

  /** add/del lines: through the ipset session when small, else `ipset restore`. */
  private async changeMembers(input: string): Promise<void> {
    const session = this.session;
    if (!session || session.unusable || /^(?!add |del )/m.test(input.slice(0, -1))) return this.restoreIpset(input);
    let lines = 0;
    for (let i = input.indexOf('\n'); i >= 0 && lines <= SESSION_MAX_LINES; i = input.indexOf('\n', i + 1)) lines++;
    if (lines > SESSION_MAX_LINES) return this.restoreIpset(input);
    this.opts.onRestore?.('ipset-session', input);
    const end = restoreSeconds.startTimer({ family: 'any', table: 'ipset-session' });
    try {
      await session.run(input);
    } catch (e) {
      if (session.unusable) return this.restoreIpset(input);
      restoreErrors.inc({ family: 'any', table: 'ipset-session' });
      throw new DataplaneWriteError((e as Error).message);
    } finally {
      end();
    }
  }

  private async restoreIpset(input: string): Promise<void> {
    this.opts.onRestore?.('ipset', input);
    const end = restoreSeconds.startTimer({ family: 'any', table: 'ipset' });
    try {
      const r = await this.exec('ipset', ['-exist', 'restore'], input);
      if (r.code !== 0) {
        restoreErrors.inc({ family: 'any', table: 'ipset' });
        throw new DataplaneWriteError(`ipset restore exited ${r.code}: ${r.stderr.trim().slice(0, 2000)}`);
      }
    } finally {
      end();
    }
  }
}
