// The incremental policy engine: endpoints, network sets, policies, profiles and pools in;
// the desired iptables chains and ipsets (DesiredState) out. Every input change touches only
// what depends on it: a pod's label change re-evaluates only the selectors that could match
// it (LabelIndex), updates the members of the sets that use them, and re-renders only the
// chains of endpoints whose policy list changed.
import { parseCidr } from '../datastore/index.js';
import { DesiredState, FAMILIES, type IpsetType } from './desired.js';
import { LabelIndex } from './labelindex.js';
import { comparePolicies, type NormPolicy, type NormProfile } from './model.js';
import {
  b64hash,
  defaultRenderConfig,
  denyTarget,
  familyOfCidr,
  memberOfCidr,
  Names,
  renderEndpointChain,
  renderRuleChain,
  renderStatic,
  setId,
  type Family,
  type RenderConfig,
  type SetRef,
} from './render.js';
import { parseSelector, type Labels } from './selector.js';

export interface EndpointPortInput {
  name: string;
  protocol: string; // iptables name: tcp/udp/sctp
  port: number;
}

export interface EndpointInput {
  /** unique key (the resource key). */
  key: string;
  kind: 'wep' | 'hep';
  /** on this node: gets chains and dispatch entries. */
  local: boolean;
  iface?: string;
  /** CIDRs (/32, /128 for workloads). */
  nets: string[];
  labels: Labels;
  profiles: string[];
  ports: EndpointPortInput[];
}

export interface NetworkSetInput {
  key: string;
  nets: string[];
  labels: Labels;
  /** parent profile for label inheritance (kns.<ns> for namespaced sets). */
  profiles: string[];
}

export interface PoolInput {
  cidr: string;
  natOutgoing: boolean;
  disabled: boolean;
}

interface SetState {
  ref: SetRef;
  family: Family;
  name: string;
  refs: number;
  /** member → number of items contributing it. */
  counts: Map<string, number>;
}

/** Set members of some nets (memberOfCidr), by family: [IPv4, IPv6], each in nets order. */
type NetMembers = [string[], string[]];

function netMembers(nets: string[]): NetMembers {
  const out: NetMembers = [[], []];
  for (const n of nets) out[familyOfCidr(n) === 4 ? 0 : 1].push(memberOfCidr(n));
  return out;
}

interface EndpointState {
  ep: true;
  input: EndpointInput;
  /** its item id in the label index (EP + key). */
  item: string;
  /** set members of input.nets. */
  mem: NetMembers;
  labels: Labels;
  /** the policy selectors that match it, in match order (local endpoints only). */
  polSels: Set<PolSel>;
  /** its endpoint class (see classOf), valid while clsGen is the engine's classGen. */
  cls?: EndpointClass;
  clsGen: number;
  /** profile chains referenced (for refcounts). */
  activeProfiles: string[];
}

interface NetsetState {
  ep: false;
  input: NetworkSetInput;
  /** set members of input.nets. */
  mem: NetMembers;
}

/** What the label index hands back with a change: the item's state... */
type ItemData = EndpointState | NetsetState;
/** ... and the selector's users: the policies (ids) or the sets it selects for. */
type SelData = PolSel | { pol: false; sets: Set<SetState> };

/** A policy selector: its policies (ids, in the order they took it up) and local matches. */
interface PolSel {
  pol: true;
  ids: Set<string>;
  /** local endpoints it matches: its policies are active while there are any. */
  local: number;
}

/** A workload body chain of an endpoint class. */
interface ClassBody {
  /** `${family}|${chain}`: the key of its BodyState. */
  key: string;
  family: Family;
  chain: string;
  rules: string[];
}

/**
 * What endpoints of one kind with the same policy selectors (in the same match order) and the same
 * profiles render: computed once per class, shared (immutable) by its endpoints.
 */
interface EndpointClass {
  /** the endpoints' profiles that exist, in order. */
  profiles: string[];
  /** each family x direction's endpoint chain rules (host endpoints: their fh/th chains). */
  chains: Array<{ family: Family; dir: 'ingress' | 'egress'; rules: string[] }>;
  /** workloads: the body chains, and their keys, in the same order. */
  bodies: ClassBody[];
  bodyKeys: string[];
}

interface ClassNode {
  /** by kind, then policy selector, then '' (the end of those), then profile name. */
  next?: Map<unknown, ClassNode>;
  cls?: EndpointClass;
}

const newClassNode = (): ClassNode => ({});

function classChild(n: ClassNode, k: unknown): ClassNode {
  if (!n.next) n.next = new Map();
  let c = n.next.get(k);
  if (!c) n.next.set(k, (c = {}));
  return c;
}

interface PolicyState {
  policy: NormPolicy;
  /** its chain names by direction. */
  chainIn: string;
  chainOut: string;
  /** its selector's users (while not deleted). */
  polSel?: PolSel;
  active: boolean;
  deleted: boolean;
  /** set keys referenced by the rendered chains. */
  setKeys: string[];
}

