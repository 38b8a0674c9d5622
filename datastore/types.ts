// The resource model shared by every backend and consumer, and the one watch interface
// every backend implements. Backends know storage, not meaning (docs/architecture.md).

/** Kubernetes-style object metadata, as Calico and Kubernetes both use it. */
export interface ObjectMeta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  resourceVersion?: string;
  uid?: string;
  creationTimestamp?: string;
  generation?: number;
  [field: string]: unknown;
}

/**
 * A resource as users write it (apiVersion/kind/metadata/spec), after validation and
 * defaulting. `spec` is typed per kind in `datastore/model.ts`; this is the common envelope.
 */
export interface Resource<Spec = Record<string, any>> {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec?: Spec;
  status?: any;
  [field: string]: unknown;
}

/**
 * Internal identity of a kind. Two API kinds share a `kind` string (Calico and Kubernetes
 * `NetworkPolicy`, Calico and Kubernetes `Node`), so Petrel names each by a unique id.
 */
export type KindId =
  | 'IPPool'
  | 'Node'
  | 'BGPConfiguration'
  | 'BGPPeer'
  | 'WorkloadEndpoint'
  | 'HostEndpoint'
  | 'NetworkPolicy'
  | 'GlobalNetworkPolicy'
  | 'NetworkSet'
  | 'GlobalNetworkSet'
  | 'Profile'
  | 'FelixConfiguration'
  | 'BlockAffinity'
  | 'IPAMBlock'
  | 'IPAMHandle'
  | 'KubernetesNetworkPolicy'
  | 'Namespace'
  | 'Pod'
  | 'Service'
  | 'ServiceAccount'
  | 'KubernetesNode'
  | 'EndpointSlice';

export interface KindInfo {
  id: KindId;
  /** `kind` as written in manifests. */
  kind: string;
  /** `apiVersion` as written in manifests. */
  apiVersion: string;
  /** lower-case plural: the etcd key segment and the Kubernetes resource name. */
  plural: string;
  /** accepted by `petrel ctl` besides the kind and plural (lower-case). */
  aliases: string[];
  namespaced: boolean;
}

export const CALICO_API = 'projectcalico.org/v3';

const calico = (id: KindId, plural: string, namespaced: boolean, aliases: string[]): KindInfo => ({
  id,
  kind: id,
  apiVersion: CALICO_API,
  plural,
  aliases,
  namespaced,
});

/** Every kind of CONTRACT §3 (plus the few Calico/K8s kinds that policy and IPAM need). */
export const KINDS: readonly KindInfo[] = [
  calico('IPPool', 'ippools', false, ['ippool', 'pool', 'pools', 'ipp']),
  calico('Node', 'nodes', false, ['node', 'no']),
  calico('BGPConfiguration', 'bgpconfigurations', false, ['bgpconfiguration', 'bgpconfig', 'bgpconfigs']),
  calico('BGPPeer', 'bgppeers', false, ['bgppeer', 'bgpp', 'peer', 'peers']),
  calico('WorkloadEndpoint', 'workloadendpoints', true, ['workloadendpoint', 'wep', 'weps']),
  calico('HostEndpoint', 'hostendpoints', false, ['hostendpoint', 'hep', 'heps']),
  calico('NetworkPolicy', 'networkpolicies', true, ['networkpolicy', 'policy', 'policies', 'netpol', 'np']),
  calico('GlobalNetworkPolicy', 'globalnetworkpolicies', false, ['globalnetworkpolicy', 'gnp', 'gnps']),
  calico('NetworkSet', 'networksets', true, ['networkset', 'netset']),
  calico('GlobalNetworkSet', 'globalnetworksets', false, ['globalnetworkset', 'gns']),
  calico('Profile', 'profiles', false, ['profile', 'pro']),
  calico('FelixConfiguration', 'felixconfigurations', false, ['felixconfiguration', 'felixconfig', 'felixconfigs']),
  calico('BlockAffinity', 'blockaffinities', false, ['blockaffinity', 'affinity', 'affinities']),
  calico('IPAMBlock', 'ipamblocks', false, ['ipamblock', 'block', 'blocks']),
  calico('IPAMHandle', 'ipamhandles', false, ['ipamhandle', 'handle', 'handles']),
  {
    id: 'KubernetesNetworkPolicy',
    kind: 'NetworkPolicy',
    apiVersion: 'networking.k8s.io/v1',
    plural: 'networkpolicies',
    aliases: ['k8snetworkpolicy', 'knp', 'kubernetesnetworkpolicy'],
    namespaced: true,
  },
  { id: 'Namespace', kind: 'Namespace', apiVersion: 'v1', plural: 'namespaces', aliases: ['namespace', 'ns'], namespaced: false },
  { id: 'Pod', kind: 'Pod', apiVersion: 'v1', plural: 'pods', aliases: ['pod', 'po'], namespaced: true },
  { id: 'Service', kind: 'Service', apiVersion: 'v1', plural: 'services', aliases: ['service', 'svc'], namespaced: true },
  {
    id: 'ServiceAccount',
    kind: 'ServiceAccount',
    apiVersion: 'v1',
    plural: 'serviceaccounts',
    aliases: ['serviceaccount', 'sa'],
    namespaced: true,
  },
  { id: 'KubernetesNode', kind: 'Node', apiVersion: 'v1', plural: 'nodes', aliases: ['k8snode', 'kubernetesnode'], namespaced: false },
  {
    id: 'EndpointSlice',
    kind: 'EndpointSlice',
    apiVersion: 'discovery.k8s.io/v1',
    plural: 'endpointslices',
    aliases: ['endpointslice'],
    namespaced: true,
  },
];

