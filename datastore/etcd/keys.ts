// The etcdv3 key layout (CONTRACT §3; docs in README "etcd datastore"):
//
//   /calico/resources/v3/projectcalico.org/<plural>/[<namespace>/]<name>   Calico kinds, the
//       resource as JSON exactly as calicoctl writes it (apiVersion projectcalico.org/v3).
//   /petrel/k8s/<plural>/[<namespace>/]<name>                             the Kubernetes kinds
//       (Pod, Namespace, ServiceAccount, Service, EndpointSlice, networking.k8s.io NetworkPolicy,
//       v1 Node) as their Kubernetes JSON, so one set of k8s manifests drives etcd too.
//   /calico/ipam/v2/assignment/ipv<4|6>/block/<cidr, / as ->             IPAM blocks,
//   /calico/ipam/v2/host/<node>/ipv<4|6>/block/<cidr>                      block affinities,
//   /calico/ipam/v2/handle/<id>                                            handles: Calico's own
//       IPAM layout and JSON (libcalico-go model), mapped to/from the projectcalico.org/v3
//       IPAMBlock / BlockAffinity / IPAMHandle resources Calico's Kubernetes datastore uses.
//   /petrel/nodestatus/<node>                                              each agent's status,
//       under a lease (see nodestatus.ts).
import { CALICO_API, KINDS, type KindId, type KindInfo, type Resource, kindInfo } from '../types.js';

export const CALICO_PREFIX = '/calico/resources/v3/projectcalico.org/';
export const K8S_PREFIX = '/petrel/k8s/';
export const IPAM_PREFIX = '/calico/ipam/v2/';
export const NODESTATUS_PREFIX = '/petrel/nodestatus/';
/** Every prefix the watch covers. */
export const WATCH_PREFIXES = [CALICO_PREFIX, IPAM_PREFIX, K8S_PREFIX];

const IPAM_KINDS = new Set<KindId>(['IPAMBlock', 'BlockAffinity', 'IPAMHandle']);
const CALICO_BY_PLURAL = new Map<string, KindInfo>();
const K8S_BY_PLURAL = new Map<string, KindInfo>();
for (const k of KINDS) {
  if (IPAM_KINDS.has(k.id)) continue;
  (k.apiVersion === CALICO_API ? CALICO_BY_PLURAL : K8S_BY_PLURAL).set(k.plural, k);
}

/** the kind parseEtcdKey found last under each prefix */
let lastCalico: KindInfo | undefined;
let lastK8s: KindInfo | undefined;

export function isIpamKind(kind: KindId): boolean {
  return IPAM_KINDS.has(kind);
}

/** What a key holds: a stored resource, an IPAM object, or nothing Petrel reads. */
export type KeyInfo =
  | { form: 'resource'; kind: KindInfo; name: string; namespace?: string }
  | { form: 'ipam-block'; kind: KindInfo; cidrKey: string }
  | { form: 'ipam-affinity'; kind: KindInfo; node: string; cidrKey: string }
  | { form: 'ipam-handle'; kind: KindInfo; handleId: string };