interface ProfileState {
  profile?: NormProfile;
  /** local endpoints referencing it. */
  users: Set<string>;
  /** items (endpoints, netsets) inheriting labels from it. */
  inheritors: Set<string>;
  active: boolean;
  setKeys: string[];
}

interface BodyState {
  family: Family;
  chain: string;
  /** the rule list last given to desired for the chain. */
  rules: string[];
  /** endpoints using the body. */
  refs: number;
  /** interface sets (shards): how many interfaces each holds (at most IFACES_PER_SET). */
  shardSizes: number[];
  /** the ipset name of each shard. */
  setNames: string[];
  /** interface → its shard + SHARD_SPAN x how many endpoints claim it. */
  where: Map<string, number>;
}

const SHARD_SPAN = 2 ** 21;

/**
 * A hash:net,iface set hashes only the net, so every `0.0.0.0/0,<iface>` entry lands in one
 * bucket, and the kernel stops a bucket at 64 entries ("Hash is full"). Past that, a body's
 * interfaces go on in another set (and dispatch rule).
 */
export const IFACES_PER_SET = 64;

const EP = 'ep:';
const NS = 'ns:';
const POLSEL = 'pol:';

export interface EngineOptions {
  prefix?: string;
  ipVersions?: Family[];
  config?: Partial<RenderConfig>;
}

export class PolicyEngine {
  readonly desired = new DesiredState();
  readonly names: Names;
  readonly families: Family[];
  private config: RenderConfig;
  private readonly index: LabelIndex;
  private readonly endpoints = new Map<string, EndpointState>();
  private readonly netsets = new Map<string, NetsetState>();
  private readonly policies = new Map<string, PolicyState>();
  private readonly profiles = new Map<string, ProfileState>();
  private readonly sets = new Map<string, SetState>();
  /** selector canonical text → sets that use it (active sets only). */
  private readonly selectorSets = new Map<string, Set<SetState>>();
  /** policy selector canonical → policy ids. */
  private readonly selectorPolicies = new Map<string, PolSel>();
  private pools: PoolInput[] = [];
  private dirtyEndpoints = new Set<string>();
  private dirtyPolicies = new Set<string>();
  private dirtyProfiles = new Set<string>();
  private dirtyDispatch = true;
  private dirtyStatic = true;

  constructor(opts: EngineOptions = {}) {
    this.config = { ...defaultRenderConfig(opts.prefix), ...(opts.config ?? {}) };
    this.names = new Names(this.config.prefix);
    this.families = opts.ipVersions ?? [4, 6];
    this.index = new LabelIndex((_sel, _item, matched, sd: SelData, d: ItemData) => this.onMatch(matched, sd, d));
  }

  get renderConfig(): RenderConfig {
    return this.config;
  }

  setConfig(partial: Partial<RenderConfig>): void {
    const next = { ...defaultRenderConfig(this.config.prefix), ...partial, prefix: this.config.prefix };
    if (JSON.stringify(next) === JSON.stringify(this.config)) return;
    this.config = next;
    // Everything rendered depends on the config.
    this.dirtyStatic = true;
    this.dirtyDispatch = true;
    this.endpointChainCache.clear();
    this.invalidateClasses();
    this.heps.clear();
    for (const { input } of this.endpoints.values()) this.dispatchAdd(input);
    for (const k of this.endpoints.keys()) this.dirtyEndpoints.add(k);
    for (const k of this.policies.keys()) this.dirtyPolicies.add(k);
    for (const k of this.profiles.keys()) this.dirtyProfiles.add(k);
  }

  counts(): { policiesActive: number; endpoints: number; endpointsActive: number; ipsetMembers: number } {
    let policiesActive = 0;
    for (const p of this.policies.values()) if (p.active) policiesActive++;
    let endpointsActive = 0;
    for (const e of this.endpoints.values()) if (e.input.local && e.input.iface) endpointsActive++;
    let ipsetMembers = 0;
    for (const s of this.sets.values()) if (s.refs > 0) ipsetMembers += s.counts.size;
    return { policiesActive, endpoints: this.endpoints.size, endpointsActive, ipsetMembers };
  }

  // -------------------------------------------------------------------------------------
  // Inputs

