// The policy model: Calico NetworkPolicy / GlobalNetworkPolicy / Profile and Kubernetes
// networking.k8s.io/v1 NetworkPolicy, converted to one normalized form the renderer reads.
//
// Conversions follow Calico's own (libcalico-go updateprocessors/rules.go, k8s conversion):
// - a namespaced policy's rule selectors are limited to its namespace unless a
//   namespaceSelector is given; namespaceSelector keys get the `pcns.` prefix (namespace
//   labels reach endpoints through the `kns.<ns>` profile), `all()` there means "any
//   namespaced endpoint" and `global()` "any non-namespaced one";
// - serviceAccounts {names, selector} become `projectcalico.org/serviceaccount in {...}` and
//   `pcsa.`-prefixed selectors;
// - a Kubernetes NetworkPolicy becomes an ordered (1000) allow-list policy `knp.default.<name>`
//   selecting `projectcalico.org/orchestrator == 'k8s' && <podSelector>` in its namespace,
//   isolating each direction named by policyTypes (default Ingress, plus Egress when it has
//   egress rules).
import { canonicalCidr, parseCidr, type Resource } from '../datastore/index.js';
import {
  ALL,
  andSelectors,
  eqSelector,
  inSelector,
  mapSelector,
  parseSelector,
  prefixSelectorKeys,
  Selector,
  SelectorSyntaxError,
} from './selector.js';

export const LABEL_NAMESPACE = 'projectcalico.org/namespace';
export const LABEL_ORCHESTRATOR = 'projectcalico.org/orchestrator';
export const LABEL_SERVICEACCOUNT = 'projectcalico.org/serviceaccount';
export const NAMESPACE_LABEL_PREFIX = 'pcns.';
export const SERVICEACCOUNT_LABEL_PREFIX = 'pcsa.';

export type Action = 'Allow' | 'Deny' | 'Log' | 'Pass';

export interface PortRange {
  from: number;
  to: number;
}
export interface NamedPort {
  name: string;
}
export type PortMatch = PortRange | NamedPort;

export interface EntityMatch {
  /** canonical CIDRs (any family; the renderer keeps those of its family). */
  nets: string[];
  notNets: string[];
  /** canonical selector text (namespace and service accounts folded in); undefined = any. */
  selector?: string;
  notSelector?: string;
  ports: PortMatch[];
  notPorts: PortMatch[];
}

export interface IcmpMatch {
  type?: number;
  code?: number;
}

export interface NormRule {
  action: Action;
  ipVersion?: 4 | 6;
  /** iptables protocol name (`tcp`, `udp`, `icmp`, `ipv6-icmp`, `sctp`, `udplite`) or number as text. */
  protocol?: string;
  notProtocol?: string;
  icmp?: IcmpMatch;
  notICMP?: IcmpMatch;
  src: EntityMatch;
  dst: EntityMatch;
}

export type PolicyKind = 'np' | 'gnp' | 'knp';

export interface NormPolicy {
  /** `np/<ns>/<name>`, `gnp/<name>`, `knp/<ns>/<name>`: unique, and the chain-name seed. */
  id: string;
  kind: PolicyKind;
  name: string;
  namespace?: string;
  /** undefined sorts after every ordered policy. */
  order?: number;
  /** canonical applies-to selector. */
  selector: string;
  /** present when the policy applies in that direction (types). */
  ingress?: NormRule[];
  egress?: NormRule[];
  warnings: string[];
}

export interface NormProfile {
  name: string;
  ingress: NormRule[];
  egress: NormRule[];
  labelsToApply: Record<string, string>;
}

/** A resource the model could not convert; the message names the field. */
export class PolicyError extends Error {
  override name = 'PolicyError';
  constructor(
    readonly resource: string,
    readonly field: string,
    message: string,
  ) {
    super(`${resource}: ${field}: ${message}`);
  }
}

// ---------------------------------------------------------------------------------------
// Protocols and ports

