// The etcdv3 datastore (CONTRACT §3): Calico's key layout (keys.ts), one watch stream.
//
// Sync: a paginated range read of every watched prefix pinned to one revision, then watches
// from revision+1. Any end of a watch (lost connection, leader change, compaction, cancel) is a
// resync: list again, pinned, and diff against what the handlers were given, so a key that still
// exists is never deleted and an unchanged key is not re-sent; then `in-sync` again. Retries
// back off exponentially with jitter. `status` events and status() say connected / resyncing /
// disconnected with the reason.
//
// Writes compare-and-swap on the key's mod revision: create fails if the key exists, replace
// with metadata.resourceVersion fails if it is stale; resourceVersion = the mod revision.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Etcd3, type IKeyValue, type Watcher } from 'etcd3';
import { noop } from 'cockatiel';
import { logger, type Logger } from '../../agent/log.js';
import {
  ConflictError,
  type Datastore,
  type DatastoreEvent,
  type DatastoreStatus,
  DatastoreUnavailableError,
  type EventHandler,
  type KindId,
  type ListOptions,
  NotFoundError,
  type Resource,
  type ResourceKey,
  type SourceError,
  type SourceRef,
  ValidationError,
  kindInfo,
  kindOf,
  resourceKey,
} from '../types.js';
import { validateResource } from '../validate.js';
import {
  IPAM_PREFIX,
  NODESTATUS_PREFIX,
  WATCH_PREFIXES,
  etcdKeyOf,
  etcdPrefixOf,
  ipamFromResource,
  ipamToResource,
  isIpamKind,
  parseEtcdKey,
} from './keys.js';
import { datastoreMetrics } from './metrics.js';
import { RangeClient, type RawKv } from './range.js';

export interface EtcdDatastoreOptions {
  endpoints: string[];
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  /** range-read page size (default 5000 keys; an initial load starts at 500 and doubles up to it) */
  pageSize?: number;
  /** first retry delay after a failure (default 200 ms), doubled up to maxBackoffMs */
  minBackoffMs?: number;
  /** default 10 s */
  maxBackoffMs?: number;
  /** deadline of a single read/write call (default 10 s) */
  callTimeoutMs?: number;
  /** TTL of the node-status lease (default 60 s) */
  nodeStatusTtlSeconds?: number;
}

interface Emitted {
  rk: ResourceKey;
  kind: KindId;
  modRev: string;
  resource: Resource;
}

export interface NodeStatusRecord {
  node: string;
  /** what the agent reported (JSON) */
  status: unknown;
  /** when the agent wrote it (ISO time) */
  reportedAt?: string;
  /** Kubernetes datastore: not refreshed within the TTL (etcd entries expire with their lease instead) */
  expired?: boolean;
}

/** keys in the first range page of a load (later pages double up to pageSize) */
const FIRST_PAGE = 500;

/** validateResource's source for etcd values: the key is put in only when there is an error */
const NO_SOURCE: SourceRef = Object.freeze({});

