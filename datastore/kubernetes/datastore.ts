// The Kubernetes datastore (CONTRACT §3): Calico's CRDs (crd.projectcalico.org/v1, read as
// projectcalico.org/v3) and the native kinds, each through its own list+watch reflector.
//
// Per resource type: a paged LIST (limit/continue; the list's resourceVersion is the snapshot),
// then WATCH from it with allowWatchBookmarks and a timeoutSeconds; a clean end re-watches from
// the last resourceVersion seen (object or bookmark); `410 Expired/Gone` (HTTP or ERROR event)
// relists and diffs against the cache — updates for what changed, deletes only for what is gone
// — never a delete for something that still exists; any other failure retries with capped
// exponential backoff plus jitter, from the kept resourceVersion. A watch that stays silent past
// its timeout (half-open connection) is recycled by an idle watchdog.
//
// Pods: ONE cluster-wide pod watch. Policy needs every pod's labels and IPs (selectors match
// remote endpoints, as Felix's do), and Calico's own syncer watches all pods too; a second,
// field-selected watch for this node would only duplicate them. Pods of other nodes are trimmed
// to what the derived workload endpoint uses (labels, calico annotations, nodeName, service
// account, host network, container ports, IPs, phase) to bound memory; pods of this node are
// kept whole. The factory's derive step (datastore/derive.ts) turns pods into WorkloadEndpoints.
import { logger, type Logger } from '../../agent/log.js';
import {
  CALICO_API,
  ConflictError,
  type Datastore,
  type DatastoreEvent,
  type DatastoreStatus,
  DatastoreUnavailableError,
  type EventHandler,
  KINDS,
  type KindId,
  type KindInfo,
  type ListOptions,
  NotFoundError,
  type Resource,
  type ResourceKey,
  type SourceError,
  ValidationError,
  kindInfo,
  kindOf,
  resourceKey,
} from '../types.js';
import { validateResource } from '../validate.js';
import { datastoreMetrics } from '../etcd/metrics.js';
import type { NodeStatusRecord } from '../etcd/datastore.js';
import { ApiError, KubeClient, TransportError, loadKubeConfig } from './client.js';

export const CALICO_CRD_GROUP = 'crd.projectcalico.org';
export const CALICO_CRD_VERSION = 'v1';
export const CALICO_CRD_API = `${CALICO_CRD_GROUP}/${CALICO_CRD_VERSION}`;

/** Where each kind lives in the API. */
export interface ApiType {
  kind: KindInfo;
  group: string;
  version: string;
  plural: string;
  crd: boolean;
}

const K8S_GROUPS: Partial<Record<KindId, [string, string]>> = {
  Namespace: ['', 'v1'],
  Pod: ['', 'v1'],
  Service: ['', 'v1'],
  ServiceAccount: ['', 'v1'],
  KubernetesNode: ['', 'v1'],
  KubernetesNetworkPolicy: ['networking.k8s.io', 'v1'],
  EndpointSlice: ['discovery.k8s.io', 'v1'],
};

/** Every kind the backend reads: the Calico kinds as CRDs, the Kubernetes kinds natively. */
export const API_TYPES: readonly ApiType[] = KINDS.map((k) => {
  if (k.apiVersion === CALICO_API) return { kind: k, group: CALICO_CRD_GROUP, version: CALICO_CRD_VERSION, plural: k.plural, crd: true };
  const gv = K8S_GROUPS[k.id];
  if (!gv) throw new Error(`no API group known for ${k.id}`);
  return { kind: k, group: gv[0], version: gv[1], plural: k.plural, crd: false };
});

/** Calico kinds whose CRDs Calico itself does not install (it derives them): a missing CRD is normal. */
const OPTIONAL_CRDS = new Set<KindId>(['WorkloadEndpoint', 'Profile']);

const apiTypeOf = (kind: KindId): ApiType => API_TYPES.find((t) => t.kind.id === kind)!;