const PROTO_NAMES: Record<string, string> = {
  tcp: 'tcp',
  udp: 'udp',
  icmp: 'icmp',
  icmpv6: 'ipv6-icmp',
  'ipv6-icmp': 'ipv6-icmp',
  sctp: 'sctp',
  udplite: 'udplite',
};
const PROTO_NUMBERS: Record<number, string> = { 6: 'tcp', 17: 'udp', 1: 'icmp', 58: 'ipv6-icmp', 132: 'sctp', 136: 'udplite' };

export function normProtocol(p: unknown, where: () => PolicyError): string | undefined {
  if (p === undefined || p === null || p === '') return undefined;
  if (typeof p === 'number' || (typeof p === 'string' && /^\d+$/.test(p))) {
    const n = Number(p);
    if (!Number.isInteger(n) || n < 1 || n > 255) throw where();
    return PROTO_NUMBERS[n] ?? String(n);
  }
  if (typeof p === 'string') {
    const v = PROTO_NAMES[p.toLowerCase()];
    if (v) return v;
  }
  throw where();
}

export function protoSupportsPorts(p: string | undefined): boolean {
  return p === 'tcp' || p === 'udp' || p === 'sctp' || p === 'udplite';
}

function parsePort(v: unknown, where: (m: string) => PolicyError): PortMatch {
  if (typeof v === 'number') {
    if (!Number.isInteger(v) || v < 0 || v > 65535) throw where(`port ${v} out of range 0-65535`);
    return { from: v, to: v };
  }
  if (typeof v === 'string') {
    const m = v.match(/^(\d+)(?::(\d+))?$/);
    if (m) {
      const from = Number(m[1]);
      const to = m[2] !== undefined ? Number(m[2]) : from;
      if (from > 65535 || to > 65535) throw where(`port ${v} out of range 0-65535`);
      if (to < from) throw where(`port range ${v} is empty (end before start)`);
      return { from, to };
    }
    if (/^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$/.test(v) && v.length <= 15) return { name: v };
    throw where(`invalid port ${JSON.stringify(v)} (number, "from:to" or a port name)`);
  }
  throw where(`invalid port ${JSON.stringify(v)}`);
}

// ---------------------------------------------------------------------------------------
// Selectors

function sel(text: unknown, resource: string, field: string): Selector {
  if (text === undefined || text === null) return ALL;
  if (typeof text !== 'string') throw new PolicyError(resource, field, 'selector must be a string');
  try {
    return parseSelector(text);
  } catch (e) {
    if (e instanceof SelectorSyntaxError) throw new PolicyError(resource, field, e.message);
    throw e;
  }
}

/** Calico's namespaceSelector conversion: `pcns.` keys, all() = namespaced, global() = not namespaced. */
export function namespaceSelectorToEndpointSelector(ns: Selector): Selector {
  return mapSelector(prefixSelectorKeys(ns, NAMESPACE_LABEL_PREFIX), (n) => {
    if (n.op === 'all') return { op: 'has', key: LABEL_NAMESPACE };
    if (n.op === 'global') return { op: 'not', operand: { op: 'has', key: LABEL_NAMESPACE } };
    return n;
  });
}