const errMsg = (e: unknown) => (e instanceof Error ? e.message : String(e));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function prefixEnd(prefix: Buffer): Buffer {
  const b = Buffer.from(prefix);
  for (let i = b.length - 1; i >= 0; i--) {
    if (b[i]! < 0xff) {
      b[i]!++;
      return b.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

/** gRPC failures that mean "etcd is not reachable right now". */
function unavailable(e: unknown, endpoints: string[]): DatastoreUnavailableError {
  return new DatastoreUnavailableError(`etcd unreachable at ${endpoints.join(',')}: ${errMsg(e)}`);
}

export class EtcdDatastore implements Datastore {
  readonly type = 'etcdv3' as const;
  readonly client: Etcd3;
  private readonly ranger: RangeClient;
  private readonly log: Logger;
  private readonly metrics = datastoreMetrics();
  private readonly pageSize: number;
  private readonly minBackoff: number;
  private readonly maxBackoff: number;
  private readonly callTimeout: number;

  private handlers: EventHandler[] = [];
  /** what the handlers have been given, by etcd key */
  private emitted = new Map<string, Emitted>();
  /** keys whose current value is bad (the last good version, if any, stays in effect) */
  private badKeys = new Map<string, SourceError>();
  private state: 'connected' | 'resyncing' | 'disconnected' = 'disconnected';
  private reason?: string = 'not started';
  private inSync = false;
  private loads = 0;
  private running = false;
  private closed = false;
  private watchers: Watcher[] = [];
  private wake?: () => void;
  private loopDone?: Promise<void>;
  private leases = new Map<string, { lease: ReturnType<Etcd3['lease']>; ttl: number }>();
  private readonly nodeStatusTtl: number;

  constructor(readonly opts: EtcdDatastoreOptions) {
    if (!opts.endpoints.length) throw new Error('no etcd endpoints configured');
    this.log = logger('datastore-etcd', { endpoints: opts.endpoints.join(',') });
    this.pageSize = opts.pageSize ?? 5000;
    this.minBackoff = opts.minBackoffMs ?? 200;
    this.maxBackoff = opts.maxBackoffMs ?? 10_000;
    this.callTimeout = opts.callTimeoutMs ?? 10_000;
    this.nodeStatusTtl = opts.nodeStatusTtlSeconds ?? 60;
    const tls = opts.endpoints.some((e) => e.startsWith('https:'));
    if (tls && !opts.caFile) this.log.warn('https etcd endpoint without --etcd-ca-cert-file: the system CAs must trust it');
    this.client = new Etcd3({
      hosts: opts.endpoints.map((e) => e.replace(/\/+$/, '')),
      credentials: tls || opts.caFile
        ? {
            rootCertificate: opts.caFile ? readFileSync(opts.caFile) : (undefined as unknown as Buffer),
            ...(opts.keyFile ? { privateKey: readFileSync(opts.keyFile) } : {}),
            ...(opts.certFile ? { certChain: readFileSync(opts.certFile) } : {}),
          }
        : undefined,
      dialTimeout: 3000,
      grpcOptions: {
        'grpc.keepalive_time_ms': 10_000,
        'grpc.keepalive_timeout_ms': 5_000,
        'grpc.keepalive_permit_without_calls': 1,
        'grpc.max_receive_message_length': 64 * 1024 * 1024,
        'grpc.initial_reconnect_backoff_ms': 200,
        'grpc.max_reconnect_backoff_ms': 2000,
      },
      // Retries and backoff are ours (with jitter); no circuit breaker that fails calls after etcd is back.
      faultHandling: { host: () => noop, global: noop },
    });
    this.ranger = new RangeClient(opts);
  }

  private callOpts() {
    return { deadline: Date.now() + this.callTimeout };
  }

  // ------------------------------------------------------------------------------ status

  status(): DatastoreStatus {
    return {
      type: 'etcdv3',
      inSync: this.inSync,
      connected: this.state !== 'disconnected',
      reason: this.reason,
      errors: [...this.badKeys.values()],
    };
  }

  private setState(state: 'connected' | 'resyncing' | 'disconnected', reason?: string): DatastoreEvent[] {
    if (state === this.state && reason === this.reason) return [];
    this.state = state;
    this.reason = reason;
    this.metrics.connected.set({ datastore: 'etcdv3' }, state === 'connected' ? 1 : 0);
    if (state === 'disconnected') this.log.warn({ reason }, 'etcd datastore disconnected; keeping every resource already loaded');
    else this.log.info({ state, reason }, `etcd datastore ${state}`);
    return [{ type: 'status', state, ...(reason ? { reason } : {}) }];
  }

  private emit(events: DatastoreEvent[], receivedAt?: number): void {
    if (!events.length || this.closed) return;
    for (const h of this.handlers) {
      try {
        h(events);
      } catch (e) {
        this.log.error({ err: errMsg(e) }, 'event handler threw');
      }
    }
    if (receivedAt !== undefined) this.metrics.eventLag.observe({ datastore: 'etcdv3' }, (performance.now() - receivedAt) / 1000);
  }

  // ------------------------------------------------------------------------------ decoding

  /** The validated resource stored at `key`, or throws naming what is wrong. */
  private decode(key: string, value: Buffer | RawKv, modRev: string): Emitted | undefined {
    const info = parseEtcdKey(key);
    if (!info) return undefined;
    let raw: any;
    try {
      raw = JSON.parse(Buffer.isBuffer(value) ? value.toString('utf8') : value.buf.toString('utf8', value.valueStart, value.valueEnd));
    } catch (e) {
      throw new Error(`etcd key ${key}: value is not JSON: ${errMsg(e)}`);
    }
    if (info.form !== 'resource') {
      try {
        raw = ipamToResource(info, raw);
      } catch (e) {
        throw new Error(`etcd key ${key}: ${errMsg(e)}`);
      }
    } else if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      throw new Error(`etcd key ${key}: value is not a JSON object`);
    } else {
      // the key names the resource; a value without apiVersion/kind/name takes them from it
      raw.apiVersion ??= info.kind.apiVersion;
      raw.kind ??= info.kind.kind;
      raw.metadata ??= {};
      if (typeof raw.metadata === 'object' && raw.metadata !== null) {
        raw.metadata.name ??= info.name;
        if (info.kind.namespaced) raw.metadata.namespace ??= info.namespace;
      }
    }
    // raw was parsed just above for this call alone: validated in place, not copied. The source
    // (the key) is named only when there is something to report.
    let checked;
    try {
      checked = validateResource(raw, NO_SOURCE, { reuseInput: true });
    } catch (e) {
      if (e instanceof ValidationError) throw new ValidationError({ file: `etcd key ${key}`, ...e.source }, e.problems);
      throw e;
    }
    const { resource, warnings } = checked;
    for (const w of warnings) this.log.warn({ key, field: w.path }, `etcd key ${key}: ${w.path}: ${w.message}`);
    const k = resource.kind === info.kind.kind && resource.apiVersion === info.kind.apiVersion ? info.kind : kindOf(resource.apiVersion, resource.kind);
    if (!k || k.id !== info.kind.id) {
      throw new Error(`etcd key ${key}: holds ${resource.apiVersion} ${resource.kind}, but the key is for ${info.kind.kind}`);
    }
    if (info.form === 'resource') {
      if (resource.metadata.name !== info.name) {
        throw new Error(`etcd key ${key}: metadata.name "${resource.metadata.name}" does not match the key's name "${info.name}"`);
      }
      if (k.namespaced && resource.metadata.namespace !== info.namespace) {
        throw new Error(`etcd key ${key}: metadata.namespace "${resource.metadata.namespace}" does not match the key's namespace "${info.namespace}"`);
      }
    }
    resource.metadata.resourceVersion = modRev;
    const ns = k.namespaced ? resource.metadata.namespace ?? 'default' : undefined;
    return { rk: resourceKey(k.id, resource.metadata.name, ns), kind: k.id, modRev, resource };
  }

  /** The event for a key's new value (undefined: nothing to tell). Bad values are recorded. */
  private onPut(key: string, value: Buffer | RawKv, modRev: string): DatastoreEvent | undefined {
    const prev = this.emitted.get(key);
    if (prev && prev.modRev === modRev) return undefined;
    let d;
    try {
      d = this.decode(key, value, modRev);
    } catch (e) {
      const message = e instanceof ValidationError ? e.message : errMsg(e);
      const old = this.badKeys.get(key);
      if (old?.message !== message) {
        this.log.error({ key }, `${message}${prev ? ' (keeping its last good version)' : ' (ignored until fixed)'}`);
        this.badKeys.set(key, { source: key, message, since: new Date().toISOString() });
      }
      return undefined;
    }
    if (!d) return undefined;
    if (this.badKeys.delete(key)) this.log.info({ key }, `etcd key ${key}: fixed`);
    this.emitted.set(key, d);
    // handlers get the cached object itself (they must not mutate it); later handlers get copies
    return { type: 'update', key: d.rk, kind: d.kind, resource: d.resource };
  }

  private onDelete(key: string): DatastoreEvent | undefined {
    this.badKeys.delete(key);
    const prev = this.emitted.get(key);
    if (!prev) return undefined;
    this.emitted.delete(key);
    return { type: 'delete', key: prev.rk, kind: prev.kind };
  }

  // ------------------------------------------------------------------------------ sync loop

  /**
   * Paginated range read of every watched prefix, pinned to one revision. Pages are pipelined:
   * the next page is requested before the current one is decoded, so etcd serves it meanwhile.
   * Pages grow from a small first one (decoding starts as soon as possible, and each page is
   * decoded while the next, at most twice its size, is served) up to pageSize.
   */
  private async loadAll(onFirstPage: () => void, onKv: (key: string, kv: RawKv) => void): Promise<string> {
    let revision: string | undefined;
    let limit = Math.min(FIRST_PAGE, this.pageSize);
    try {
      for (const prefix of WATCH_PREFIXES) {
        const end = prefixEnd(Buffer.from(prefix));
        const fetch = (from: Buffer) => {
          const r = this.ranger.range({ key: from, end, limit, revision }, this.callTimeout);
          limit = Math.min(limit * 2, this.pageSize);
          return r;
        };
        let res = await fetch(Buffer.from(prefix));
        if (!revision) {
          revision = res.revision;
          onFirstPage();
        }
        for (;;) {
          const more = res.more && res.kvs.length > 0;
          const next = more ? fetch(Buffer.concat([res.lastKey!, Buffer.from([0])])) : undefined;
          next?.catch(() => undefined); // awaited below; no unhandled rejection meanwhile
          // decode in slices, yielding so the next page's bytes are read off the socket meanwhile
          for (let i = 0; i < res.kvs.length; i++) {
            const kv = res.kvs[i]!;
            onKv(kv.key, kv);
            if (next && i % 500 === 499) await new Promise((r) => setImmediate(r));
          }
          if (!next) break;
          res = await next;
        }
      }
    } finally {
      // the read buffers and connection serve loads only
      this.ranger.release();
    }
    return revision!;
  }

  /** List + diff + in-sync, then watch until the watch fails; returns why it ended. */
  private async syncOnce(): Promise<string> {
    const first = this.loads === 0;
    const t0 = performance.now();
    const events: DatastoreEvent[] = [];
    // keys seen, to find what was deleted meanwhile (nothing to find when nothing is held)
    const kvs = this.emitted.size || this.badKeys.size ? new Set<string>() : undefined;
    let keys = 0;
    const revision = await this.loadAll(
      () => this.emit(this.setState('resyncing', first ? 'initial load' : this.reason)),
      (key, kv) => {
        keys++;
        kvs?.add(key);
        const ev = this.onPut(key, kv, kv.modRevision);
        if (ev) events.push(ev);
      },
    );
    if (kvs) {
      for (const key of [...this.emitted.keys()]) {
        if (!kvs.has(key)) {
          const ev = this.onDelete(key);
          if (ev) events.push(ev);
        }
      }
      for (const key of [...this.badKeys.keys()]) if (!kvs.has(key)) this.badKeys.delete(key);
    }
    this.loads++;
    if (!first) this.metrics.resyncs.inc({ datastore: 'etcdv3' });
    // Watch before announcing in-sync so no change after `revision` can be missed.
    const ended = this.startWatches(String(BigInt(revision) + 1n));
    this.inSync = true;
    events.push({ type: 'in-sync' }, ...this.setState('connected'));
    this.emit(events, t0);
    this.log.info(
      { revision, keys, resources: this.emitted.size, changed: events.length - 2, ms: Math.round(performance.now() - t0) },
      first ? 'etcd datastore loaded; in sync' : 'etcd datastore resynced; in sync',
    );
    return await ended;
  }

  private startWatches(startRevision: string): Promise<string> {
    return new Promise<string>((resolve) => {
      let done = false;
      const fail = (why: string) => {
        if (done) return;
        done = true;
        const ws = this.watchers;
        this.watchers = [];
        for (const w of ws) w.cancel().catch(() => undefined);
        resolve(why);
      };
      this.wake = () => fail('closed');
      for (const prefix of WATCH_PREFIXES) {
        const w = this.client.watch().prefix(prefix).startRevision(startRevision).watcher();
        w.on('data', (res) => {
          if (done) return;
          const t = performance.now();
          const events: DatastoreEvent[] = [];
          for (const ev of res.events) {
            const key = ev.kv.key.toString('utf8');
            const e = ev.type === 'Delete' ? this.onDelete(key) : this.onPut(key, ev.kv.value, String(ev.kv.mod_revision));
            if (e) events.push(e);
          }
          this.emit(events, t);
        });
        w.on('disconnected', (err) => fail(`lost connection to etcd: ${errMsg(err)}`));
        w.on('error', (err) => fail(`watch ended by etcd: ${errMsg(err)}`));
        w.on('end', () => fail('watch ended'));
        this.watchers.push(w);
      }
    });
  }

  private async loop(): Promise<void> {
    let attempt = 0;
    while (!this.closed) {
      try {
        const why = await this.syncOnce();
        if (this.closed) break;
        attempt = 0;
        this.metrics.watchRestarts.inc({ datastore: 'etcdv3' });
        this.inSync = false;
        // a compaction or cancel with etcd still up is a resync, not an outage
        this.emit(this.setState(/lost connection/.test(why) ? 'disconnected' : 'resyncing', why));
      } catch (e) {
        if (this.closed) break;
        const why = /compacted/.test(errMsg(e)) ? `revision compacted during load: ${errMsg(e)}` : `etcd unreachable at ${this.opts.endpoints.join(',')}: ${errMsg(e)}`;
        this.inSync = false;
        this.emit(this.setState('disconnected', why));
        attempt++;
      }
      // backoff with jitter: a first retry is quick, later ones spread out up to maxBackoff
      const base = Math.min(this.maxBackoff, this.minBackoff * 2 ** Math.max(0, attempt - 1));
      const delay = base / 2 + Math.random() * base;
      await new Promise<void>((r) => {
        const t = setTimeout(r, attempt === 0 ? Math.random() * this.minBackoff : delay);
        this.wake = () => {
          clearTimeout(t);
          r();
        };
      });
    }
  }

  async watch(handler: EventHandler): Promise<void> {
    if (this.closed) throw new Error('datastore closed');
    this.handlers.push(handler);
    if (this.running) {
      // a later handler gets the current view at once
      const snap: DatastoreEvent[] = [{ type: 'status', state: this.state, ...(this.reason ? { reason: this.reason } : {}) }];
      for (const e of this.emitted.values()) snap.push({ type: 'update', key: e.rk, kind: e.kind, resource: structuredClone(e.resource) });
      if (this.inSync) snap.push({ type: 'in-sync' });
      handler(snap);
      return;
    }
    this.running = true;
    handler([{ type: 'status', state: 'disconnected', reason: 'connecting' }]);
    this.reason = 'connecting';
    this.loopDone = this.loop();
    // resolve once the first load has been attempted (in sync or not), never hang start-up
    const t0 = Date.now();
    while (!this.closed && this.loads === 0 && this.reason === 'connecting' && Date.now() - t0 < this.callTimeout + 1000) await sleep(20);
  }

  // ------------------------------------------------------------------------------ reads

  private async rangeAll(prefix: string): Promise<IKeyValue[]> {
    const out: IKeyValue[] = [];
    const end = prefixEnd(Buffer.from(prefix));
    let from = Buffer.from(prefix);
    let revision: string | undefined;
    try {
      for (;;) {
        const res = await this.client.kv.range({ key: from, range_end: end, limit: this.pageSize, ...(revision ? { revision } : {}) }, this.callOpts());
        revision ??= String(res.header.revision);
        out.push(...res.kvs);
        if (!res.more || !res.kvs.length) return out;
        from = Buffer.concat([res.kvs[res.kvs.length - 1]!.key, Buffer.from([0])]);
      }
    } catch (e) {
      throw unavailable(e, this.opts.endpoints);
    }
  }

  private decodeOrThrow(kv: IKeyValue): Resource | undefined {
    return this.decode(kv.key.toString('utf8'), kv.value, String(kv.mod_revision))?.resource;
  }

  async get(kind: KindId, name: string, namespace?: string): Promise<Resource | undefined> {
    const k = kindInfo(kind);
    if (isIpamKind(kind)) return (await this.list(kind)).find((r) => r.metadata.name === name);
    const key = etcdKeyOf(kind, name, k.namespaced ? namespace ?? 'default' : undefined);
    let res;
    try {
      res = await this.client.kv.range({ key: Buffer.from(key) }, this.callOpts());
    } catch (e) {
      throw unavailable(e, this.opts.endpoints);
    }
    const kv = res.kvs[0];
    return kv ? this.decodeOrThrow(kv) : undefined;
  }

  async list(kind: KindId, opts: ListOptions = {}): Promise<Resource[]> {
    const k = kindInfo(kind);
    const kvs = await this.rangeAll(etcdPrefixOf(kind, k.namespaced ? opts.namespace : undefined));
    const out: Resource[] = [];
    for (const kv of kvs) {
      const key = kv.key.toString('utf8');
      const info = parseEtcdKey(key);
      if (!info || info.kind.id !== kind) continue;
      try {
        const r = this.decodeOrThrow(kv);
        if (r) out.push(r);
      } catch (e) {
        this.log.warn({ key }, `list ${kind}: skipping ${errMsg(e)}`);
      }
    }
    return out;
  }

  // ------------------------------------------------------------------------------ writes

  private validated(input: Resource): { resource: Resource; kind: KindId; key: string; label: string } {
    const source = { kind: input?.kind, name: input?.metadata?.name, namespace: input?.metadata?.namespace };
    const { resource, warnings } = validateResource(input, source);
    for (const w of warnings) this.log.warn({ field: w.path }, `${resource.kind} ${resource.metadata.name}: ${w.path}: ${w.message}`);
    const k = kindOf(resource.apiVersion, resource.kind)!;
    const ns = k.namespaced ? resource.metadata.namespace ?? 'default' : undefined;
    const key = etcdKeyOf(k.id, resource.metadata.name, ns, resource.spec);
    return { resource, kind: k.id, key, label: `${k.kind} ${ns ? `${ns}/` : ''}${resource.metadata.name}` };
  }

  /** The JSON stored at the key, as calicoctl stores it (no resourceVersion). */
  private storedValue(kind: KindId, r: Resource, existing?: Resource): string {
    if (isIpamKind(kind)) return JSON.stringify(ipamFromResource(r));
    const out = structuredClone(r);
    delete out.metadata.resourceVersion;
    out.metadata.uid = existing?.metadata.uid ?? out.metadata.uid ?? randomUUID();
    out.metadata.creationTimestamp = existing?.metadata.creationTimestamp ?? out.metadata.creationTimestamp ?? new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
    return JSON.stringify(out);
  }

  private withRev(r: Resource, value: string, rev: string): Resource {
    if (isIpamKind(kindOf(r.apiVersion, r.kind)!.id)) return { ...structuredClone(r), metadata: { ...structuredClone(r.metadata), resourceVersion: rev } };
    const out = JSON.parse(value) as Resource;
    out.metadata.resourceVersion = rev;
    return out;
  }

  private async current(key: string): Promise<IKeyValue | undefined> {
    try {
      return (await this.client.kv.range({ key: Buffer.from(key) }, this.callOpts())).kvs[0];
    } catch (e) {
      throw unavailable(e, this.opts.endpoints);
    }
  }

  private async txn(key: string, compare: { target: 'Create' | 'Mod'; result: 'Equal'; rev: string }, value: string): Promise<{ ok: boolean; rev: string }> {
    try {
      const res = await this.client.kv.txn(
        {
          compare: [
            {
              key: Buffer.from(key),
              result: compare.result,
              target: compare.target,
              ...(compare.target === 'Create' ? { create_revision: compare.rev } : { mod_revision: compare.rev }),
            },
          ],
          success: [{ request_put: { key: Buffer.from(key), value: Buffer.from(value) } }],
          failure: [],
        },
        this.callOpts(),
      );
      return { ok: res.succeeded, rev: String(res.header.revision) };
    } catch (e) {
      throw unavailable(e, this.opts.endpoints);
    }
  }

  async create(input: Resource): Promise<Resource> {
    const v = this.validated(input);
    const value = this.storedValue(v.kind, v.resource);
    const r = await this.txn(v.key, { target: 'Create', result: 'Equal', rev: '0' }, value);
    if (!r.ok) throw new ConflictError(`${v.label} already exists (etcd key ${v.key})`);
    return this.withRev(v.resource, value, r.rev);
  }

  async replace(input: Resource): Promise<Resource> {
    const v = this.validated(input);
    const want = input.metadata?.resourceVersion;
    const cur = await this.current(v.key);
    if (!cur) throw new NotFoundError(`${v.label} does not exist (etcd key ${v.key})`);
    const curRev = String(cur.mod_revision);
    if (want && want !== curRev) {
      throw new ConflictError(`${v.label}: resourceVersion ${want} is stale (current ${curRev}); it was changed by someone else — get it again and retry`);
    }
    let existing: Resource | undefined;
    try {
      existing = JSON.parse(cur.value.toString('utf8'));
    } catch {
      existing = undefined;
    }
    const value = this.storedValue(v.kind, v.resource, existing);
    const r = await this.txn(v.key, { target: 'Mod', result: 'Equal', rev: curRev }, value);
    if (!r.ok) {
      if (!(await this.current(v.key))) throw new NotFoundError(`${v.label} was deleted meanwhile (etcd key ${v.key})`);
      throw new ConflictError(`${v.label}: changed by someone else while being replaced (revision ${curRev} is stale); get it again and retry`);
    }
    return this.withRev(v.resource, value, r.rev);
  }

  async apply(input: Resource): Promise<Resource> {
    for (let i = 0; i < 5; i++) {
      try {
        if (input.metadata?.resourceVersion) return await this.replace(input);
        const cur = await this.current(this.validated(input).key);
        return cur ? await this.replace({ ...input, metadata: { ...input.metadata, resourceVersion: String(cur.mod_revision) } }) : await this.create(input);
      } catch (e) {
        // lost a race with another writer: try again unless the caller pinned a version
        if (!(e instanceof ConflictError) || input.metadata?.resourceVersion || i === 4) throw e;
      }
    }
    throw new Error('unreachable');
  }

  async delete(kind: KindId, name: string, namespace?: string): Promise<Resource> {
    const k = kindInfo(kind);
    const ns = k.namespaced ? namespace ?? 'default' : undefined;
    let key: string;
    let resource: Resource | undefined;
    if (isIpamKind(kind)) {
      resource = await this.get(kind, name);
      if (!resource) throw new NotFoundError(`${k.kind} ${name} does not exist`);
      key = etcdKeyOf(kind, name, undefined, resource.spec);
    } else key = etcdKeyOf(kind, name, ns);
    const cur = await this.current(key);
    if (!cur) throw new NotFoundError(`${k.kind} ${ns ? `${ns}/` : ''}${name} does not exist (etcd key ${key})`);
    try {
      const res = await this.client.kv.txn(
        {
          compare: [{ key: Buffer.from(key), result: 'Equal', target: 'Mod', mod_revision: String(cur.mod_revision) }],
          success: [{ request_delete_range: { key: Buffer.from(key) } }],
          failure: [],
        },
        this.callOpts(),
      );
      if (!res.succeeded) throw new ConflictError(`${k.kind} ${name}: changed while being deleted; try again`);
    } catch (e) {
      if (e instanceof ConflictError) throw e;
      throw unavailable(e, this.opts.endpoints);
    }
    try {
      return resource ?? this.decodeOrThrow(cur) ?? (JSON.parse(cur.value.toString('utf8')) as Resource);
    } catch {
      return { apiVersion: k.apiVersion, kind: k.kind, metadata: { name, ...(ns ? { namespace: ns } : {}) } };
    }
  }

  // ------------------------------------------------------------------------------ node status

  /**
   * Writes this agent's status under /petrel/nodestatus/<node>, attached to a lease (TTL
   * nodeStatusTtlSeconds, kept alive while the process runs), so a dead node's entry expires.
   */
  async reportNodeStatus(node: string, status: unknown): Promise<void> {
    const key = `${NODESTATUS_PREFIX}${node}`;
    const value = JSON.stringify({ node, reportedAt: new Date().toISOString(), status });
    try {
      let l = this.leases.get(node);
      if (!l) {
        const lease = this.client.lease(this.nodeStatusTtl, { autoKeepAlive: true });
        lease.on('lost', () => {
          this.log.warn({ node }, 'node status lease lost; a new one is taken on the next report');
          if (this.leases.get(node)?.lease === lease) this.leases.delete(node);
        });
        l = { lease, ttl: this.nodeStatusTtl };
        this.leases.set(node, l);
      }
      await l.lease.put(key).value(value).exec();
    } catch (e) {
      const l = this.leases.get(node);
      this.leases.delete(node);
      l?.lease.revoke().catch(() => undefined);
      throw unavailable(e, this.opts.endpoints);
    }
  }

  /** Every node's last reported status (entries of dead nodes expire with their lease). */
  async listNodeStatuses(): Promise<NodeStatusRecord[]> {
    const kvs = await this.rangeAll(NODESTATUS_PREFIX);
    const out: NodeStatusRecord[] = [];
    for (const kv of kvs) {
      const node = kv.key.toString('utf8').slice(NODESTATUS_PREFIX.length);
      try {
        const j = JSON.parse(kv.value.toString('utf8'));
        out.push({ node, status: j.status, reportedAt: j.reportedAt });
      } catch {
        out.push({ node, status: { error: 'unreadable status value' } });
      }
    }
    return out.sort((a, b) => (a.node < b.node ? -1 : 1));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.handlers = [];
    this.wake?.();
    await this.loopDone?.catch(() => undefined);
    for (const { lease } of this.leases.values()) await lease.revoke().catch(() => undefined);
    this.leases.clear();
    this.client.close();
    this.ranger.close();
  }
}

export { IPAM_PREFIX };