  upsertEndpoint(e: EndpointInput): void {
    const old = this.endpoints.get(e.key);
    const item = old ? old.item : EP + e.key;
    const st: EndpointState = old ?? { ep: true, input: e, item, mem: netMembers(e.nets), labels: {}, polSels: new Set(), clsGen: -1, activeProfiles: [] };
    st.cls = undefined;
    const oldInput = old?.input;
    if (old && oldInput!.local !== e.local) {
      // Policy matches are tracked for local endpoints only: start over.
      this.index.deleteItem(item);
      old.polSels.clear();
    }
    // Remove the old contribution of addresses/ports to sets before changing them.
    if (old && (oldInput!.nets.join() !== e.nets.join() || JSON.stringify(oldInput!.ports) !== JSON.stringify(e.ports))) {
      const oldMem = st.mem;
      this.forEachMatchedSet(item, (s) => this.contribute(s, oldInput!, oldMem, -1));
      st.input = e;
      st.mem = netMembers(e.nets);
      this.forEachMatchedSet(item, (s) => this.contribute(s, e, st.mem, +1));
    }
    st.input = e;
    this.endpoints.set(e.key, st);
    if (oldInput) for (const p of oldInput.profiles) this.profileState(p).inheritors.delete(item);
    for (const p of e.profiles) this.profileState(p).inheritors.add(item);
    if (!oldInput || oldInput.local !== e.local || oldInput.iface !== e.iface || oldInput.kind !== e.kind) {
      if (oldInput) this.dispatchRemove(oldInput);
      this.dispatchAdd(e);
    }
    if (e.kind === 'hep' && (!oldInput || oldInput.kind !== 'hep')) this.dirtyStatic = true;
    st.labels = this.effectiveLabels(e.labels, e.profiles);
    this.index.updateItem(item, st.labels, st);
    if (e.local) this.dirtyEndpoints.add(e.key);
    else if (oldInput?.local) this.dirtyEndpoints.add(e.key);
  }

  deleteEndpoint(key: string): void {
    const st = this.endpoints.get(key);
    if (!st) return;
    this.index.deleteItem(EP + key); // removes set contributions and policy matches
    for (const p of st.input.profiles) this.profileState(p).inheritors.delete(EP + key);
    this.endpoints.delete(key);
    this.dispatchRemove(st.input);
    if (st.input.local) {
      this.dirtyEndpoints.add(key);
      if (st.input.kind === 'hep') this.dirtyStatic = true;
    }
  }

  upsertNetworkSet(n: NetworkSetInput): void {
    const st = this.netsets.get(n.key);
    const old = st?.input;
    if (st && old!.nets.join() !== n.nets.join()) {
      const oldMem = st.mem;
      this.forEachMatchedSet(NS + n.key, (s) => this.contributeNets(s, oldMem, -1));
      st.input = n;
      st.mem = netMembers(n.nets);
      this.forEachMatchedSet(NS + n.key, (s) => this.contributeNets(s, st.mem, +1));
    }
    const ns: NetsetState = st ?? { ep: false, input: n, mem: netMembers(n.nets) };
    ns.input = n;
    this.netsets.set(n.key, ns);
    if (old) for (const p of old.profiles) this.profileState(p).inheritors.delete(NS + n.key);
    for (const p of n.profiles) this.profileState(p).inheritors.add(NS + n.key);
    this.index.updateItem(NS + n.key, this.effectiveLabels(n.labels, n.profiles), ns);
  }

  deleteNetworkSet(key: string): void {
    const st = this.netsets.get(key);
    if (!st) return;
    this.index.deleteItem(NS + key);
    for (const p of st.input.profiles) this.profileState(p).inheritors.delete(NS + key);
    this.netsets.delete(key);
  }

  upsertPolicy(p: NormPolicy): void {
    const old = this.policies.get(p.id);
    if (old && !old.deleted && JSON.stringify(old.policy) === JSON.stringify(p)) return;
    this.invalidateClasses();
    const st: PolicyState = old ?? {
      policy: p,
      chainIn: this.names.policy('ingress', p.id),
      chainOut: this.names.policy('egress', p.id),
      active: false,
      deleted: false,
      setKeys: [],
    };
    const oldSel = old && !old.deleted ? old.policy.selector : undefined;
    st.deleted = false;
    const oldOrder = old ? JSON.stringify([old.policy.order, !!old.policy.ingress, !!old.policy.egress]) : '';
    st.policy = p;
    this.policies.set(p.id, st);
    this.dirtyPolicies.add(p.id);
    if (oldSel !== p.selector) {
      if (oldSel !== undefined) this.unusePolicySelector(oldSel, p.id);
      this.usePolicySelector(p.selector, p.id);
    } else if (oldOrder !== JSON.stringify([p.order, !!p.ingress, !!p.egress])) {
      this.dirtyLocalMembers(p.selector);
    }
  }

  deletePolicy(id: string): void {
    const st = this.policies.get(id);
    if (!st || st.deleted) return;
    this.invalidateClasses();
    this.unusePolicySelector(st.policy.selector, id);
    st.deleted = true;
    this.dirtyPolicies.add(id);
  }

  upsertProfile(p: NormProfile): void {
    const st = this.profileState(p.name);
    const oldLabels = st.profile ? JSON.stringify(st.profile.labelsToApply) : undefined;
    if (st.profile && JSON.stringify(st.profile) === JSON.stringify(p)) return;
    const existed = !!st.profile;
    if (!existed) this.invalidateClasses();
    st.profile = p;
    this.dirtyProfiles.add(p.name);
    if (!existed) this.dirtyLocalInheritors(st);
    if (oldLabels !== JSON.stringify(p.labelsToApply)) this.relabelInheritors(st);
  }