function entitySelector(er: any, ns: string | undefined, resource: string, field: string): { selector?: string; notSelector?: string } {
  const hasNsSel = typeof er.namespaceSelector === 'string' && er.namespaceSelector !== '' ;
  let nsSelector: Selector | undefined;
  if (hasNsSel) nsSelector = namespaceSelectorToEndpointSelector(sel(er.namespaceSelector, resource, `${field}.namespaceSelector`));
  else if (ns) nsSelector = eqSelector(LABEL_NAMESPACE, ns);
  const parts: Selector[] = [];
  if (er.serviceAccounts) {
    const sa = er.serviceAccounts;
    if (sa.selector) parts.push(prefixSelectorKeys(sel(sa.selector, resource, `${field}.serviceAccounts.selector`), SERVICEACCOUNT_LABEL_PREFIX));
    if (Array.isArray(sa.names) && sa.names.length > 0) parts.push(inSelector(LABEL_SERVICEACCOUNT, sa.names.map(String)));
  }
  const hasSel = typeof er.selector === 'string' && er.selector !== '';
  if (hasSel) parts.push(sel(er.selector, resource, `${field}.selector`));
  const hasNot = typeof er.notSelector === 'string' && er.notSelector !== '';
  let selector: Selector | undefined = parts.length ? andSelectors(...parts) : undefined;
  if (parts.length === 1 && parts[0]!.isAll()) selector = ALL;
  if (nsSelector && (parts.length > 0 || hasNot || hasNsSel)) selector = selector ? andSelectors(nsSelector, selector) : nsSelector;
  return {
    selector: selector?.toString(),
    notSelector: hasNot ? sel(er.notSelector, resource, `${field}.notSelector`).toString() : undefined,
  };
}

function nets(list: unknown, resource: string, field: string): string[] {
  if (list === undefined || list === null) return [];
  if (!Array.isArray(list)) throw new PolicyError(resource, field, 'must be a list of CIDRs');
  return list.map((n, i) => {
    const text = String(n);
    const c = parseCidr(text.includes('/') ? text : text.includes(':') ? `${text}/128` : `${text}/32`);
    if (!c) throw new PolicyError(resource, `${field}[${i}]`, `invalid CIDR ${JSON.stringify(n)}`);
    return canonicalCidr(text.includes('/') ? text : text.includes(':') ? `${text}/128` : `${text}/32`);
  });
}

function ports(list: unknown, resource: string, field: string): PortMatch[] {
  if (list === undefined || list === null) return [];
  if (!Array.isArray(list)) throw new PolicyError(resource, field, 'must be a list of ports');
  return list.map((p, i) => parsePort(p, (m) => new PolicyError(resource, `${field}[${i}]`, m)));
}

function entity(er: any, ns: string | undefined, resource: string, field: string, warnings: string[]): EntityMatch {
  er = er ?? {};
  if (er.services) warnings.push(`${field}.services is not implemented by Petrel (rule matches as if it were absent)`);
  return {
    nets: nets(er.nets, resource, `${field}.nets`),
    notNets: nets(er.notNets, resource, `${field}.notNets`),
    ...entitySelector(er, ns, resource, field),
    ports: ports(er.ports, resource, `${field}.ports`),
    notPorts: ports(er.notPorts, resource, `${field}.notPorts`),
  };
}

function icmp(v: any, resource: string, field: string): IcmpMatch | undefined {
  if (!v) return undefined;
  const out: IcmpMatch = {};
  if (v.type !== undefined) {
    if (!Number.isInteger(v.type) || v.type < 0 || v.type > 254) throw new PolicyError(resource, `${field}.type`, `invalid ICMP type ${v.type}`);
    out.type = v.type;
  }
  if (v.code !== undefined) {
    if (out.type === undefined) throw new PolicyError(resource, `${field}.code`, 'ICMP code needs a type');
    if (!Number.isInteger(v.code) || v.code < 0 || v.code > 255) throw new PolicyError(resource, `${field}.code`, `invalid ICMP code ${v.code}`);
    out.code = v.code;
  }
  return out;
}

const ACTIONS = new Set(['Allow', 'Deny', 'Log', 'Pass']);