const BY_ID = new Map(KINDS.map((k) => [k.id, k] as const));

export function kindInfo(id: KindId): KindInfo {
  const k = BY_ID.get(id);
  if (!k) throw new Error(`unknown kind id ${id}`);
  return k;
}

/** The kind of a manifest from its apiVersion and kind; undefined when Petrel does not know it. */
export function kindOf(apiVersion: unknown, kind: unknown): KindInfo | undefined {
  if (typeof kind !== 'string') return undefined;
  // crd.projectcalico.org/v1 (Calico's CRDs) carries the same kinds as projectcalico.org/v3.
  const api = apiVersion === 'crd.projectcalico.org/v1' ? CALICO_API : apiVersion;
  return KINDS.find((k) => k.kind === kind && k.apiVersion === api);
}

/**
 * The kind a `petrel ctl` user means by a word (`ippool`, `ippools`, `pool`, `IPPool`...).
 * Calico kinds win a tie (`networkpolicy` is Calico's, `knp` Kubernetes'), as in calicoctl.
 */
export function kindFromUserWord(word: string): KindInfo | undefined {
  const w = word.toLowerCase();
  return (
    KINDS.find((k) => k.apiVersion === CALICO_API && (k.kind.toLowerCase() === w || k.plural === w || k.aliases.includes(w))) ??
    KINDS.find((k) => k.kind.toLowerCase() === w || k.plural === w || k.aliases.includes(w) || k.id.toLowerCase() === w)
  );
}

/** Unique identity of one resource: `<KindId>/<namespace>/<name>` or `<KindId>/<name>`. */
export type ResourceKey = string;

export function resourceKey(kind: KindId, name: string, namespace?: string): ResourceKey {
  return namespace ? `${kind}/${namespace}/${name}` : `${kind}/${name}`;
}

export function keyOf(r: Resource): ResourceKey {
  const k = kindOf(r.apiVersion, r.kind);
  if (!k) throw new Error(`unknown kind ${r.apiVersion} ${r.kind}`);
  return resourceKey(k.id, r.metadata.name, k.namespaced ? r.metadata.namespace ?? 'default' : undefined);
}

export function parseKey(key: ResourceKey): { kind: KindId; namespace?: string; name: string } {
  const parts = key.split('/');
  if (parts.length === 3) return { kind: parts[0] as KindId, namespace: parts[1], name: parts[2] };
  return { kind: parts[0] as KindId, name: parts[1] };
}

// ---------------------------------------------------------------------------------------
// The watch stream: `list → in-sync → update/delete`, the same from every backend.

/** A resource exists with this content (created or changed). */
export interface UpdateEvent {
  type: 'update';
  key: ResourceKey;
  kind: KindId;
  resource: Resource;
}

/** A resource no longer exists. */
export interface DeleteEvent {
  type: 'delete';
  key: ResourceKey;
  kind: KindId;
}

/**
 * Every resource that existed when the (re)sync began has been sent; from now on only
 * changes follow. Sent after the first full list and again after every resync that followed a
 * lost watch (a resync sends updates for what changed and deletes only for what is really gone).
 */
export interface InSyncEvent {
  type: 'in-sync';
}