  deleteProfile(name: string): void {
    const st = this.profiles.get(name);
    if (!st?.profile) return;
    const hadLabels = Object.keys(st.profile.labelsToApply).length > 0;
    this.invalidateClasses();
    st.profile = undefined;
    this.dirtyProfiles.add(name);
    this.dirtyLocalInheritors(st);
    if (hadLabels) this.relabelInheritors(st);
  }

  setPools(pools: PoolInput[]): void {
    if (JSON.stringify(pools) === JSON.stringify(this.pools)) return;
    this.pools = pools;
    this.dirtyStatic = true;
  }

  // -------------------------------------------------------------------------------------
  // Label plumbing

  private effectiveLabels(own: Labels, profiles: string[]): Labels {
    // The item's own labels win; then profiles in order (first wins), as Felix's inheritance.
    const out: Labels = { ...own };
    for (const p of profiles) {
      const prof = this.profiles.get(p)?.profile;
      if (!prof) continue;
      for (const [k, v] of Object.entries(prof.labelsToApply)) if (!(k in out)) out[k] = v;
    }
    return out;
  }

  private dirtyLocalInheritors(st: ProfileState): void {
    for (const item of st.inheritors) {
      if (!item.startsWith(EP)) continue;
      const key = item.slice(EP.length);
      if (this.endpoints.get(key)?.input.local) this.dirtyEndpoints.add(key);
    }
  }

  private relabelInheritors(st: ProfileState): void {
    for (const item of st.inheritors) {
      if (item.startsWith(EP)) {
        const e = this.endpoints.get(item.slice(EP.length));
        if (!e) continue;
        e.labels = this.effectiveLabels(e.input.labels, e.input.profiles);
        this.index.updateItem(item, e.labels, e);
      } else {
        const n = this.netsets.get(item.slice(NS.length));
        if (n) this.index.updateItem(item, this.effectiveLabels(n.input.labels, n.input.profiles), n);
      }
    }
  }

  private profileState(name: string): ProfileState {
    let st = this.profiles.get(name);
    if (!st) this.profiles.set(name, (st = { users: new Set(), inheritors: new Set(), active: false, setKeys: [] }));
    return st;
  }

  private usePolicySelector(sel: string, policyId: string): void {
    let ps = this.selectorPolicies.get(sel);
    if (!ps) this.selectorPolicies.set(sel, (ps = { pol: true, ids: new Set(), local: 0 }));
    ps.ids.add(policyId);
    this.policies.get(policyId)!.polSel = ps;
    const id = POLSEL + sel;
    // Its local endpoints now have one more policy (the classes were invalidated).
    if (this.index.hasSelector(id)) this.dirtyLocalMembers(sel);
    else this.index.updateSelector(id, parseSelector(sel), ps);
  }

  private unusePolicySelector(sel: string, policyId: string): void {
    const ps = this.selectorPolicies.get(sel);
    this.dirtyLocalMembers(sel);
    if (!ps) return;
    ps.ids.delete(policyId);
    if (ps.ids.size === 0) {
      this.selectorPolicies.delete(sel);
      this.index.deleteSelector(POLSEL + sel);
    }
  }

  /** Marks the local endpoints a policy selector matches for re-rendering. */
  private dirtyLocalMembers(sel: string): void {
    this.index.forEachMember(POLSEL + sel, (_item, d: ItemData) => {
      if (!d.ep || !d.input.local) return;
      d.cls = undefined;
      this.dirtyEndpoints.add(d.input.key);
    });
  }

  private onMatch(matched: boolean, sd: SelData, d: ItemData): void {
    if (sd.pol) {
      if (!d.ep || !d.input.local) return;
      if (matched) {
        if (!d.polSels.has(sd)) {
          d.polSels.add(sd);
          // Its policies become active.
          if (sd.local++ === 0) for (const pid of sd.ids) this.dirtyPolicies.add(pid);
        }
      } else if (d.polSels.delete(sd)) {
        if (--sd.local === 0) for (const pid of sd.ids) this.dirtyPolicies.add(pid);
      }
      d.cls = undefined;
      this.dirtyEndpoints.add(d.input.key);
      return;
    }
    // A set selector.
    const delta = matched ? +1 : -1;
    for (const s of sd.sets) this.contributeData(s, d, delta);
  }

  private forEachMatchedSet(item: string, fn: (s: SetState) => void): void {
    for (const [sel, sets] of this.selectorSets) {
      if (!this.index.matches(sel, item)) continue;
      for (const s of sets) fn(s);
    }
  }

  private contributeData(s: SetState, d: ItemData, delta: number): void {
    if (d.ep) this.contribute(s, d.input, d.mem, delta);
    else this.contributeNets(s, d.mem, delta);
  }