export function collectionPath(t: ApiType, namespace?: string): string {
  const base = t.group ? `/apis/${t.group}/${t.version}` : `/api/${t.version}`;
  return t.kind.namespaced && namespace ? `${base}/namespaces/${encodeURIComponent(namespace)}/${t.plural}` : `${base}/${t.plural}`;
}

export interface KubernetesDatastoreOptions {
  kubeconfig?: string;
  nodename: string;
  /** LIST page size (default 500) */
  pageSize?: number;
  /** timeoutSeconds sent on watches (default 300, plus up to 10% jitter) */
  watchTimeoutSeconds?: number;
  /** recycle a watch that received nothing for this long (default watch timeout + 30 s) */
  idleTimeoutMs?: number;
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** re-check for a CRD that is not installed (default 30 s) */
  missingCrdPollMs?: number;
}

interface Cached {
  rv: string;
  rk: ResourceKey;
  resource: Resource;
}

const errMsg = (e: unknown) => (e instanceof Error ? e.message : String(e));
const sleep = (ms: number, signal: { stop?: () => void }) =>
  new Promise<void>((r) => {
    const t = setTimeout(r, ms);
    signal.stop = () => {
      clearTimeout(t);
      r();
    };
  });

/** A Pod of another node reduced to what its workload endpoint and policy use. */
function trimPod(o: any): any {
  const md = o.metadata ?? {};
  const ann: Record<string, string> = {};
  for (const [k, v] of Object.entries(md.annotations ?? {})) if (k.startsWith('cni.projectcalico.org/')) ann[k] = v as string;
  const ports = (list: any) =>
    Array.isArray(list)
      ? list.filter((c: any) => Array.isArray(c?.ports) && c.ports.length).map((c: any) => ({ name: c.name, ports: c.ports }))
      : undefined;
  const spec = o.spec ?? {};
  return {
    apiVersion: o.apiVersion,
    kind: o.kind,
    metadata: {
      name: md.name,
      namespace: md.namespace,
      uid: md.uid,
      resourceVersion: md.resourceVersion,
      creationTimestamp: md.creationTimestamp,
      ...(md.deletionTimestamp ? { deletionTimestamp: md.deletionTimestamp } : {}),
      ...(md.labels ? { labels: md.labels } : {}),
      ...(Object.keys(ann).length ? { annotations: ann } : {}),
    },
    spec: {
      ...(spec.nodeName ? { nodeName: spec.nodeName } : {}),
      ...(spec.serviceAccountName ? { serviceAccountName: spec.serviceAccountName } : {}),
      ...(spec.hostNetwork ? { hostNetwork: true } : {}),
      containers: ports(spec.containers) ?? [],
      ...(ports(spec.initContainers)?.length ? { initContainers: ports(spec.initContainers) } : {}),
    },
    status: {
      ...(o.status?.phase ? { phase: o.status.phase } : {}),
      ...(o.status?.podIP ? { podIP: o.status.podIP } : {}),
      ...(o.status?.podIPs ? { podIPs: o.status.podIPs } : {}),
    },
  };
}

class Reflector {
  cache = new Map<string, Cached>();
  rv?: string;
  synced = false;
  /** transport/server failure in progress (disconnected) */
  failing?: string;
  /** a problem to list in status().errors (missing CRD, RBAC) */
  problem?: SourceError;
  /** a LIST is in progress */
  listing = false;
  private sleeper: { stop?: () => void } = {};
  private current?: { abort(): void };
  private stopped = false;
  private readonly log: Logger;

  constructor(
    readonly ds: KubernetesDatastore,
    readonly t: ApiType,
  ) {
    this.log = ds.log.child({ resource: `${t.plural}${t.group ? '.' + t.group : ''}` });
  }

  get label(): string {
    return `${this.t.plural}${this.t.group ? '.' + this.t.group : ''}`;
  }

  stop(): void {
    this.stopped = true;
    this.sleeper.stop?.();
    this.current?.abort();
  }

  private objKey(o: any): string {
    return this.t.kind.namespaced ? `${o?.metadata?.namespace ?? ''}/${o?.metadata?.name}` : String(o?.metadata?.name);
  }