export function convertRule(r: any, ns: string | undefined, resource: string, field: string, warnings: string[]): NormRule {
  if (!r || typeof r !== 'object') throw new PolicyError(resource, field, 'rule must be an object');
  const action = typeof r.action === 'string' ? r.action[0]?.toUpperCase() + r.action.slice(1).toLowerCase() : r.action;
  if (!ACTIONS.has(action)) throw new PolicyError(resource, `${field}.action`, `invalid action ${JSON.stringify(r.action)} (Allow, Deny, Log or Pass)`);
  const protocol = normProtocol(r.protocol, () => new PolicyError(resource, `${field}.protocol`, `invalid protocol ${JSON.stringify(r.protocol)}`));
  const notProtocol = normProtocol(r.notProtocol, () => new PolicyError(resource, `${field}.notProtocol`, `invalid protocol ${JSON.stringify(r.notProtocol)}`));
  let ipVersion: 4 | 6 | undefined;
  if (r.ipVersion !== undefined && r.ipVersion !== null) {
    if (r.ipVersion !== 4 && r.ipVersion !== 6) throw new PolicyError(resource, `${field}.ipVersion`, `must be 4 or 6`);
    ipVersion = r.ipVersion;
  }
  const rule: NormRule = {
    action: action as Action,
    ipVersion,
    protocol,
    notProtocol,
    icmp: icmp(r.icmp, resource, `${field}.icmp`),
    notICMP: icmp(r.notICMP, resource, `${field}.notICMP`),
    src: entity(r.source, ns, resource, `${field}.source`, warnings),
    dst: entity(r.destination, ns, resource, `${field}.destination`, warnings),
  };
  for (const [side, em] of [['source', rule.src], ['destination', rule.dst]] as const) {
    if ((em.ports.length || em.notPorts.length) && !protoSupportsPorts(protocol)) {
      throw new PolicyError(resource, `${field}.${side}.ports`, 'ports need protocol TCP, UDP, SCTP or UDPLite');
    }
  }
  if ((rule.icmp || rule.notICMP) && protocol !== 'icmp' && protocol !== 'ipv6-icmp') {
    throw new PolicyError(resource, `${field}.icmp`, 'icmp/notICMP need protocol ICMP or ICMPv6');
  }
  if (r.http) warnings.push(`${field}.http is not implemented by Petrel (needs an L7 proxy); the rule matches as if it were absent`);
  return rule;
}

function rules(list: unknown, ns: string | undefined, resource: string, field: string, warnings: string[]): NormRule[] {
  if (list === undefined || list === null) return [];
  if (!Array.isArray(list)) throw new PolicyError(resource, field, 'must be a list of rules');
  return list.map((r, i) => convertRule(r, ns, resource, `${field}[${i}]`, warnings));
}

function typesOf(spec: any, resource: string): { ingress: boolean; egress: boolean } {
  if (Array.isArray(spec.types) && spec.types.length > 0) {
    const t = { ingress: false, egress: false };
    for (const x of spec.types) {
      if (x === 'Ingress') t.ingress = true;
      else if (x === 'Egress') t.egress = true;
      else throw new PolicyError(resource, 'spec.types', `invalid type ${JSON.stringify(x)} (Ingress or Egress)`);
    }
    return t;
  }
  // Calico's default: Ingress, plus Egress when there are egress rules (Egress alone when only egress rules).
  const hasEgress = Array.isArray(spec.egress) && spec.egress.length > 0;
  const hasIngress = Array.isArray(spec.ingress) && spec.ingress.length > 0;
  return { ingress: hasIngress || !hasEgress, egress: hasEgress };
}

function order(v: unknown, resource: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  const n = typeof v === 'string' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isFinite(n)) throw new PolicyError(resource, 'spec.order', `invalid order ${JSON.stringify(v)}`);
  return n;
}

function describeRes(r: Resource): string {
  return `${r.kind} ${r.metadata.namespace ? `${r.metadata.namespace}/` : ''}${r.metadata.name}`;
}

