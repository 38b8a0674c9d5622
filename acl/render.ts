// Rendering in the spirit of Felix: chain and ipset names, policy/profile chains, per-endpoint
// chains, interface dispatch chains and the top-level chains hooked from the built-in ones.
// Rules are iptables-restore rule bodies (what follows `-A <chain> `), without the hash
// comment the dataplane adds.
import { createHash } from 'node:crypto';
import { parseCidr } from '../datastore/index.js';
import type { EntityMatch, NormRule, PortMatch } from './model.js';

export type Family = 4 | 6;
export type Table = 'filter' | 'nat';

export const DEFAULT_PREFIX = 'pet-';
export const MAX_CHAIN_NAME = 28;
export const MAX_IPSET_NAME = 31;

/** Mark bits (IptablesMarkMask 0xffff0000, lowest bits first, as Felix hands them out). */
export const MARK_ACCEPT = 0x10000;
export const MARK_PASS = 0x20000;
const hex = (n: number) => `0x${n.toString(16)}`;

export interface RenderConfig {
  prefix: string;
  /** workload interface prefixes (FelixConfiguration interfacePrefix, default `cali`). */
  interfacePrefixes: string[];
  defaultEndpointToHostAction: 'Drop' | 'Accept' | 'Return';
  filterDenyAction: 'Drop' | 'Reject';
  filterAllowAction: 'Accept' | 'Return';
  disableConntrackInvalidCheck: boolean;
  chainInsertMode: 'Insert' | 'Append';
  logPrefix: string;
  failsafeInbound: Array<{ protocol: string; port: number; net?: string }>;
  failsafeOutbound: Array<{ protocol: string; port: number; net?: string }>;
  maxIpsetSize: number;
}

/** Felix's defaults (FelixConfiguration), with Petrel's prefix. */
export function defaultRenderConfig(prefix = DEFAULT_PREFIX): RenderConfig {
  return {
    prefix,
    interfacePrefixes: ['cali'],
    defaultEndpointToHostAction: 'Drop',
    filterDenyAction: 'Drop',
    filterAllowAction: 'Accept',
    disableConntrackInvalidCheck: false,
    chainInsertMode: 'Insert',
    logPrefix: 'petrel-packet',
    failsafeInbound: [
      { protocol: 'tcp', port: 22 },
      { protocol: 'udp', port: 68 },
      { protocol: 'tcp', port: 179 },
      { protocol: 'tcp', port: 2379 },
      { protocol: 'tcp', port: 2380 },
      { protocol: 'tcp', port: 5473 },
      { protocol: 'tcp', port: 6443 },
      { protocol: 'tcp', port: 6666 },
      { protocol: 'tcp', port: 6667 },
    ],
    failsafeOutbound: [
      { protocol: 'udp', port: 53 },
      { protocol: 'udp', port: 67 },
      { protocol: 'tcp', port: 179 },
      { protocol: 'tcp', port: 2379 },
      { protocol: 'tcp', port: 2380 },
      { protocol: 'tcp', port: 5473 },
      { protocol: 'tcp', port: 6443 },
      { protocol: 'tcp', port: 6666 },
      { protocol: 'tcp', port: 6667 },
    ],
    maxIpsetSize: 1048576,
  };
}

// ---------------------------------------------------------------------------------------
// Names

export function b64hash(algo: 'sha224' | 'sha256', text: string): string {
  return createHash(algo).update(text).digest('base64url');
}

/** prefix+name, or prefix + `_` + hash when it would exceed iptables' 28 characters (Felix's rule). */
export function chainName(kindPrefix: string, name: string): string {
  const full = kindPrefix + name;
  const safe = /^[A-Za-z0-9._:-]+$/.test(name) && !name.startsWith('_');
  if (full.length <= MAX_CHAIN_NAME && safe) return full;
  return (kindPrefix + '_' + b64hash('sha256', name)).slice(0, MAX_CHAIN_NAME);
}