export function parseEtcdKey(key: string): KeyInfo | undefined {
  const calico = key.startsWith(CALICO_PREFIX);
  if (calico || key.startsWith(K8S_PREFIX)) {
    // <plural>/<name> or <plural>/<namespace>/<name>, both parts non-empty, nothing more
    const from = calico ? CALICO_PREFIX.length : K8S_PREFIX.length;
    const s1 = key.indexOf('/', from);
    if (s1 < 0) return undefined;
    // keys come sorted, so mostly of the kind before: matched in place, no slice
    const last = calico ? lastCalico : lastK8s;
    let kind: KindInfo | undefined;
    if (last !== undefined && s1 - from === last.plural.length && key.startsWith(last.plural, from)) kind = last;
    else {
      kind = (calico ? CALICO_BY_PLURAL : K8S_BY_PLURAL).get(key.slice(from, s1));
      if (!kind) return undefined;
      if (calico) lastCalico = kind;
      else lastK8s = kind;
    }
    const s2 = key.indexOf('/', s1 + 1);
    if (kind.namespaced) {
      if (s2 < 0 || key.indexOf('/', s2 + 1) >= 0 || s2 === s1 + 1 || s2 === key.length - 1) return undefined;
      return { form: 'resource', kind, namespace: key.slice(s1 + 1, s2), name: key.slice(s2 + 1) };
    }
    if (s2 >= 0 || s1 === key.length - 1) return undefined;
    return { form: 'resource', kind, name: key.slice(s1 + 1) };
  }
  if (key.startsWith(IPAM_PREFIX)) {
    const parts = key.slice(IPAM_PREFIX.length).split('/');
    // assignment/ipv4/block/<cidr>
    if (parts.length === 4 && parts[0] === 'assignment' && /^ipv[46]$/.test(parts[1]!) && parts[2] === 'block' && parts[3]) {
      return { form: 'ipam-block', kind: kindInfo('IPAMBlock'), cidrKey: parts[3] };
    }
    // host/<node>/ipv4/block/<cidr>
    if (parts.length === 5 && parts[0] === 'host' && parts[1] && /^ipv[46]$/.test(parts[2]!) && parts[3] === 'block' && parts[4]) {
      return { form: 'ipam-affinity', kind: kindInfo('BlockAffinity'), node: parts[1], cidrKey: parts[4] };
    }
    // handle/<id> (an id may hold '/'? Calico's do not; take the rest)
    if (parts.length >= 2 && parts[0] === 'handle' && parts.slice(1).join('/')) {
      return { form: 'ipam-handle', kind: kindInfo('IPAMHandle'), handleId: parts.slice(1).join('/') };
    }
  }
  return undefined;
}

/** `10.65.0.0/26` → `10.65.0.0-26` (Calico's etcd key form). */
export const cidrToKey = (cidr: string) => cidr.replace('/', '-');
/** `10.65.0.0-26` → `10.65.0.0/26`. */
export function cidrFromKey(k: string): string {
  const i = k.lastIndexOf('-');
  return i < 0 ? k : `${k.slice(0, i)}/${k.slice(i + 1)}`;
}
/** Calico's CIDRToName (`.`, `:`, `/` → `-`): the Kubernetes name of an IPAMBlock. */
export const cidrToName = (cidr: string) => cidr.replace(/[.:/]/g, '-');
const ipVersion = (cidr: string) => (cidr.includes(':') ? 6 : 4);

/** The etcd key of a resource (any kind). */
export function etcdKeyOf(kind: KindId, name: string, namespace?: string, spec?: Record<string, any>): string {
  const k = kindInfo(kind);
  if (kind === 'IPAMBlock') {
    const cidr = spec?.cidr;
    if (typeof cidr !== 'string') throw new Error(`IPAMBlock ${name}: spec.cidr is needed for its etcd key`);
    return `${IPAM_PREFIX}assignment/ipv${ipVersion(cidr)}/block/${cidrToKey(cidr)}`;
  }
  if (kind === 'BlockAffinity') {
    const cidr = spec?.cidr;
    const node = spec?.node;
    if (typeof cidr !== 'string' || typeof node !== 'string') throw new Error(`BlockAffinity ${name}: spec.node and spec.cidr are needed for its etcd key`);
    return `${IPAM_PREFIX}host/${node}/ipv${ipVersion(cidr)}/block/${cidrToKey(cidr)}`;
  }
  if (kind === 'IPAMHandle') {
    const id = typeof spec?.handleID === 'string' ? spec.handleID : name;
    return `${IPAM_PREFIX}handle/${id}`;
  }
  const base = k.apiVersion === CALICO_API ? CALICO_PREFIX : K8S_PREFIX;
  return k.namespaced ? `${base}${k.plural}/${namespace ?? 'default'}/${name}` : `${base}${k.plural}/${name}`;
}