  /** The event for an object's new state; undefined when nothing changed or it is invalid. */
  private upsert(o: any): DatastoreEvent | undefined {
    const k = this.objKey(o);
    const rv = String(o?.metadata?.resourceVersion ?? '');
    const prev = this.cache.get(k);
    if (prev && prev.rv === rv) return undefined;
    const r = this.ds.toResource(this.t, o);
    if (!r) return undefined; // invalid: recorded by toResource, the last good version stays
    const rk = resourceKey(this.t.kind.id, r.metadata.name, this.t.kind.namespaced ? r.metadata.namespace ?? 'default' : undefined);
    this.cache.set(k, { rv, rk, resource: r });
    return { type: 'update', key: rk, kind: this.t.kind.id, resource: structuredClone(r) };
  }

  private remove(o: any): DatastoreEvent | undefined {
    const k = this.objKey(o);
    this.ds.clearBad(this.t, o);
    const prev = this.cache.get(k);
    if (!prev) return undefined;
    this.cache.delete(k);
    return { type: 'delete', key: prev.rk, kind: this.t.kind.id };
  }

  /** Paged LIST from one snapshot; the diff against the cache. */
  private async list(): Promise<DatastoreEvent[]> {
    const base = collectionPath(this.t);
    const items: any[] = [];
    let cont: string | undefined;
    let rv: string | undefined;
    do {
      const q = new URLSearchParams({ limit: String(this.ds.pageSize) });
      if (cont) q.set('continue', cont);
      const page = await this.ds.client.json('GET', `${base}?${q}`);
      rv = String(page?.metadata?.resourceVersion ?? '');
      cont = page?.metadata?.continue || undefined;
      for (const it of page?.items ?? []) items.push(it);
    } while (cont);
    const events: DatastoreEvent[] = [];
    const seen = new Set<string>();
    for (const it of items) {
      seen.add(this.objKey(it));
      const e = this.upsert(it);
      if (e) events.push(e);
    }
    for (const [k, c] of [...this.cache]) {
      if (!seen.has(k)) {
        this.cache.delete(k);
        events.push({ type: 'delete', key: c.rk, kind: this.t.kind.id });
      }
    }
    this.ds.pruneBad(this.t, items);
    this.rv = rv;
    return events;
  }