export class Names {
  constructor(readonly prefix: string) {}
  /** The short tag used in hash comments: `pet` for `pet-`. */
  get tag(): string {
    return this.prefix.replace(/[-_.]+$/, '') || this.prefix;
  }
  top(name: 'INPUT' | 'FORWARD' | 'OUTPUT' | 'POSTROUTING'): string {
    return this.prefix + name;
  }
  get natOutgoing(): string {
    return this.prefix + 'nat-outgoing';
  }
  get wlToHost(): string {
    return this.prefix + 'wl-to-host';
  }
  get failsafeIn(): string {
    return this.prefix + 'failsafe-in';
  }
  get failsafeOut(): string {
    return this.prefix + 'failsafe-out';
  }
  fromWlDispatch(): string {
    return this.prefix + 'from-wl-dispatch';
  }
  toWlDispatch(): string {
    return this.prefix + 'to-wl-dispatch';
  }
  fromHostDispatch(): string {
    return this.prefix + 'from-host-endpoint';
  }
  toHostDispatch(): string {
    return this.prefix + 'to-host-endpoint';
  }
  th(iface: string): string {
    return chainName(this.prefix + 'th-', iface);
  }
  fh(iface: string): string {
    return chainName(this.prefix + 'fh-', iface);
  }
  policy(dir: 'ingress' | 'egress', policyId: string): string {
    // np/ns/name → np.ns.name when unambiguous, else hashed.
    const kp = this.prefix + (dir === 'ingress' ? 'pi-' : 'po-');
    const parts = policyId.split('/');
    if (parts.every((p) => !p.includes('.'))) return chainName(kp, parts.join('.'));
    return chainName(kp, '_' + policyId);
  }
  profile(dir: 'ingress' | 'egress', name: string): string {
    return chainName(this.prefix + (dir === 'ingress' ? 'pri-' : 'pro-'), name);
  }
  /** ipset name for a set id (`s:<sel>`, `n:<sel,proto,name>`, `nets:<cidrs>`, or a fixed name). */
  ipset(family: Family, id: string, fixed = false): string {
    const head = `${this.prefix}${family}`;
    if (fixed) return (head + id).slice(0, MAX_IPSET_NAME);
    const colon = id.indexOf(':');
    const kind = id.slice(0, colon);
    const code = kind === 's' ? 's' : kind === 'n' ? 'n' : 'c';
    return `${head}${code}:${b64hash('sha224', id)}`.slice(0, MAX_IPSET_NAME);
  }
  /** The `hash:net,iface` sets (shard 0, 1, ...) of the workload interfaces dispatched to a shared body chain. */
  ifaceSet(family: Family, bodyChain: string, shard: number): string {
    return `${this.prefix}${family}i:${b64hash('sha224', shard ? `${bodyChain}/${shard}` : bodyChain)}`.slice(0, MAX_IPSET_NAME);
  }
  /** Temporary set names used for swaps. */
  tempIpset(family: Family, n: number): string {
    return `${this.prefix}${family}t:${n}`;
  }
  isOurIpset(name: string): boolean {
    return name.startsWith(this.prefix + '4') || name.startsWith(this.prefix + '6');
  }
  isOurChain(name: string): boolean {
    return name.startsWith(this.prefix);
  }
}

// ---------------------------------------------------------------------------------------
// Set references: the renderer asks for a set name; the caller records what sets exist.

export type SetRef =
  | { kind: 's'; selector: string }
  | { kind: 'n'; selector: string; protocol: string; port: string }
  | { kind: 'nets'; nets: string[] };

export function setId(ref: SetRef): string {
  switch (ref.kind) {
    case 's':
      return `s:${ref.selector}`;
    case 'n':
      return `n:${ref.selector},${ref.protocol},${ref.port}`;
    case 'nets':
      return `nets:${ref.nets.join(',')}`;
  }
}

export function familyOfCidr(c: string): Family {
  return c.includes(':') ? 6 : 4;
}

/** ipset/iptables text of a CIDR: bare address for host routes. */
export function memberOfCidr(c: string): string {
  const p = parseCidr(c);
  if (!p) return c;
  const full = p.version === 4 ? 32 : 128;
  return p.prefix === full ? c.slice(0, c.indexOf('/')) : c;
}

// ---------------------------------------------------------------------------------------
// Rules

const q = (s: string) => `"${s.replace(/["\\]/g, '')}"`;
const comment = (s: string) => `-m comment --comment ${q(s)}`;

function portChunks(ports: Array<{ from: number; to: number }>): string[] {
  // multiport takes at most 15 slots; a range takes 2.
  const chunks: string[] = [];
  let cur: string[] = [];
  let slots = 0;
  for (const p of ports) {
    const need = p.from === p.to ? 1 : 2;
    if (slots + need > 15) {
      chunks.push(cur.join(','));
      cur = [];
      slots = 0;
    }
    cur.push(p.from === p.to ? String(p.from) : `${p.from}:${p.to}`);
    slots += need;
  }
  if (cur.length) chunks.push(cur.join(','));
  return chunks;
}

function numeric(ps: PortMatch[]): Array<{ from: number; to: number }> {
  return ps.filter((p): p is { from: number; to: number } => 'from' in p);
}
function named(ps: PortMatch[]): string[] {
  return ps.filter((p): p is { name: string } => 'name' in p).map((p) => p.name);
}