  private contribute(s: SetState, e: EndpointInput, mem: NetMembers, delta: number): void {
    if (s.ref.kind === 's') {
      this.contributeNets(s, mem, delta);
    } else if (s.ref.kind === 'n') {
      const ref = s.ref;
      for (const n of e.nets) {
        if (familyOfCidr(n) !== s.family) continue;
        const ip = n.slice(0, n.indexOf('/'));
        for (const p of e.ports) if (p.name === ref.port && p.protocol === ref.protocol) this.bump(s, `${ip},${p.protocol}:${p.port}`, delta);
      }
    }
  }

  private contributeNets(s: SetState, mem: NetMembers, delta: number): void {
    if (s.ref.kind !== 's') return; // network sets never carry named ports
    for (const m of mem[s.family === 4 ? 0 : 1]) this.bump(s, m, delta);
  }

  private bump(s: SetState, member: string, delta: number): void {
    const c = (s.counts.get(member) ?? 0) + delta;
    if (c <= 0) {
      s.counts.delete(member);
      if (s.refs > 0) this.desired.delMember(s.name, member);
    } else {
      s.counts.set(member, c);
      if (c === 1 && delta > 0 && s.refs > 0) this.desired.addMember(s.name, member);
    }
  }

  // -------------------------------------------------------------------------------------
  // Sets: created when first referenced by a rendered chain, destroyed when the last goes.

  private refSet(family: Family, ref: SetRef): { key: string; name: string } {
    const id = setId(ref);
    const key = `${family}|${id}`;
    let s = this.sets.get(key);
    if (!s) {
      s = { ref, family, name: this.names.ipset(family, id), refs: 0, counts: new Map() };
      this.sets.set(key, s);
    }
    return { key, name: s.name };
  }

  private incSet(key: string): void {
    const s = this.sets.get(key)!;
    s.refs++;
    if (s.refs !== 1) return;
    const type: IpsetType = s.ref.kind === 'n' ? 'hash:ip,port' : 'hash:net';
    this.desired.ensureIpset(s.name, type, s.family);
    if (s.ref.kind === 'nets') {
      for (const n of s.ref.nets) this.desired.addMember(s.name, memberOfCidr(n));
      return;
    }
    // Start tracking membership through the selector.
    const selId = s.ref.selector;
    let users = this.selectorSets.get(selId);
    if (!users) this.selectorSets.set(selId, (users = new Set()));
    users.add(s);
    if (!this.index.hasSelector(selId)) {
      // A new selector: its matches contribute to its sets (this one only) as they are found.
      const data: SelData = { pol: false, sets: users };
      this.index.updateSelector(selId, parseSelector(selId), data);
      return;
    }
    s.counts.clear();
    this.index.forEachMember(selId, (_item, d: ItemData) => this.contributeData(s, d, +1));
    for (const m of s.counts.keys()) this.desired.addMember(s.name, m);
  }

  private decSet(key: string): void {
    const s = this.sets.get(key);
    if (!s) return;
    s.refs--;
    if (s.refs > 0) return;
    this.desired.deleteIpset(s.name);
    this.sets.delete(key);
    if (s.ref.kind === 'nets') return;
    const selId = s.ref.selector;
    const users = this.selectorSets.get(selId);
    users?.delete(s);
    if (users && users.size === 0) {
      this.selectorSets.delete(selId);
      this.index.deleteSelector(selId);
    }
  }

  // -------------------------------------------------------------------------------------
  // Rendering

  /** Recomputes everything marked dirty into `desired`. */
  flush(): void {
    for (const id of this.dirtyPolicies) this.renderPolicy(id);
    this.dirtyPolicies.clear();
    // Profiles referenced by local endpoints (users) are recomputed with the endpoints.
    for (const key of this.dirtyEndpoints) this.renderEndpoint(key);
    this.dirtyEndpoints.clear();
    for (const name of this.dirtyProfiles) this.renderProfile(name);
    this.dirtyProfiles.clear();
    if (this.dirtyDispatch) this.renderDispatch();
    this.dirtyDispatch = false;
    if (this.dirtyStatic) this.renderStaticChains();
    this.dirtyStatic = false;
  }

  private renderRules(kind: 'policy' | 'profile', label: string, chainOf: (d: 'ingress' | 'egress') => string, dirs: Array<['ingress' | 'egress', import('./model.js').NormRule[] | undefined]>, oldKeys: string[]): string[] {
    const keys: string[] = [];
    for (const f of this.families) {
      for (const [dir, rules] of dirs) {
        const name = chainOf(dir);
        if (!rules) {
          this.desired.deleteChain(f, 'filter', name);
          continue;
        }
        const body = renderRuleChain(rules, {
          names: this.names,
          family: f,
          config: this.config,
          logPrefix: `${this.config.logPrefix} ${kind} ${label}`,
          set: (ref) => {
            const r = this.refSet(f, ref);
            keys.push(r.key);
            return r.name;
          },
        });
        this.desired.setChain(f, 'filter', name, body);
      }
    }
    for (const k of keys) this.incSet(k);
    for (const k of oldKeys) this.decSet(k);
    return keys;
  }