  async run(): Promise<void> {
    let attempt = 0;
    let lists = 0;
    while (!this.stopped) {
      try {
        if (this.rv === undefined) {
          const t0 = performance.now();
          this.listing = true;
          let events: DatastoreEvent[];
          try {
            events = await this.list();
          } finally {
            this.listing = false;
          }
          if (lists++ > 0) this.ds.metrics.resyncs.inc({ datastore: 'kubernetes' });
          this.problem = undefined;
          this.ok();
          this.synced = true;
          this.ds.listed(this, events, t0);
        }
        const timeout = Math.round(this.ds.watchTimeoutSeconds * (1 + Math.random() * 0.1));
        const q = new URLSearchParams({ watch: '1', resourceVersion: this.rv!, allowWatchBookmarks: 'true', timeoutSeconds: String(timeout) });
        let gone = false;
        let received = 0;
        const h = await this.ds.client.watch(
          `${collectionPath(this.t)}?${q}`,
          (ev) => {
            const t = performance.now();
            received++;
            if (ev?.type === 'BOOKMARK') {
              const brv = ev.object?.metadata?.resourceVersion;
              if (brv) this.rv = String(brv);
              return;
            }
            if (ev?.type === 'ERROR') {
              const code = ev.object?.code;
              if (code === 410) gone = true;
              else this.log.warn({ status: ev.object }, `watch ${this.label}: ERROR event ${code}: ${ev.object?.message ?? ''}`);
              this.current?.abort();
              return;
            }
            const o = ev?.object;
            if (!o?.metadata?.name) return;
            const e = ev.type === 'DELETED' ? this.remove(o) : ev.type === 'ADDED' || ev.type === 'MODIFIED' ? this.upsert(o) : undefined;
            if (o.metadata.resourceVersion) this.rv = String(o.metadata.resourceVersion);
            if (e) this.ds.emit([e], t);
          },
          this.ds.idleTimeoutMs,
        );
        this.current = h;
        if (this.stopped) h.abort();
        this.ok();
        const err = await h.done;
        this.current = undefined;
        if (this.stopped) return;
        if (gone) {
          this.log.info(`watch ${this.label}: resourceVersion ${this.rv} expired (410); relisting`);
          this.rv = undefined;
          this.ds.metrics.watchRestarts.inc({ datastore: 'kubernetes' });
          attempt = 0;
          continue;
        }
        if (err) throw err;
        // clean end (timeoutSeconds): re-watch from the kept resourceVersion
        attempt = received > 0 ? 0 : attempt;
        if (received === 0) await sleep(50 + Math.random() * 200, this.sleeper);
        continue;
      } catch (e) {
        if (this.stopped) return;
        this.ds.metrics.watchRestarts.inc({ datastore: 'kubernetes' });
        if (e instanceof ApiError && (e.code === 410 || e.reason === 'Expired' || e.reason === 'Gone')) {
          this.rv = undefined;
          continue;
        }
        attempt++;
        let delay = Math.min(this.ds.maxBackoffMs, this.ds.minBackoffMs * 2 ** (attempt - 1));
        delay = delay / 2 + Math.random() * delay;
        if (e instanceof ApiError && e.code === 404 && this.t.crd) {
          // CRD not installed: its objects (if any were seen) are gone; poll slowly for it
          const events: DatastoreEvent[] = [];
          for (const [k, c] of [...this.cache]) {
            this.cache.delete(k);
            events.push({ type: 'delete', key: c.rk, kind: this.t.kind.id });
          }
          const msg = `CustomResourceDefinition ${this.t.plural}.${this.t.group} is not installed (apply deploy/crds/); ${this.t.kind.kind} resources are not read`;
          if (!OPTIONAL_CRDS.has(this.t.kind.id)) {
            if (!this.problem) this.log.warn(msg);
            this.problem = { source: collectionPath(this.t), message: msg, since: this.problem?.since ?? new Date().toISOString() };
          }
          this.rv = undefined;
          this.ok();
          const first = !this.synced;
          this.synced = true;
          if (first || events.length) this.ds.listed(this, events, performance.now());
          delay = this.ds.missingCrdPollMs;
        } else {
          const reason = `${this.label}: ${errMsg(e)}`;
          if (e instanceof ApiError && e.retryAfterSeconds) delay = Math.max(delay, e.retryAfterSeconds * 1000);
          if (e instanceof ApiError && (e.code === 401 || e.code === 403)) {
            this.problem = { source: collectionPath(this.t), message: reason, since: this.problem?.since ?? new Date().toISOString() };
          }
          this.log.warn({ attempt, retryInMs: Math.round(delay) }, `list/watch failed: ${reason}`);
          this.fail(reason);
        }
        await sleep(delay, this.sleeper);
      }
    }
  }

  private ok(): void {
    if (this.failing) {
      this.failing = undefined;
      this.ds.reassess();
    }
  }

  private fail(reason: string): void {
    this.failing = reason;
    this.ds.reassess();
  }
}

export class KubernetesDatastore implements Datastore {
  readonly type = 'kubernetes' as const;
  readonly log: Logger;
  readonly client: KubeClient;
  readonly metrics = datastoreMetrics();
  readonly pageSize: number;
  readonly watchTimeoutSeconds: number;
  readonly idleTimeoutMs: number;
  readonly minBackoffMs: number;
  readonly maxBackoffMs: number;
  readonly missingCrdPollMs: number;
  private handlers: EventHandler[] = [];
  private reflectors: Reflector[] = [];
  private bad = new Map<string, SourceError & { kind: KindId }>();
  private inSync = false;
  private state: 'connected' | 'resyncing' | 'disconnected' = 'disconnected';
  private reason?: string = 'not started';
  private running?: Promise<unknown>;
  private closed = false;