export interface RuleRenderContext {
  names: Names;
  family: Family;
  config: RenderConfig;
  /** returns the ipset name for a reference (and records the reference). */
  set(ref: SetRef): string;
  /** Log prefix for this policy/profile. */
  logPrefix: string;
}

/**
 * Renders one normalized rule for one IP family: zero rules when it cannot match in this
 * family, several when its port list needs alternatives (multiport chunks, named ports).
 */
export function renderRule(rule: NormRule, ctx: RuleRenderContext): string[] {
  const f = ctx.family;
  if (rule.ipVersion && rule.ipVersion !== f) return [];
  if (rule.protocol === 'icmp' && f === 6) return [];
  if (rule.protocol === 'ipv6-icmp' && f === 4) return [];
  const fam = (l: string[]) => l.filter((c) => familyOfCidr(c) === f);
  const srcNets = fam(rule.src.nets);
  const dstNets = fam(rule.dst.nets);
  if (rule.src.nets.length && !srcNets.length) return [];
  if (rule.dst.nets.length && !dstNets.length) return [];
  const common: string[] = [];
  if (rule.protocol) common.push(`-p ${rule.protocol}`);
  if (rule.notProtocol) {
    if (rule.protocol === rule.notProtocol) return [];
    if (!rule.protocol) common.push(`! -p ${rule.notProtocol}`);
  }
  const sideMatches = (em: EntityMatch, dir: 'src' | 'dst'): string[] => {
    const out: string[] = [];
    const flag = dir === 'src' ? '-s' : '-d';
    const nets = dir === 'src' ? srcNets : dstNets;
    if (nets.length === 1) out.push(`${flag} ${nets[0]}`);
    else if (nets.length > 1) out.push(`-m set --match-set ${ctx.set({ kind: 'nets', nets })} ${dir}`);
    const notNets = fam(em.notNets);
    // iptables takes one -s/-d per rule: with a positive net there, exceptions go in a set.
    if (notNets.length === 1 && nets.length !== 1) out.push(`! ${flag} ${notNets[0]}`);
    else if (notNets.length >= 1) out.push(`-m set ! --match-set ${ctx.set({ kind: 'nets', nets: notNets })} ${dir}`);
    if (em.notSelector) out.push(`-m set ! --match-set ${ctx.set({ kind: 's', selector: em.notSelector })} ${dir}`);
    for (const chunk of portChunks(numeric(em.notPorts))) out.push(`-m multiport ! --${dir === 'src' ? 'sports' : 'dports'} ${chunk}`);
    for (const name of named(em.notPorts)) {
      out.push(`-m set ! --match-set ${ctx.set({ kind: 'n', selector: em.selector ?? 'all()', protocol: rule.protocol!, port: name })} ${dir},${dir}`);
    }
    return out;
  };
  // Alternatives for positive ports (OR): numeric chunks carry the selector set; each named
  // port's set already holds only the selected endpoints.
  const alternatives = (em: EntityMatch, dir: 'src' | 'dst'): string[][] => {
    const selMatch = em.selector !== undefined ? [`-m set --match-set ${ctx.set({ kind: 's', selector: em.selector })} ${dir}`] : [];
    if (!em.ports.length) return [selMatch];
    const alts: string[][] = [];
    for (const chunk of portChunks(numeric(em.ports))) alts.push([...selMatch, `-m multiport --${dir === 'src' ? 'sports' : 'dports'} ${chunk}`]);
    for (const name of named(em.ports)) {
      alts.push([`-m set --match-set ${ctx.set({ kind: 'n', selector: em.selector ?? 'all()', protocol: rule.protocol!, port: name })} ${dir},${dir}`]);
    }
    return alts;
  };
  common.push(...sideMatches(rule.src, 'src'), ...sideMatches(rule.dst, 'dst'));
  if (rule.icmp) {
    const t = rule.icmp.type !== undefined ? `${rule.icmp.type}${rule.icmp.code !== undefined ? `/${rule.icmp.code}` : ''}` : undefined;
    if (t !== undefined) common.push(f === 4 ? `-m icmp --icmp-type ${t}` : `-m icmp6 --icmpv6-type ${t}`);
  }
  if (rule.notICMP && rule.notICMP.type !== undefined) {
    const t = `${rule.notICMP.type}${rule.notICMP.code !== undefined ? `/${rule.notICMP.code}` : ''}`;
    common.push(f === 4 ? `-m icmp ! --icmp-type ${t}` : `-m icmp6 ! --icmpv6-type ${t}`);
  }
  const out: string[] = [];
  for (const s of alternatives(rule.src, 'src')) {
    for (const d of alternatives(rule.dst, 'dst')) {
      const match = [...common, ...s, ...d].join(' ');
      const m = match ? `${match} ` : '';
      switch (rule.action) {
        case 'Allow':
          out.push(`${m}-j MARK --set-xmark ${hex(MARK_ACCEPT)}/${hex(MARK_ACCEPT)}`);
          out.push(`-m mark --mark ${hex(MARK_ACCEPT)}/${hex(MARK_ACCEPT)} -j RETURN`);
          break;
        case 'Pass':
          out.push(`${m}-j MARK --set-xmark ${hex(MARK_PASS)}/${hex(MARK_PASS)}`);
          out.push(`-m mark --mark ${hex(MARK_PASS)}/${hex(MARK_PASS)} -j RETURN`);
          break;
        case 'Deny':
          out.push(`${m}${denyTarget(ctx.config, f)}`);
          break;
        case 'Log':
          out.push(`${m}-j LOG --log-prefix ${q(ctx.logPrefix.slice(0, 28) + ': ')} --log-level 5`);
          break;
      }
    }
  }
  return out;
}