/** The prefix holding every object of a kind (for list), optionally one namespace. */
export function etcdPrefixOf(kind: KindId, namespace?: string): string {
  const k = kindInfo(kind);
  if (kind === 'IPAMBlock') return `${IPAM_PREFIX}assignment/`;
  if (kind === 'BlockAffinity') return `${IPAM_PREFIX}host/`;
  if (kind === 'IPAMHandle') return `${IPAM_PREFIX}handle/`;
  const base = k.apiVersion === CALICO_API ? CALICO_PREFIX : K8S_PREFIX;
  return k.namespaced && namespace ? `${base}${k.plural}/${namespace}/` : `${base}${k.plural}/`;
}

const dropNulls = (o: Record<string, any>) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== null && v !== undefined));

/** The raw (unvalidated) projectcalico.org/v3 resource of an IPAM key's JSON value. */
export function ipamToResource(info: KeyInfo, j: any): Record<string, any> {
  if (typeof j !== 'object' || j === null || Array.isArray(j)) throw new Error('value is not a JSON object');
  switch (info.form) {
    case 'ipam-block': {
      const cidr = typeof j.cidr === 'string' ? j.cidr : cidrFromKey(info.cidrKey);
      return {
        apiVersion: CALICO_API,
        kind: 'IPAMBlock',
        metadata: { name: cidrToName(cidr) },
        spec: dropNulls({
          cidr,
          affinity: j.affinity ?? j.hostAffinity ?? null,
          affinityClaimTime: j.affinity_claim_time ?? j.affinityClaimTime ?? null,
          strictAffinity: !!j.strictAffinity,
          allocations: j.allocations ?? [],
          unallocated: j.unallocated ?? [],
          attributes: (j.attributes ?? []).map((a: any) => dropNulls({ handle_id: a?.handle_id ?? null, secondary: a?.secondary ?? null, releasedAt: a?.releasedAt ?? null })),
          sequenceNumber: j.sequenceNumber ?? 0,
          sequenceNumberForAllocation: j.sequenceNumberForAllocation ?? null,
          deleted: !!j.deleted,
        }),
      };
    }
    case 'ipam-affinity': {
      const cidr = cidrFromKey(info.cidrKey);
      return {
        apiVersion: CALICO_API,
        kind: 'BlockAffinity',
        metadata: { name: `${info.node}-${cidrToName(cidr)}` },
        spec: { state: j.state || 'confirmed', node: info.node, cidr, deleted: !!j.deleted },
      };
    }
    case 'ipam-handle':
      return {
        apiVersion: CALICO_API,
        kind: 'IPAMHandle',
        metadata: { name: info.handleId.toLowerCase() },
        spec: { handleID: info.handleId, block: j.block ?? {}, deleted: !!j.deleted },
      };
    default:
      throw new Error('not an IPAM key');
  }
}

/** The JSON Calico stores at an IPAM key for a (validated) v3 IPAM resource. */
export function ipamFromResource(r: Resource): unknown {
  const s = (r.spec ?? {}) as Record<string, any>;
  switch (r.kind) {
    case 'IPAMBlock':
      return {
        cidr: s.cidr,
        affinity: s.affinity ?? null,
        ...(s.affinityClaimTime ? { affinity_claim_time: s.affinityClaimTime } : {}),
        strictAffinity: !!s.strictAffinity,
        allocations: s.allocations ?? [],
        unallocated: s.unallocated ?? [],
        attributes: (s.attributes ?? []).map((a: any) => ({ handle_id: a.handle_id ?? null, secondary: a.secondary ?? null, ...(a.releasedAt ? { releasedAt: a.releasedAt } : {}) })),
        deleted: !!s.deleted,
        sequenceNumber: s.sequenceNumber ?? 0,
        sequenceNumberForAllocation: s.sequenceNumberForAllocation ?? {},
      };
    case 'BlockAffinity':
      return { state: s.state ?? 'confirmed', deleted: !!s.deleted };
    case 'IPAMHandle':
      return { block: s.block ?? {}, deleted: !!s.deleted };
    default:
      throw new Error(`${r.kind} is not an IPAM kind`);
  }
}