  constructor(readonly opts: KubernetesDatastoreOptions) {
    this.log = logger('datastore-kubernetes');
    this.client = new KubeClient(loadKubeConfig(opts.kubeconfig));
    this.pageSize = opts.pageSize ?? 500;
    this.watchTimeoutSeconds = opts.watchTimeoutSeconds ?? 300;
    this.idleTimeoutMs = opts.idleTimeoutMs ?? (this.watchTimeoutSeconds * 1.1 + 30) * 1000;
    this.minBackoffMs = opts.minBackoffMs ?? 250;
    this.maxBackoffMs = opts.maxBackoffMs ?? 30_000;
    this.missingCrdPollMs = opts.missingCrdPollMs ?? 30_000;
  }

  // ---------------------------------------------------------------------------- conversion

  /** Where an object lives (its API path), for error messages and the bad-object map. */
  private badKey(t: ApiType, o: any): string {
    return `${collectionPath(t, t.kind.namespaced ? o?.metadata?.namespace : undefined)}/${o?.metadata?.name}`;
  }
  clearBad(t: ApiType, o: any): void {
    this.bad.delete(this.badKey(t, o));
  }
  /** After a relist: forget problems of objects of this type that no longer exist. */
  pruneBad(t: ApiType, items: any[]): void {
    const keep = new Set(items.map((o) => this.badKey(t, o)));
    for (const [k, e] of [...this.bad]) if (e.kind === t.kind.id && !keep.has(k)) this.bad.delete(k);
  }

  /** A watched/listed object as a validated Resource (Calico CRDs become projectcalico.org/v3). */
  toResource(t: ApiType, o: any): Resource | undefined {
    let raw = o;
    if (!t.crd && t.kind.id === 'Pod' && o?.spec?.nodeName !== this.opts.nodename) raw = trimPod(o);
    else raw = { ...o, metadata: { ...(o.metadata ?? {}) } };
    raw.apiVersion = t.crd ? CALICO_CRD_API : t.kind.apiVersion;
    raw.kind = t.kind.kind;
    delete raw.metadata.managedFields;
    delete raw.metadata.selfLink;
    if (t.crd) {
      // Calico's CRD stores BlockAffinity.spec.deleted as a string
      if (t.kind.id === 'BlockAffinity' && typeof raw.spec?.deleted === 'string') raw.spec = { ...raw.spec, deleted: raw.spec.deleted === 'true' };
      // kubectl's bookkeeping is not part of the resource
      if (raw.metadata.annotations?.['kubectl.kubernetes.io/last-applied-configuration'] !== undefined) {
        const { ['kubectl.kubernetes.io/last-applied-configuration']: _drop, ...rest } = raw.metadata.annotations;
        raw.metadata.annotations = rest;
        if (!Object.keys(rest).length) delete raw.metadata.annotations;
      }
    }
    const where = this.badKey(t, o);
    try {
      const { resource, warnings } = validateResource(raw, { file: where });
      for (const w of warnings) this.log.warn({ object: where, field: w.path }, `${where}: ${w.path}: ${w.message}`);
      if (this.bad.delete(where)) this.log.info({ object: where }, `${where}: fixed`);
      return resource;
    } catch (e) {
      const message = errMsg(e);
      if (this.bad.get(where)?.message !== message) {
        this.log.error({ object: where }, `${message} (ignored until fixed; a previous good version stays in effect)`);
        this.bad.set(where, { source: where, message, since: new Date().toISOString(), kind: t.kind.id });
      }
      if (!(e instanceof ValidationError)) throw e;
      return undefined;
    }
  }

  /** The API object for a (validated) resource: Calico kinds as crd.projectcalico.org/v1. */
  private toApiObject(r: Resource, t: ApiType): any {
    const o = structuredClone(r) as any;
    o.apiVersion = t.crd ? CALICO_CRD_API : t.kind.apiVersion;
    o.kind = t.kind.kind;
    return o;
  }

  // ---------------------------------------------------------------------------- stream