export function denyTarget(cfg: RenderConfig, f: Family): string {
  if (cfg.filterDenyAction === 'Reject') return f === 4 ? '-j REJECT --reject-with icmp-port-unreachable' : '-j REJECT --reject-with icmp6-port-unreachable';
  return '-j DROP';
}

function acceptTarget(cfg: RenderConfig): string {
  return cfg.filterAllowAction === 'Return' ? '-j RETURN' : '-j ACCEPT';
}

/** A policy or profile chain body. */
export function renderRuleChain(rules: NormRule[], ctx: RuleRenderContext): string[] {
  const out: string[] = [];
  for (const r of rules) out.push(...renderRule(r, ctx));
  return out;
}

export interface EndpointChainInput {
  direction: 'ingress' | 'egress';
  /** workload: from-workload chains drop VXLAN/IPIP sent by the workload. */
  workload: boolean;
  /** policy chain names in order; empty = no policy in this direction. */
  policyChains: string[];
  /** profile chain names in order. */
  profileChains: string[];
  /** host endpoints: failsafe chain jumped to first. */
  failsafeChain?: string;
}

/** Per-endpoint chain: conntrack, clear marks, policies in order, then profiles, then drop. */
export function renderEndpointChain(e: EndpointChainInput, cfg: RenderConfig, f: Family): string[] {
  const out: string[] = [];
  out.push('-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT');
  if (!cfg.disableConntrackInvalidCheck) out.push('-m conntrack --ctstate INVALID -j DROP');
  out.push(`-j MARK --set-xmark 0x0/${hex(MARK_ACCEPT | MARK_PASS)}`);
  if (e.failsafeChain) {
    out.push(`-j ${e.failsafeChain}`);
    out.push(`-m mark --mark ${hex(MARK_ACCEPT)}/${hex(MARK_ACCEPT)} -j RETURN`);
  }
  if (e.workload && e.direction === 'egress') {
    out.push(`-p udp -m udp --dport 4789 ${comment('Drop VXLAN encapped packets originating in workloads')} -j DROP`);
    if (f === 4) out.push(`-p ipencap ${comment('Drop IPinIP encapped packets originating in workloads')} -j DROP`);
  }
  if (e.policyChains.length) {
    out.push(`${comment('Start of policies')} -j MARK --set-xmark 0x0/${hex(MARK_PASS)}`);
    for (const c of e.policyChains) {
      out.push(`-m mark --mark 0x0/${hex(MARK_PASS)} -j ${c}`);
      out.push(`-m mark --mark ${hex(MARK_ACCEPT)}/${hex(MARK_ACCEPT)} ${comment('Return if policy accepted')} -j RETURN`);
    }
    out.push(`-m mark --mark 0x0/${hex(MARK_PASS)} ${comment('Drop if no policies passed packet')} ${denyTarget(cfg, f)}`);
  }
  for (const c of e.profileChains) {
    out.push(`-j ${c}`);
    out.push(`-m mark --mark ${hex(MARK_ACCEPT)}/${hex(MARK_ACCEPT)} ${comment('Return if profile accepted')} -j RETURN`);
  }
  out.push(`${comment('Drop if no profiles matched')} ${denyTarget(cfg, f)}`);
  return out;
}

export interface StaticInput {
  family: Family;
  /** natOutgoing: ipset names of masquerade pools and all pools; undefined = no NAT rule. */
  nat?: { masqSet: string; allSet: string };
  hostEndpoints: boolean;
}