  private renderPolicy(id: string): void {
    const st = this.policies.get(id);
    if (!st) return;
    const deleted = st.deleted;
    const active = !deleted && !!st.polSel && st.polSel.local > 0;
    const chainOf = (d: 'ingress' | 'egress') => (d === 'ingress' ? st.chainIn : st.chainOut);
    if (!active) {
      if (st.active || st.setKeys.length) {
        for (const f of this.families) {
          this.desired.deleteChain(f, 'filter', chainOf('ingress'));
          this.desired.deleteChain(f, 'filter', chainOf('egress'));
        }
        for (const k of st.setKeys) this.decSet(k);
        st.setKeys = [];
      }
      st.active = false;
      if (deleted) {
        this.policies.delete(id);
        this.invalidateClasses();
      }
      return;
    }
    st.setKeys = this.renderRules('policy', id, chainOf, [
      ['ingress', st.policy.ingress],
      ['egress', st.policy.egress],
    ], st.setKeys);
    st.active = true;
  }

  private renderProfile(name: string): void {
    const st = this.profiles.get(name);
    if (!st) return;
    const active = !!st.profile && st.users.size > 0;
    const chainOf = (d: 'ingress' | 'egress') => this.names.profile(d, name);
    if (!active) {
      if (st.active) {
        for (const f of this.families) {
          this.desired.deleteChain(f, 'filter', chainOf('ingress'));
          this.desired.deleteChain(f, 'filter', chainOf('egress'));
        }
        for (const k of st.setKeys) this.decSet(k);
        st.setKeys = [];
      }
      st.active = false;
      if (!st.profile && st.users.size === 0 && st.inheritors.size === 0) this.profiles.delete(name);
      return;
    }
    st.setKeys = this.renderRules('profile', name, chainOf, [
      ['ingress', st.profile!.ingress],
      ['egress', st.profile!.egress],
    ], st.setKeys);
    st.active = true;
  }

  private renderEndpoint(key: string): void {
    const st = this.endpoints.get(key);
    // Drop what an earlier version rendered.
    const prev = this.rendered.get(key);
    const nowLocal = st && st.input.local && st.input.iface ? st : undefined;
    if (prev && (!nowLocal || prev.iface !== nowLocal.input.iface || prev.kind !== nowLocal.input.kind)) {
      if (prev.kind === 'hep') {
        for (const f of this.families) {
          this.desired.deleteChain(f, 'filter', this.names.fh(prev.iface));
          this.desired.deleteChain(f, 'filter', this.names.th(prev.iface));
        }
      }
      for (const p of prev.profiles) this.releaseProfile(p, key);
      for (const b of prev.bodies) this.releaseBody(b, prev.iface);
      this.rendered.delete(key);
    }
    if (!nowLocal) return;
    const e = nowLocal.input;
    const iface = e.iface!;
    const cls = this.classOf(nowLocal);
    // Profiles: only those that exist are jumped to.
    const profiles = cls.profiles;
    const cur = this.rendered.get(key);
    const was = cur?.profiles ?? [];
    if (was !== profiles) {
      for (const p of profiles) if (!was.includes(p)) this.useProfile(p, key);
      for (const p of was) if (!profiles.includes(p)) this.releaseProfile(p, key);
    }
    const oldBodies = cur?.bodies ?? [];
    const bodies = cls.bodyKeys;
    this.rendered.set(key, { iface, kind: e.kind, profiles, bodies });
    if (e.kind === 'hep') {
      for (const c of cls.chains) this.desired.setChain(c.family, 'filter', c.dir === 'ingress' ? this.names.fh(iface) : this.names.th(iface), c.rules);
    }
    // Workloads with the same policies and profiles share one body chain, reached from the
    // dispatch chain through the body's interface set: a pod add or delete whose body
    // already exists is an ipset change only, no iptables write.
    for (const cb of cls.bodies) {
      const b = this.bodies.get(cb.key);
      if (b && b.rules === cb.rules) continue; // in desired already
      this.desired.setChain(cb.family, 'filter', cb.chain, cb.rules);
      if (b) b.rules = cb.rules;
    }
    if (oldBodies === bodies) return;
    // Join the new bodies before leaving the old ones (same interface: a changed interface
    // released them above), so the interface is never in no set.
    for (const cb of cls.bodies) if (!oldBodies.includes(cb.key)) this.acquireBody(cb, iface);
    for (const b of oldBodies) if (!bodies.includes(b)) this.releaseBody(b, iface);
  }

  /**
   * Endpoint classes by kind, then policy ids in match order, then profiles (see
   * EndpointClass): a trie, so that finding an endpoint's class builds no key.
   */
  private classRoot: ClassNode = newClassNode();
  private classCount = 0;
  private classGen = 0;

  /** Policies' order or directions, or profiles' existence, or the config changed. */
  private invalidateClasses(): void {
    if (this.classCount) this.classRoot = newClassNode();
    this.classCount = 0;
    this.classGen++;
  }