  emit(events: DatastoreEvent[], receivedAt?: number): void {
    if (!events.length || this.closed) return;
    for (const h of this.handlers) {
      try {
        h(events);
      } catch (e) {
        this.log.error({ err: errMsg(e) }, 'event handler threw');
      }
    }
    if (receivedAt !== undefined) this.metrics.eventLag.observe({ datastore: 'kubernetes' }, (performance.now() - receivedAt) / 1000);
  }

  /** A reflector finished a (re)list: emit its diff, and in-sync when every type is listed. */
  listed(_r: Reflector, events: DatastoreEvent[], t0: number): void {
    const all = this.reflectors.every((x) => x.synced);
    const out = [...events];
    // after a mass relist (every watch got 410), one in-sync when the last of them is done
    if (all && !this.reflectors.some((x) => x !== _r && x.listing)) {
      if (!this.inSync) this.log.info({ resources: this.reflectors.reduce((n, x) => n + x.cache.size, 0) }, 'kubernetes datastore loaded; in sync');
      this.inSync = true;
      out.push({ type: 'in-sync' });
      out.push(...this.setState());
    }
    this.emit(out, t0);
  }

  reassess(): void {
    this.emit(this.setState());
  }

  private setState(): DatastoreEvent[] {
    const failing = this.reflectors.find((r) => r.failing);
    const state = failing ? 'disconnected' : this.inSync ? 'connected' : 'resyncing';
    const reason = failing ? failing.failing : this.inSync ? undefined : 'initial list in progress';
    if (state === this.state && reason === this.reason) return [];
    this.state = state;
    this.reason = reason;
    this.metrics.connected.set({ datastore: 'kubernetes' }, state === 'connected' ? 1 : 0);
    if (state === 'disconnected') this.log.warn({ reason }, 'kubernetes datastore disconnected; keeping every resource already loaded');
    else this.log.info({ state }, `kubernetes datastore ${state}`);
    return [{ type: 'status', state, ...(reason ? { reason } : {}) }];
  }

  async watch(handler: EventHandler): Promise<void> {
    if (this.closed) throw new Error('datastore closed');
    this.handlers.push(handler);
    if (this.running) {
      const snap: DatastoreEvent[] = [{ type: 'status', state: this.state, ...(this.reason ? { reason: this.reason } : {}) }];
      for (const r of this.reflectors) for (const c of r.cache.values()) snap.push({ type: 'update', key: c.rk, kind: r.t.kind.id, resource: structuredClone(c.resource) });
      if (this.inSync) snap.push({ type: 'in-sync' });
      handler(snap);
      return;
    }
    this.reflectors = API_TYPES.map((t) => new Reflector(this, t));
    this.emit(this.setState());
    this.running = Promise.all(this.reflectors.map((r) => r.run()));
  }

  status(): DatastoreStatus {
    const errors: SourceError[] = [];
    for (const r of this.reflectors) if (r.problem) errors.push(r.problem);
    for (const { kind: _k, ...e } of this.bad.values()) errors.push(e);
    return { type: 'kubernetes', inSync: this.inSync && this.state === 'connected', connected: this.state !== 'disconnected', reason: this.reason, errors };
  }

  // ---------------------------------------------------------------------------- reads/writes

  private mapError(e: unknown, what: string): Error {
    if (e instanceof TransportError) return new DatastoreUnavailableError(`Kubernetes API unreachable at ${this.client.server.origin}: ${e.message}`);
    if (e instanceof ApiError) {
      if (e.code === 409) return new ConflictError(`${what}: ${e.message}`);
      if (e.code === 404) return new NotFoundError(`${what}: ${e.message}`);
      if (e.code === 429 || e.code >= 500) return new DatastoreUnavailableError(`${what}: ${e.message}`);
      return new Error(`${what}: ${e.message}`);
    }
    return e instanceof Error ? e : new Error(String(e));
  }

  private fromApi(t: ApiType, o: any): Resource {
    const r = this.toResource(t, o);
    if (!r) throw new Error(`${this.badKey(t, o)}: stored object is invalid: ${this.bad.get(this.badKey(t, o))?.message ?? ''}`);
    return r;
  }