/** Calico NetworkPolicy (namespaced) or GlobalNetworkPolicy. Throws PolicyError on bad input. */
export function convertCalicoPolicy(r: Resource, global: boolean): NormPolicy {
  const resource = describeRes(r);
  const spec: any = r.spec ?? {};
  const ns = global ? undefined : (r.metadata.namespace ?? 'default');
  const warnings: string[] = [];
  if (spec.tier && spec.tier !== 'default') warnings.push(`spec.tier ${spec.tier}: Petrel has one tier; the policy is ordered within it`);
  for (const f of ['doNotTrack', 'preDNAT']) if (spec[f]) warnings.push(`spec.${f} is not implemented by Petrel (policy applies as a normal policy)`);
  let applies = sel(spec.selector, resource, 'spec.selector');
  if (ns) applies = andSelectors(eqSelector(LABEL_NAMESPACE, ns), applies);
  if (global && typeof spec.namespaceSelector === 'string' && spec.namespaceSelector !== '') {
    applies = andSelectors(namespaceSelectorToEndpointSelector(sel(spec.namespaceSelector, resource, 'spec.namespaceSelector')), applies);
  }
  if (typeof spec.serviceAccountSelector === 'string' && spec.serviceAccountSelector !== '') {
    applies = andSelectors(prefixSelectorKeys(sel(spec.serviceAccountSelector, resource, 'spec.serviceAccountSelector'), SERVICEACCOUNT_LABEL_PREFIX), applies);
  }
  const types = typesOf(spec, resource);
  const name = r.metadata.name;
  return {
    id: global ? `gnp/${name}` : `np/${ns}/${name}`,
    kind: global ? 'gnp' : 'np',
    name,
    namespace: ns,
    order: order(spec.order, resource),
    selector: applies.toString(),
    ingress: types.ingress ? rules(spec.ingress, ns, resource, 'spec.ingress', warnings) : undefined,
    egress: types.egress ? rules(spec.egress, ns, resource, 'spec.egress', warnings) : undefined,
    warnings,
  };
}