  private classOf(st: EndpointState): EndpointClass {
    if (st.cls && st.clsGen === this.classGen) return st.cls;
    const e = st.input;
    let node = classChild(this.classRoot, e.kind);
    for (const ps of st.polSels) node = classChild(node, ps);
    // policy ids and profile names never meet: a separator between them.
    node = classChild(node, '');
    for (const p of e.profiles) node = classChild(node, p);
    let cls = node.cls;
    if (!cls) {
      if (this.classCount >= 50_000) {
        this.invalidateClasses();
        return this.classOf(st);
      }
      cls = node.cls = this.buildClass(e.kind, st.polSels, e.profiles);
      this.classCount++;
    }
    st.cls = cls;
    st.clsGen = this.classGen;
    return cls;
  }

  private buildClass(kind: 'wep' | 'hep', polSels: Set<PolSel>, allProfiles: string[]): EndpointClass {
    const profiles = allProfiles.filter((p) => this.profiles.get(p)?.profile);
    const pols: PolicyState[] = [];
    for (const sel of polSels) {
      for (const id of sel.ids) {
        const ps = this.policies.get(id);
        if (ps) pols.push(ps);
      }
    }
    if (pols.length > 1) pols.sort((a, b) => comparePolicies(a.policy, b.policy));
    const cls: EndpointClass = { profiles, chains: [], bodies: [], bodyKeys: [] };
    for (const f of this.families) {
      for (const dir of ['ingress', 'egress'] as const) {
        const policyChains: string[] = [];
        for (const ps of pols) if (ps.policy[dir]) policyChains.push(dir === 'ingress' ? ps.chainIn : ps.chainOut);
        const profileChains = profiles.map((p) => this.names.profile(dir, p));
        // Classes with the same chains share one (immutable) rule list.
        const ck = `${kind}|${dir}|${f}|${policyChains.join(',')}|${profileChains.join(',')}`;
        let body = this.endpointChainCache.get(ck);
        if (!body) {
          body = renderEndpointChain(
            {
              direction: dir,
              workload: kind === 'wep',
              policyChains,
              profileChains,
              failsafeChain: kind === 'hep' ? (dir === 'ingress' ? this.names.failsafeIn : this.names.failsafeOut) : undefined,
            },
            this.config,
            f,
          );
          if (this.endpointChainCache.size > 50_000) this.endpointChainCache.clear();
          this.endpointChainCache.set(ck, body);
        }
        cls.chains.push({ family: f, dir, rules: body });
        if (kind === 'wep') {
          const chain = this.bodyChain(dir, `${policyChains.join(',')}|${profileChains.join(',')}`);
          const k = `${f}|${chain}`;
          cls.bodies.push({ key: k, family: f, chain, rules: body });
          cls.bodyKeys.push(k);
        }
      }
    }
    return cls;
  }

  /** Shared workload chain bodies in use: `<family>|<chain>` → its users and interface sets. */
  private readonly bodies = new Map<string, BodyState>();

  private readonly bodyNames = new Map<string, string>();

  private bodyChain(dir: 'ingress' | 'egress', key: string): string {
    const k = `${dir}|${key}`;
    let n = this.bodyNames.get(k);
    if (!n) {
      const kp = this.names.prefix + (dir === 'ingress' ? 'twb-' : 'fwb-');
      n = (kp + b64hash('sha224', key)).slice(0, 28);
      if (this.bodyNames.size > 50_000) this.bodyNames.clear();
      this.bodyNames.set(k, n);
    }
    return n;
  }

  private acquireBody(cb: ClassBody, iface: string): void {
    let b = this.bodies.get(cb.key);
    if (!b) this.bodies.set(cb.key, (b = { family: cb.family, chain: cb.chain, rules: cb.rules, refs: 0, shardSizes: [], setNames: [], where: new Map() }));
    b.refs++;
    const w = b.where.get(iface);
    if (w !== undefined) {
      b.where.set(iface, w + SHARD_SPAN);
      return;
    }
    const sizes = b.shardSizes;
    let k = 0;
    while (k < sizes.length && sizes[k]! >= IFACES_PER_SET) k++;
    if (k === sizes.length) {
      sizes.push(0);
      const name = this.names.ifaceSet(b.family, b.chain, k);
      b.setNames.push(name);
      this.desired.ensureIpset(name, 'hash:net,iface', b.family);
      this.dirtyDispatch = true;
    }
    sizes[k]!++;
    b.where.set(iface, k + SHARD_SPAN);
    this.desired.addMember(b.setNames[k]!, (b.family === 4 ? '0.0.0.0/0,' : '::/0,') + iface);
  }