  async get(kind: KindId, name: string, namespace?: string): Promise<Resource | undefined> {
    const t = apiTypeOf(kind);
    const ns = t.kind.namespaced ? namespace ?? 'default' : undefined;
    try {
      return this.fromApi(t, await this.client.json('GET', `${collectionPath(t, ns)}/${encodeURIComponent(name)}`));
    } catch (e) {
      const m = this.mapError(e, `get ${kind} ${name}`);
      if (m instanceof NotFoundError) return undefined;
      throw m;
    }
  }

  async list(kind: KindId, opts: ListOptions = {}): Promise<Resource[]> {
    const t = apiTypeOf(kind);
    const base = collectionPath(t, t.kind.namespaced ? opts.namespace : undefined);
    const out: Resource[] = [];
    let cont: string | undefined;
    try {
      do {
        const q = new URLSearchParams({ limit: String(this.pageSize) });
        if (cont) q.set('continue', cont);
        const page = await this.client.json('GET', `${base}?${q}`);
        for (const it of page.items ?? []) {
          const r = this.toResource(t, it);
          if (r) out.push(r);
        }
        cont = page.metadata?.continue || undefined;
      } while (cont);
    } catch (e) {
      const m = this.mapError(e, `list ${kind}`);
      if (m instanceof NotFoundError && t.crd) return [];
      throw m;
    }
    return out;
  }

  private validated(input: Resource): { resource: Resource; t: ApiType; ns?: string; label: string } {
    const source = { kind: input?.kind, name: input?.metadata?.name, namespace: input?.metadata?.namespace };
    const { resource, warnings } = validateResource(input, source);
    for (const w of warnings) this.log.warn({ field: w.path }, `${resource.kind} ${resource.metadata.name}: ${w.path}: ${w.message}`);
    const k = kindOf(resource.apiVersion, resource.kind)!;
    const t = apiTypeOf(k.id);
    const ns = k.namespaced ? resource.metadata.namespace ?? 'default' : undefined;
    return { resource, t, ns, label: `${k.kind} ${ns ? `${ns}/` : ''}${resource.metadata.name}` };
  }

  async create(input: Resource): Promise<Resource> {
    const v = this.validated(input);
    const body = this.toApiObject(v.resource, v.t);
    delete body.metadata.resourceVersion;
    try {
      return this.fromApi(v.t, await this.client.json('POST', collectionPath(v.t, v.ns), body));
    } catch (e) {
      const m = this.mapError(e, `create ${v.label}`);
      if (m instanceof ConflictError) throw new ConflictError(`${v.label} already exists`);
      throw m;
    }
  }

  async replace(input: Resource): Promise<Resource> {
    const v = this.validated(input);
    const path = `${collectionPath(v.t, v.ns)}/${encodeURIComponent(v.resource.metadata.name)}`;
    const body = this.toApiObject(v.resource, v.t);
    try {
      if (!body.metadata.resourceVersion) {
        const cur = await this.client.json('GET', path);
        body.metadata.resourceVersion = cur.metadata.resourceVersion;
      }
      return this.fromApi(v.t, await this.client.json('PUT', path, body));
    } catch (e) {
      const m = this.mapError(e, `replace ${v.label}`);
      if (m instanceof NotFoundError) throw new NotFoundError(`${v.label} does not exist`);
      if (m instanceof ConflictError) {
        throw new ConflictError(`${v.label}: resourceVersion ${body.metadata.resourceVersion} is stale; it was changed by someone else — get it again and retry`);
      }
      throw m;
    }
  }

  async apply(input: Resource): Promise<Resource> {
    for (let i = 0; ; i++) {
      try {
        if (input.metadata?.resourceVersion) return await this.replace(input);
        const v = this.validated(input);
        const cur = await this.get(v.t.kind.id, v.resource.metadata.name, v.ns);
        return cur ? await this.replace({ ...input, metadata: { ...input.metadata, resourceVersion: cur.metadata.resourceVersion } }) : await this.create(input);
      } catch (e) {
        if (!(e instanceof ConflictError) || input.metadata?.resourceVersion || i >= 4) throw e;
      }
    }
  }