/** Connection state of the backend, for health and `/status`. Never implies deletes. */
export interface StatusEvent {
  type: 'status';
  state: 'connected' | 'resyncing' | 'disconnected';
  reason?: string;
}

export type DatastoreEvent = UpdateEvent | DeleteEvent | InSyncEvent | StatusEvent;

/** Receives events in batches; a batch is applied as one step (one calculation pass). */
export type EventHandler = (events: DatastoreEvent[]) => void;

/** A problem with one source (a file, a key) that did not stop the rest from loading. */
export interface SourceError {
  source: string;
  message: string;
  since: string;
}

export interface DatastoreStatus {
  type: DatastoreType;
  inSync: boolean;
  connected: boolean;
  reason?: string;
  errors: SourceError[];
}

export type DatastoreType = 'file' | 'etcdv3' | 'kubernetes';

export interface ListOptions {
  namespace?: string;
}

/**
 * One interface for every backend. The agent uses `watch`; `petrel ctl` and the CNI plugin
 * use the read/write methods. Writes validate first and throw `ValidationError` (bad input) or
 * `ConflictError`/`NotFoundError`/`DatastoreUnavailableError`.
 */
export interface Datastore {
  readonly type: DatastoreType;
  /** Starts the stream; resolves once the watch is set up (not necessarily in sync). */
  watch(handler: EventHandler): Promise<void>;
  status(): DatastoreStatus;
  get(kind: KindId, name: string, namespace?: string): Promise<Resource | undefined>;
  list(kind: KindId, opts?: ListOptions): Promise<Resource[]>;
  /** Fails with ConflictError if it exists. */
  create(resource: Resource): Promise<Resource>;
  /** Fails with NotFoundError if absent, ConflictError on a stale metadata.resourceVersion. */
  replace(resource: Resource): Promise<Resource>;
  /** Create or replace. */
  apply(resource: Resource): Promise<Resource>;
  /** Returns the deleted resource; NotFoundError if absent. */
  delete(kind: KindId, name: string, namespace?: string): Promise<Resource>;
  close(): Promise<void>;
  /** Optional (etcd): stores this node's status under a lease so others can read every node's view. */
  reportNodeStatus?(node: string, status: unknown): Promise<void>;
  /** Optional (etcd): every node's last reported status. */
  listNodeStatuses?(): Promise<Array<{ node: string; status: unknown; reportedAt?: string }>>;
}

export class ConflictError extends Error {
  override name = 'ConflictError';
}
export class NotFoundError extends Error {
  override name = 'NotFoundError';
}
export class DatastoreUnavailableError extends Error {
  override name = 'DatastoreUnavailableError';
}

/** One thing wrong with an input, located by field path (`spec.cidr`, `spec.ingress[0].action`). */
export interface FieldProblem {
  path: string;
  message: string;
}

/** Where an input came from, so that an error tells the user what to fix. */
export interface SourceRef {
  file?: string;
  /** 0-based index of the document within a multi-document file. */
  index?: number;
  /** 0-based index of the object within a `kind: List` (or JSON array) document. */
  item?: number;
  kind?: string;
  name?: string;
  namespace?: string;
}

export function describeSource(s: SourceRef): string {
  const parts: string[] = [];
  if (s.file !== undefined) parts.push(s.file);
  if (s.index !== undefined) parts.push(`document ${s.index}`);
  if (s.item !== undefined) parts.push(`item ${s.item}`);
  if (s.kind !== undefined || s.name !== undefined) {
    parts.push(`${s.kind ?? '?'} ${s.namespace ? `${s.namespace}/` : ''}${s.name ?? '?'}`);
  }
  return parts.join(', ');
}

/** Bad input: names the source (file, document, kind/name) and every bad field. */
export class ValidationError extends Error {
  override name = 'ValidationError';
  constructor(
    readonly source: SourceRef,
    readonly problems: FieldProblem[],
  ) {
    super(`${describeSource(source)}: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`);
  }
}

/** How to reach a datastore: CONTRACT §1 common options, after flag/env/default resolution. */
export interface DatastoreOptions {
  type: DatastoreType;
  /** file datastore: the manifest directory. */
  path: string;
  etcdEndpoints: string[];
  etcdCaCertFile?: string;
  etcdCertFile?: string;
  etcdKeyFile?: string;
  /** kubernetes datastore: kubeconfig path; undefined = in-cluster, then ~/.kube/config. */
  kubeconfig?: string;
  /** this node's name (the agent's Node resource; the CNI plugin's host). */
  nodename: string;
}