  private releaseBody(bk: string, iface: string): void {
    const b = this.bodies.get(bk);
    if (!b) return;
    const w = b.where.get(iface);
    if (w !== undefined) {
      if (w >= 2 * SHARD_SPAN) b.where.set(iface, w - SHARD_SPAN);
      else {
        const shard = w % SHARD_SPAN;
        b.where.delete(iface);
        b.shardSizes[shard]!--;
        this.desired.delMember(b.setNames[shard]!, (b.family === 4 ? '0.0.0.0/0,' : '::/0,') + iface);
      }
    }
    if (--b.refs > 0) return;
    this.bodies.delete(bk);
    this.desired.deleteChain(b.family, 'filter', b.chain);
    for (const name of b.setNames) this.desired.deleteIpset(name);
    this.dirtyDispatch = true;
  }

  private readonly rendered = new Map<string, { iface: string; kind: 'wep' | 'hep'; profiles: string[]; bodies: string[] }>();
  private readonly endpointChainCache = new Map<string, string[]>();

  private useProfile(name: string, ep: string): void {
    const st = this.profileState(name);
    st.users.add(ep);
    if (!st.active) this.dirtyProfiles.add(name);
  }

  private releaseProfile(name: string, ep: string): void {
    const st = this.profiles.get(name);
    if (!st) return;
    st.users.delete(ep);
    if (st.users.size === 0) this.dirtyProfiles.add(name);
  }

  // Dispatch: workloads through their bodies' interface sets (see renderEndpoint); host
  // endpoints by interface name.
  private readonly heps = new Set<string>();
  private dirtyHeps = true;

  private dispatchAdd(e: EndpointInput): void {
    if (!e.local || !e.iface || e.kind !== 'hep') return;
    this.heps.add(e.iface);
    this.dirtyHeps = true;
    this.dirtyDispatch = true;
  }

  private dispatchRemove(e: EndpointInput): void {
    if (!e.local || !e.iface || e.kind !== 'hep') return;
    this.heps.delete(e.iface);
    this.dirtyHeps = true;
    this.dirtyDispatch = true;
  }

  private renderDispatch(): void {
    const unknown = (f: Family) => `-m comment --comment "Unknown interface" ${denyTarget(this.config, f)}`;
    const bodies = [...this.bodies.keys()].sort();
    for (const f of this.families) {
      const from: string[] = [];
      const to: string[] = [];
      const fp = `${f}|`;
      for (const bk of bodies) {
        if (!bk.startsWith(fp)) continue;
        const chain = bk.slice(fp.length);
        const egress = chain.startsWith(this.names.prefix + 'fwb-');
        // hash:net,iface: `src,src` matches the incoming interface, `dst,dst` the outgoing one.
        for (const set of this.bodies.get(bk)!.setNames) {
          if (egress) from.push(`-m set --match-set ${set} src,src -g ${chain}`);
          else to.push(`-m set --match-set ${set} dst,dst -g ${chain}`);
        }
      }
      this.desired.setChain(f, 'filter', this.names.fromWlDispatch(), [...from, unknown(f)]);
      this.desired.setChain(f, 'filter', this.names.toWlDispatch(), [...to, unknown(f)]);
      if (this.dirtyHeps) {
        const heps = [...this.heps].sort();
        this.desired.setChain(f, 'filter', this.names.fromHostDispatch(), heps.map((i) => `-i ${i} -g ${this.names.fh(i)}`));
        this.desired.setChain(f, 'filter', this.names.toHostDispatch(), heps.map((i) => `-o ${i} -g ${this.names.th(i)}`));
      }
    }
    this.dirtyHeps = false;
  }

  private natSetKeys: string[] = [];

  private renderStaticChains(): void {
    if (this.desired.insertMode !== this.config.chainInsertMode) {
      this.desired.insertMode = this.config.chainInsertMode;
      this.desired.markAllDirty();
    }
    this.desired.maxIpsetSize = this.config.maxIpsetSize;
    const hostEndpoints = this.heps.size > 0;
    const newKeys: string[] = [];
    for (const f of this.families) {
      const pools = this.pools.filter((p) => !p.disabled && parseCidr(p.cidr)?.version === f);
      const masq = pools.filter((p) => p.natOutgoing);
      let nat: { masqSet: string; allSet: string } | undefined;
      if (masq.length) {
        const masqRef = this.refSet(f, { kind: 'nets', nets: masq.map((p) => p.cidr).sort() });
        const allRef = this.refSet(f, { kind: 'nets', nets: pools.map((p) => p.cidr).sort() });
        newKeys.push(masqRef.key, allRef.key);
        nat = { masqSet: masqRef.name, allSet: allRef.name };
      }
      const s = renderStatic(this.names, this.config, { family: f, nat, hostEndpoints });
      for (const t of ['filter', 'nat'] as const) {
        for (const [name, rules] of s.chains[t]) this.desired.setChain(f, t, name, rules);
        for (const [builtin, rules] of s.hooks[t]) this.desired.setHook(f, t, builtin, rules);
      }
    }
    for (const k of newKeys) this.incSet(k);
    for (const k of this.natSetKeys) this.decSet(k);
    this.natSetKeys = newKeys;
  }
}

export { FAMILIES };