  async delete(kind: KindId, name: string, namespace?: string): Promise<Resource> {
    const t = apiTypeOf(kind);
    const ns = t.kind.namespaced ? namespace ?? 'default' : undefined;
    const path = `${collectionPath(t, ns)}/${encodeURIComponent(name)}`;
    try {
      const cur = await this.client.json('GET', path);
      await this.client.json('DELETE', path, { kind: 'DeleteOptions', apiVersion: 'v1', preconditions: { resourceVersion: cur.metadata.resourceVersion } });
      return this.toResource(t, cur) ?? { apiVersion: t.kind.apiVersion, kind: t.kind.kind, metadata: { name, ...(ns ? { namespace: ns } : {}) } };
    } catch (e) {
      const m = this.mapError(e, `delete ${kindInfo(kind).kind} ${ns ? `${ns}/` : ''}${name}`);
      if (m instanceof NotFoundError) throw new NotFoundError(`${kindInfo(kind).kind} ${ns ? `${ns}/` : ''}${name} does not exist`);
      throw m;
    }
  }

  // ---------------------------------------------------------------------------- node status

  /** Namespace and name prefix of the ConfigMaps holding each agent's status. */
  static readonly NODE_STATUS_NAMESPACE = 'kube-system';
  static readonly NODE_STATUS_PREFIX = 'petrel-node-status-';
  /** An entry not refreshed for this long is reported as expired (the agent reports every few seconds). */
  nodeStatusTtlSeconds = 60;

  /**
   * Writes this agent's status to ConfigMap kube-system/petrel-node-status-<node> (not a Node
   * annotation: every agent watches Nodes, and a status write per agent would wake them all).
   */
  async reportNodeStatus(node: string, status: unknown): Promise<void> {
    const ns = KubernetesDatastore.NODE_STATUS_NAMESPACE;
    const name = `${KubernetesDatastore.NODE_STATUS_PREFIX}${node}`;
    const body = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name, namespace: ns, labels: { 'app.kubernetes.io/name': 'petrel-node-status', 'petrel.io/node': node } },
      data: { node, reportedAt: new Date().toISOString(), status: JSON.stringify(status) },
    };
    const path = `/api/v1/namespaces/${ns}/configmaps`;
    try {
      try {
        await this.client.json('PUT', `${path}/${encodeURIComponent(name)}`, body);
      } catch (e) {
        if (!(e instanceof ApiError && e.code === 404)) throw e;
        await this.client.json('POST', path, body);
      }
    } catch (e) {
      throw this.mapError(e, `report node status of ${node}`);
    }
  }

  /** Every agent's last reported status; entries older than nodeStatusTtlSeconds carry `expired: true`. */
  async listNodeStatuses(): Promise<NodeStatusRecord[]> {
    const ns = KubernetesDatastore.NODE_STATUS_NAMESPACE;
    let list: any;
    try {
      list = await this.client.json('GET', `/api/v1/namespaces/${ns}/configmaps?labelSelector=${encodeURIComponent('app.kubernetes.io/name=petrel-node-status')}`);
    } catch (e) {
      throw this.mapError(e, 'list node statuses');
    }
    const out: NodeStatusRecord[] = [];
    for (const cm of list.items ?? []) {
      const d = cm.data ?? {};
      let status: unknown;
      try {
        status = JSON.parse(d.status ?? 'null');
      } catch {
        status = { error: 'unreadable status value' };
      }
      const age = d.reportedAt ? (Date.now() - Date.parse(d.reportedAt)) / 1000 : Infinity;
      out.push({ node: d.node ?? String(cm.metadata?.name).slice(KubernetesDatastore.NODE_STATUS_PREFIX.length), status, reportedAt: d.reportedAt, ...(age > this.nodeStatusTtlSeconds ? { expired: true } : {}) });
    }
    return out.sort((a, b) => (a.node < b.node ? -1 : 1));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.handlers = [];
    for (const r of this.reflectors) r.stop();
    await this.running?.catch(() => undefined);
  }
}