/** The top-level chains and the jump rules into the built-in chains. */
export function renderStatic(names: Names, cfg: RenderConfig, s: StaticInput): {
  chains: Record<Table, Map<string, string[]>>;
  hooks: Record<Table, Map<string, string[]>>;
} {
  const f = s.family;
  const filter = new Map<string, string[]>();
  const nat = new Map<string, string[]>();
  const wl = cfg.interfacePrefixes;
  const acceptMark = `-m mark --mark ${hex(MARK_ACCEPT)}/${hex(MARK_ACCEPT)}`;
  // INPUT: workload → host goes through the workload's egress policy, then DefaultEndpointToHostAction.
  const input: string[] = [];
  for (const p of wl) input.push(`-i ${p}+ -g ${names.wlToHost}`);
  if (s.hostEndpoints) {
    input.push(`-j MARK --set-xmark 0x0/${hex(MARK_ACCEPT | MARK_PASS)}`);
    input.push(`-j ${names.fromHostDispatch()}`);
    input.push(`${acceptMark} ${comment('Host endpoint policy accepted packet')} ${acceptTarget(cfg)}`);
  }
  filter.set(names.top('INPUT'), input);
  const toHostAction =
    cfg.defaultEndpointToHostAction === 'Accept' ? acceptTarget(cfg) : cfg.defaultEndpointToHostAction === 'Return' ? '-j RETURN' : '-j DROP';
  // IPv6 neighbour discovery and MLD between a workload and its host always pass (as Felix).
  const nd = f === 6 ? [130, 131, 132, 133, 135, 136].map((t) => `-p ipv6-icmp -m icmp6 --icmpv6-type ${t} ${comment('Allow IPv6 neighbour discovery')} -j ACCEPT`) : [];
  filter.set(names.wlToHost, [...nd, `-j ${names.fromWlDispatch()}`, `${comment('Configured DefaultEndpointToHostAction')} ${toHostAction}`]);
  const forward: string[] = [`-j MARK --set-xmark 0x0/${hex(MARK_ACCEPT | MARK_PASS)}`];
  for (const p of wl) forward.push(`-i ${p}+ -j ${names.fromWlDispatch()}`);
  for (const p of wl) forward.push(`-o ${p}+ -j ${names.toWlDispatch()}`);
  forward.push(`${acceptMark} ${comment('Policy explicitly accepted packet')} ${acceptTarget(cfg)}`);
  filter.set(names.top('FORWARD'), forward);
  const output: string[] = [];
  // Host → local workload is not policed (as Felix): kubelet probes and the like.
  for (const p of wl) output.push(`-o ${p}+ -j RETURN`);
  if (s.hostEndpoints) {
    output.push(`-j MARK --set-xmark 0x0/${hex(MARK_ACCEPT | MARK_PASS)}`);
    output.push(`-j ${names.toHostDispatch()}`);
    output.push(`${acceptMark} ${comment('Host endpoint policy accepted packet')} ${acceptTarget(cfg)}`);
  }
  filter.set(names.top('OUTPUT'), output);
  const fs = (list: RenderConfig['failsafeInbound'], dir: 'in' | 'out') =>
    list
      .filter((x) => !x.net || familyOfCidr(x.net) === f)
      .map(
        (x) =>
          `-p ${x.protocol} ${x.net ? `${dir === 'in' ? '-s' : '-d'} ${x.net} ` : ''}-m ${x.protocol} --dport ${x.port} -j MARK --set-xmark ${hex(MARK_ACCEPT)}/${hex(MARK_ACCEPT)}`,
      );
  filter.set(names.failsafeIn, fs(cfg.failsafeInbound, 'in'));
  filter.set(names.failsafeOut, fs(cfg.failsafeOutbound, 'out'));
  nat.set(names.top('POSTROUTING'), [`-j ${names.natOutgoing}`]);
  nat.set(
    names.natOutgoing,
    s.nat ? [`-m set --match-set ${s.nat.masqSet} src -m set ! --match-set ${s.nat.allSet} dst ${comment('natOutgoing pools')} -j MASQUERADE`] : [],
  );
  const hooks = {
    filter: new Map<string, string[]>([
      ['INPUT', [`-j ${names.top('INPUT')}`]],
      ['FORWARD', [`-j ${names.top('FORWARD')}`]],
      ['OUTPUT', [`-j ${names.top('OUTPUT')}`]],
    ]),
    nat: new Map<string, string[]>([['POSTROUTING', [`-j ${names.top('POSTROUTING')}`]]]),
  };
  return { chains: { filter, nat }, hooks };
}