/** Kubernetes LabelSelector → Calico selector (empty = all()). */
export function k8sLabelSelector(ls: any, resource: string, field: string): Selector {
  if (ls === undefined || ls === null) return ALL;
  if (typeof ls !== 'object') throw new PolicyError(resource, field, 'must be a label selector');
  const parts: Selector[] = [];
  for (const [k, v] of Object.entries(ls.matchLabels ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    parts.push(eqSelector(k, String(v)));
  }
  const exprs = ls.matchExpressions ?? [];
  if (!Array.isArray(exprs)) throw new PolicyError(resource, `${field}.matchExpressions`, 'must be a list');
  exprs.forEach((e: any, i: number) => {
    const f = `${field}.matchExpressions[${i}]`;
    if (!e || typeof e.key !== 'string' || !e.key) throw new PolicyError(resource, `${f}.key`, 'required');
    const values: string[] = Array.isArray(e.values) ? e.values.map(String) : [];
    switch (e.operator) {
      case 'In':
        if (!values.length) throw new PolicyError(resource, `${f}.values`, 'In needs at least one value');
        parts.push(inSelector(e.key, values));
        break;
      case 'NotIn':
        if (!values.length) throw new PolicyError(resource, `${f}.values`, 'NotIn needs at least one value');
        parts.push(new Selector({ op: 'not in', key: e.key, values: [...new Set(values)].sort() }));
        break;
      case 'Exists':
        parts.push(new Selector({ op: 'has', key: e.key }));
        break;
      case 'DoesNotExist':
        parts.push(new Selector({ op: 'not', operand: { op: 'has', key: e.key } }));
        break;
      default:
        throw new PolicyError(resource, `${f}.operator`, `invalid operator ${JSON.stringify(e.operator)} (In, NotIn, Exists, DoesNotExist)`);
    }
  });
  return andSelectors(...parts);
}

const K8S_ORCH = eqSelector(LABEL_ORCHESTRATOR, 'k8s');

/** Kubernetes networking.k8s.io/v1 NetworkPolicy, with exactly Kubernetes' semantics. */
export function convertK8sPolicy(r: Resource): NormPolicy {
  const resource = describeRes(r);
  const spec: any = r.spec ?? {};
  const ns = r.metadata.namespace ?? 'default';
  const warnings: string[] = [];
  const podSel = k8sLabelSelector(spec.podSelector, resource, 'spec.podSelector');
  let types: { ingress: boolean; egress: boolean };
  if (Array.isArray(spec.policyTypes) && spec.policyTypes.length > 0) {
    types = { ingress: false, egress: false };
    for (const t of spec.policyTypes) {
      if (t === 'Ingress') types.ingress = true;
      else if (t === 'Egress') types.egress = true;
      else throw new PolicyError(resource, 'spec.policyTypes', `invalid type ${JSON.stringify(t)} (Ingress or Egress)`);
    }
  } else {
    types = { ingress: true, egress: Array.isArray(spec.egress) && spec.egress.length > 0 };
  }
  const convertSide = (list: any, dir: 'ingress' | 'egress'): NormRule[] => {
    if (list === undefined || list === null) return [];
    if (!Array.isArray(list)) throw new PolicyError(resource, `spec.${dir}`, 'must be a list');
    const out: NormRule[] = [];
    list.forEach((k8r: any, i: number) => {
      const field = `spec.${dir}[${i}]`;
      const peersField = dir === 'ingress' ? 'from' : 'to';
      const peers: any[] | undefined = k8r?.[peersField];
      const portsList: any[] = Array.isArray(k8r?.ports) ? k8r.ports : [];
      // Ports grouped by protocol; a port-less entry of a protocol allows the whole protocol.
      const byProto: Array<{ protocol: string; ports: PortMatch[] }> = [];
      portsList.forEach((p: any, j: number) => {
        const pf = `${field}.ports[${j}]`;
        const protoName = p?.protocol ?? 'TCP';
        if (!['TCP', 'UDP', 'SCTP'].includes(protoName)) throw new PolicyError(resource, `${pf}.protocol`, `invalid protocol ${JSON.stringify(protoName)} (TCP, UDP or SCTP)`);
        const protocol = protoName.toLowerCase();
        let pm: PortMatch | undefined;
        if (p?.port !== undefined && p?.port !== null) {
          pm = parsePort(p.port, (m) => new PolicyError(resource, `${pf}.port`, m));
          if ('from' in pm && p.endPort !== undefined && p.endPort !== null) {
            if (!Number.isInteger(p.endPort) || p.endPort < pm.from || p.endPort > 65535) {
              throw new PolicyError(resource, `${pf}.endPort`, `endPort ${p.endPort} must be an integer between port and 65535`);
            }
            pm = { from: pm.from, to: p.endPort };
          } else if ('name' in pm && p.endPort !== undefined && p.endPort !== null) {
            throw new PolicyError(resource, `${pf}.endPort`, 'endPort needs a numeric port');
          }
        } else if (p?.endPort !== undefined && p?.endPort !== null) {
          throw new PolicyError(resource, `${pf}.endPort`, 'endPort needs port');
        }
        let g = byProto.find((x) => x.protocol === protocol && (pm ? x.ports.length > 0 : x.ports.length === 0));
        if (!g) byProto.push((g = { protocol, ports: [] }));
        if (pm) g.ports.push(pm);
      });
      const portAlternatives: Array<{ protocol?: string; ports: PortMatch[] }> = byProto.length ? byProto : [{ ports: [] }];
      const peerMatches: EntityMatch[] = [];
      if (peers === undefined || peers === null || (Array.isArray(peers) && peers.length === 0)) {
        peerMatches.push({ nets: [], notNets: [], ports: [], notPorts: [] });
      } else {
        if (!Array.isArray(peers)) throw new PolicyError(resource, `${field}.${peersField}`, 'must be a list');
        peers.forEach((peer: any, j: number) => {
          const pf = `${field}.${peersField}[${j}]`;
          if (peer?.ipBlock) {
            if (peer.podSelector || peer.namespaceSelector) throw new PolicyError(resource, pf, 'ipBlock cannot be combined with podSelector or namespaceSelector');
            const cidr = nets([peer.ipBlock.cidr], resource, `${pf}.ipBlock.cidr`);
            const except = nets(peer.ipBlock.except ?? [], resource, `${pf}.ipBlock.except`);
            peerMatches.push({ nets: cidr, notNets: except, ports: [], notPorts: [] });
            return;
          }
          if (!peer || (peer.podSelector === undefined && peer.namespaceSelector === undefined)) {
            throw new PolicyError(resource, pf, 'a peer needs podSelector, namespaceSelector or ipBlock');
          }
          let s: Selector;
          if (peer.namespaceSelector !== undefined && peer.namespaceSelector !== null) {
            const nsSel = namespaceSelectorToEndpointSelector(k8sLabelSelector(peer.namespaceSelector, resource, `${pf}.namespaceSelector`));
            // all() → has(projectcalico.org/namespace): any namespace
            const nsPart = k8sLabelSelector(peer.namespaceSelector, resource, `${pf}.namespaceSelector`).isAll()
              ? new Selector({ op: 'has', key: LABEL_NAMESPACE })
              : nsSel;
            s = andSelectors(nsPart, K8S_ORCH, k8sLabelSelector(peer.podSelector, resource, `${pf}.podSelector`));
          } else {
            s = andSelectors(eqSelector(LABEL_NAMESPACE, ns), K8S_ORCH, k8sLabelSelector(peer.podSelector, resource, `${pf}.podSelector`));
          }
          peerMatches.push({ nets: [], notNets: [], selector: s.toString(), ports: [], notPorts: [] });
        });
      }
      for (const peer of peerMatches) {
        for (const pa of portAlternatives) {
          const none: EntityMatch = { nets: [], notNets: [], ports: [], notPorts: [] };
          const portSide: EntityMatch = { ...none, ports: pa.ports };
          out.push({
            action: 'Allow',
            protocol: pa.protocol,
            src: dir === 'ingress' ? peer : none,
            dst: dir === 'ingress' ? portSide : { ...peer, ports: pa.ports },
          });
        }
      }
    });
    return out;
  };
  return {
    id: `knp/${ns}/${r.metadata.name}`,
    kind: 'knp',
    name: r.metadata.name,
    namespace: ns,
    order: 1000,
    selector: andSelectors(eqSelector(LABEL_NAMESPACE, ns), K8S_ORCH, podSel).toString(),
    ingress: types.ingress ? convertSide(spec.ingress, 'ingress') : undefined,
    egress: types.egress ? convertSide(spec.egress, 'egress') : undefined,
    warnings,
  };
}

/** Calico Profile (namespace / service-account profiles, or user profiles). */
export function convertProfile(r: Resource): NormProfile {
  const resource = describeRes(r);
  const spec: any = r.spec ?? {};
  const warnings: string[] = [];
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(spec.labelsToApply ?? {})) labels[k] = String(v);
  return {
    name: r.metadata.name,
    ingress: rules(spec.ingress, undefined, resource, 'spec.ingress', warnings),
    egress: rules(spec.egress, undefined, resource, 'spec.egress', warnings),
    labelsToApply: labels,
  };
}

/** Felix's policy order: by order (absent last), then name. */
export function comparePolicies(a: NormPolicy, b: NormPolicy): number {
  const oa = a.order ?? Number.POSITIVE_INFINITY;
  const ob = b.order ?? Number.POSITIVE_INFINITY;
  if (oa !== ob) return oa < ob ? -1 : 1;
  const na = policySortName(a);
  const nb = policySortName(b);
  return na < nb ? -1 : na > nb ? 1 : 0;
}

const sortNames = new WeakMap<NormPolicy, string>();

function policySortName(p: NormPolicy): string {
  let n = sortNames.get(p);
  if (n === undefined) {
    // Calico sorts by name; a Kubernetes policy's Calico name is knp.default.<name>.
    n = `${p.kind === 'knp' ? `knp.default.${p.name}` : p.name}\0${p.namespace ?? ''}`;
    sortNames.set(p, n);
  }
  return n;
}
