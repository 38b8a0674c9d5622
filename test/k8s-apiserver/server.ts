// An honest in-process Kubernetes API server for tests (see shared/design/k8s-watch.md §7):
// HTTPS with a bearer token; LIST with resourceVersion semantics, limit/continue served from a
// snapshot, label/field selectors; WATCH as chunked JSON lines from an exact resourceVersion,
// bookmarks, 410 Expired after compaction; GET/POST/PUT/PATCH (merge, JSON, strategic, apply)
// /DELETE with resourceVersion preconditions; discovery for kubectl; CRD registration; and
// fault injection. One revision counter is shared by all types, as etcd's is.
import { execFileSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { Duplex } from 'node:stream';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { jsonPatch, mergePatch, PatchError, strategicMergePatch } from './patch.js';
import {
  matchFields,
  matchLabels,
  parseFieldSelector,
  parseLabelSelector,
  POD_FIELDS,
  SelectorError,
  type FieldReq,
  type LabelReq,
} from './selectors.js';

export interface ResourceType {
  group: string; // '' = core
  version: string;
  plural: string;
  singular: string;
  kind: string;
  namespaced: boolean;
  builtin: boolean;
  statusSubresource: boolean;
  shortNames?: string[];
  fieldSelectors?: string[];
}

const BUILTINS: ResourceType[] = [
  { group: '', version: 'v1', plural: 'pods', singular: 'pod', kind: 'Pod', namespaced: true, builtin: true, statusSubresource: true, shortNames: ['po'], fieldSelectors: POD_FIELDS },
  { group: '', version: 'v1', plural: 'namespaces', singular: 'namespace', kind: 'Namespace', namespaced: false, builtin: true, statusSubresource: true, shortNames: ['ns'], fieldSelectors: ['status.phase'] },
  { group: '', version: 'v1', plural: 'services', singular: 'service', kind: 'Service', namespaced: true, builtin: true, statusSubresource: true, shortNames: ['svc'] },
  { group: '', version: 'v1', plural: 'serviceaccounts', singular: 'serviceaccount', kind: 'ServiceAccount', namespaced: true, builtin: true, statusSubresource: false, shortNames: ['sa'] },
  { group: '', version: 'v1', plural: 'nodes', singular: 'node', kind: 'Node', namespaced: false, builtin: true, statusSubresource: true, shortNames: ['no'], fieldSelectors: ['spec.unschedulable'] },
  { group: '', version: 'v1', plural: 'configmaps', singular: 'configmap', kind: 'ConfigMap', namespaced: true, builtin: true, statusSubresource: false, shortNames: ['cm'] },
  { group: 'networking.k8s.io', version: 'v1', plural: 'networkpolicies', singular: 'networkpolicy', kind: 'NetworkPolicy', namespaced: true, builtin: true, statusSubresource: false, shortNames: ['netpol'] },
  { group: 'discovery.k8s.io', version: 'v1', plural: 'endpointslices', singular: 'endpointslice', kind: 'EndpointSlice', namespaced: true, builtin: true, statusSubresource: false },
  { group: 'apiextensions.k8s.io', version: 'v1', plural: 'customresourcedefinitions', singular: 'customresourcedefinition', kind: 'CustomResourceDefinition', namespaced: false, builtin: true, statusSubresource: true, shortNames: ['crd', 'crds'] },
];

export interface TestApiServerOptions {
  /** bearer token (random by default) */
  token?: string;
  /** register the CRDs of deploy/crds at start (default true) */
  calicoCrds?: boolean;
  /** namespaces that exist at start (default default, kube-system, kube-public) */
  namespaces?: string[];
  /** BOOKMARK cadence for watches that asked for them (default 1000 ms; 0 = never) */
  bookmarkIntervalMs?: number;
  /** watch duration when the client sends no timeoutSeconds (default 300 s) */
  defaultWatchTimeoutSeconds?: number;
  /** events kept per type before older history is compacted away (default 10000) */
  historyLimit?: number;
  /** answer a too-old watch with HTTP 410 instead of HTTP 200 + ERROR event */
  goneAsHttpStatus?: boolean;
  /** bytes buffered for one slow watcher before the server closes that watch (default 8 MiB) */
  watchBufferLimit?: number;
}

export interface FailRule {
  method?: string;
  /** substring of the path (without query) */
  path?: string;
  /** only watch requests (true) or only non-watch (false) */
  watch?: boolean;
  code: number;
  reason?: string;
  retryAfterSeconds?: number;
  /** how many matching requests fail (default 1) */
  count?: number;
}

export interface TestApiServerCounters {
  requests: number;
  lists: number;
  watches: number;
  watchesOpen: number;
  gone410: number;
  bookmarks: number;
  writes: number;
}

export interface TestApiServer {
  url: string;
  token: string;
  caFile: string;
  kubeconfigPath: string;
  counters: TestApiServerCounters;
  /** current resourceVersion (revision counter) */
  revision(): number;
  stop(): Promise<void>;
  /** drop all history: every watch or list continue from an older revision gets 410 */
  compact(): void;
  /** destroy every open watch connection abruptly (no final chunk) */
  dropWatches(): void;
  /** keep every open watch socket but stop writing to it (half-open) */
  stallWatches(): void;
  /** send an ERROR event with this code to every open watch, then end them */
  errorWatches(code?: number): void;
  /** write a raw line (e.g. garbage or a truncated event) to every open watch */
  injectWatchLine(line: string): void;
  /** fail matching future requests with an HTTP error Status */
  failNext(rule: FailRule): void;
  /** register a CustomResourceDefinition object (as POSTing it would) */
  registerCrd(crd: any): void;
  /** direct store access for tests: create/update/delete without HTTP */
  put(obj: any): any;
  remove(apiVersion: string, kind: string, name: string, namespace?: string): void;
  /** write a kubeconfig with a different (wrong) token, for 401 tests */
  kubeconfigWithToken(token: string): string;
}

interface Watcher {
  type: ResourceType;
  namespace?: string;
  labels: LabelReq[];
  fields: FieldReq[];
  res: ServerResponse;
  stalled: boolean;
  bookmarks: boolean;
  closed: boolean;
  timers: NodeJS.Timeout[];
}

interface HistEvent {
  rv: number;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  key: string;
  obj: any;
  prev?: any;
}

const typeKey = (t: { group: string; plural: string }) => `${t.group}/${t.plural}`;
const apiVersionOf = (t: ResourceType) => (t.group ? `${t.group}/${t.version}` : t.version);
const objKey = (ns: string | undefined, name: string) => (ns ? `${ns}/${name}` : name);
const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v));
const nowStamp = () => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');

function status(code: number, reason: string, message: string, details?: Record<string, unknown>) {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, ...(details ? { details } : {}), code };
}

class HttpError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: Record<string, unknown>,
    readonly retryAfter?: number,
  ) {
    super(message);
  }
}

function makeCert(dir: string): { key: string; cert: string; caFile: string } {
  const keyFile = join(dir, 'server.key');
  const certFile = join(dir, 'server.crt');
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=petrel-test-apiserver',
      '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-addext', 'basicConstraints=critical,CA:TRUE',
      '-keyout', keyFile, '-out', certFile],
    { stdio: 'pipe' },
  );
  return { key: readFileSync(keyFile, 'utf8'), cert: readFileSync(certFile, 'utf8'), caFile: certFile };
}

const CRD_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'deploy', 'crds');
function findCrdDir(): string | undefined {
  // from test/k8s-apiserver (vitest) or dist/test/k8s-apiserver (built)
  for (const d of [join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'deploy', 'crds'), CRD_DIR]) {
    try {
      readdirSync(d);
      return d;
    } catch {
      /* next */
    }
  }
  return undefined;
}

export function loadCrdManifests(dir = findCrdDir()): any[] {
  if (!dir) throw new Error('deploy/crds not found');
  const out: any[] = [];
  for (const f of readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort()) {
    for (const d of parseAllDocuments(readFileSync(join(dir, f), 'utf8'))) {
      const o = d.toJS();
      if (o?.kind === 'CustomResourceDefinition') out.push(o);
    }
  }
  return out;
}

export async function startTestApiServer(opts: TestApiServerOptions = {}): Promise<TestApiServer> {
  const dir = mkdtempSync(join(tmpdir(), 'petrel-apiserver-'));
  const token = opts.token ?? randomBytes(16).toString('hex');
  const { key, cert, caFile } = makeCert(dir);
  const bookmarkMs = opts.bookmarkIntervalMs ?? 1000;
  const defaultTimeout = opts.defaultWatchTimeoutSeconds ?? 300;
  const historyLimit = opts.historyLimit ?? 10000;
  const bufferLimit = opts.watchBufferLimit ?? 8 * 1024 * 1024;

  const types = new Map<string, ResourceType>(); // typeKey → type
  const store = new Map<string, Map<string, any>>(); // typeKey → objKey → obj
  const history = new Map<string, HistEvent[]>();
  const compactedAt = new Map<string, number>(); // events with rv <= this are gone
  let rev = 1;
  let globalCompact = 0;
  const watchers = new Set<Watcher>();
  const sockets = new Set<Duplex>();
  const failRules: FailRule[] = [];
  const counters: TestApiServerCounters = { requests: 0, lists: 0, watches: 0, watchesOpen: 0, gone410: 0, bookmarks: 0, writes: 0 };

  const register = (t: ResourceType) => {
    const k = typeKey(t);
    types.set(k, t);
    if (!store.has(k)) store.set(k, new Map());
    if (!history.has(k)) history.set(k, []);
    if (!compactedAt.has(k)) compactedAt.set(k, rev);
  };
  for (const t of BUILTINS) register(t);

  const registerCrd = (crd: any) => {
    const spec = crd?.spec;
    if (!spec?.group || !spec?.names?.plural || !spec?.names?.kind) throw new HttpError(422, 'Invalid', 'CustomResourceDefinition spec.group, spec.names.plural and spec.names.kind are required');
    const v = (spec.versions ?? []).find((x: any) => x.storage) ?? spec.versions?.[0];
    if (!v?.name) throw new HttpError(422, 'Invalid', 'CustomResourceDefinition needs spec.versions[].name');
    register({
      group: spec.group,
      version: v.name,
      plural: spec.names.plural,
      singular: spec.names.singular ?? spec.names.kind.toLowerCase(),
      kind: spec.names.kind,
      namespaced: spec.scope === 'Namespaced',
      builtin: false,
      statusSubresource: !!v.subresources?.status,
      shortNames: spec.names.shortNames,
      fieldSelectors: (v.selectableFields ?? []).map((s: any) => String(s.jsonPath).replace(/^\./, '')),
    });
  };

  const findType = (group: string, version: string, plural: string): ResourceType | undefined => {
    const t = types.get(`${group}/${plural}`);
    return t && t.version === version ? t : undefined;
  };
  const typeOfObject = (apiVersion: string, kind: string): ResourceType | undefined => {
    for (const t of types.values()) if (apiVersionOf(t) === apiVersion && t.kind === kind) return t;
    return undefined;
  };

  // ---------------------------------------------------------------------------- storage
  const notifyWatchers = (t: ResourceType, ev: HistEvent) => {
    for (const w of watchers) if (w.type === t) deliver(w, ev);
  };

  const record = (t: ResourceType, type: HistEvent['type'], key: string, obj: any, prev?: any) => {
    const k = typeKey(t);
    const ev: HistEvent = { rv: Number(obj.metadata.resourceVersion), type, key, obj: clone(obj), prev: prev ? clone(prev) : undefined };
    const h = history.get(k)!;
    h.push(ev);
    if (h.length > historyLimit) {
      const dropped = h.splice(0, h.length - historyLimit);
      compactedAt.set(k, dropped[dropped.length - 1]!.rv);
    }
    notifyWatchers(t, ev);
  };

  const sameContent = (a: any, b: any) => {
    const strip = (o: any) => {
      const c = clone(o);
      delete c.metadata.resourceVersion;
      delete c.metadata.managedFields;
      delete c.metadata.generation;
      return JSON.stringify(c);
    };
    return strip(a) === strip(b);
  };

  const specChanged = (a: any, b: any) => {
    const s = (o: any) => {
      const { metadata: _m, status: _s, ...rest } = o;
      return JSON.stringify(rest);
    };
    return s(a) !== s(b);
  };

  const doCreate = (t: ResourceType, ns: string | undefined, body: any): any => {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpError(400, 'BadRequest', 'the request body is not an object');
    const obj = clone(body);
    obj.apiVersion = apiVersionOf(t);
    obj.kind = t.kind;
    obj.metadata = obj.metadata ?? {};
    if (!obj.metadata.name && obj.metadata.generateName) obj.metadata.name = obj.metadata.generateName + randomBytes(3).toString('hex').slice(0, 5);
    const name = obj.metadata.name;
    if (typeof name !== 'string' || !name) throw new HttpError(422, 'Invalid', `${t.kind} "" is invalid: metadata.name: Required value: name or generateName is required`, { kind: t.plural, causes: [{ reason: 'FieldValueRequired', message: 'Required value: name or generateName is required', field: 'metadata.name' }] });
    if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(name) || name.length > 253) {
      throw new HttpError(422, 'Invalid', `${t.kind} "${name}" is invalid: metadata.name: Invalid value: "${name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'`, { name, kind: t.plural });
    }
    if (t.namespaced) {
      if (obj.metadata.namespace && ns && obj.metadata.namespace !== ns) throw new HttpError(400, 'BadRequest', 'the namespace of the provided object does not match the namespace sent on the request');
      ns = ns ?? obj.metadata.namespace ?? 'default';
      obj.metadata.namespace = ns;
      if (!store.get('/namespaces')!.has(ns!)) throw new HttpError(404, 'NotFound', `namespaces "${ns}" not found`, { name: ns, kind: 'namespaces' });
    } else {
      delete obj.metadata.namespace;
      ns = undefined;
    }
    const m = store.get(typeKey(t))!;
    const k = objKey(ns, name);
    if (m.has(k)) throw new HttpError(409, 'AlreadyExists', `${t.plural}${t.group ? '.' + t.group : ''} "${name}" already exists`, { name, group: t.group, kind: t.plural });
    if (t.kind === 'CustomResourceDefinition') registerCrd(obj);
    delete obj.metadata.resourceVersion;
    obj.metadata.uid = randomUUID();
    obj.metadata.creationTimestamp = nowStamp();
    obj.metadata.generation = 1;
    delete obj.metadata.deletionTimestamp;
    if (t.statusSubresource && t.builtin === false) delete obj.status;
    if (t.kind === 'Namespace') obj.status = { phase: 'Active' };
    obj.metadata.resourceVersion = String(++rev);
    m.set(k, obj);
    counters.writes++;
    record(t, 'ADDED', k, obj);
    return clone(obj);
  };

  /** Replace stored object `k` with `next` (already merged); handles rv precondition, status, no-op. */
  const doUpdate = (t: ResourceType, ns: string | undefined, name: string, next: any, subresource?: 'status'): any => {
    const m = store.get(typeKey(t))!;
    const k = objKey(t.namespaced ? ns : undefined, name);
    const cur = m.get(k);
    if (!cur) throw new HttpError(404, 'NotFound', `${t.plural}${t.group ? '.' + t.group : ''} "${name}" not found`, { name, group: t.group, kind: t.plural });
    if (typeof next !== 'object' || next === null || Array.isArray(next)) throw new HttpError(400, 'BadRequest', 'the request body is not an object');
    const obj = clone(next);
    obj.metadata = obj.metadata ?? {};
    if (obj.metadata.name !== undefined && obj.metadata.name !== name) throw new HttpError(400, 'BadRequest', `the name of the object (${obj.metadata.name}) does not match the name on the URL (${name})`);
    const wantRv = obj.metadata.resourceVersion;
    if (wantRv !== undefined && wantRv !== '' && wantRv !== cur.metadata.resourceVersion) {
      throw new HttpError(409, 'Conflict', `Operation cannot be fulfilled on ${t.plural}${t.group ? '.' + t.group : ''} "${name}": the object has been modified; please apply your changes to the latest version and try again`, { name, group: t.group, kind: t.plural });
    }
    obj.apiVersion = apiVersionOf(t);
    obj.kind = t.kind;
    obj.metadata.name = name;
    if (t.namespaced) obj.metadata.namespace = ns;
    else delete obj.metadata.namespace;
    // server-set fields are kept
    obj.metadata.uid = cur.metadata.uid;
    obj.metadata.creationTimestamp = cur.metadata.creationTimestamp;
    if (cur.metadata.deletionTimestamp) obj.metadata.deletionTimestamp = cur.metadata.deletionTimestamp;
    else delete obj.metadata.deletionTimestamp;
    if (t.statusSubresource) {
      if (subresource === 'status') {
        const { status: st } = obj;
        const keep = clone(cur);
        if (st === undefined) delete keep.status;
        else keep.status = st;
        Object.assign(obj, keep, { status: st });
        obj.metadata = keep.metadata;
      } else if (cur.status === undefined) delete obj.status;
      else obj.status = clone(cur.status);
    }
    obj.metadata.generation = (cur.metadata.generation ?? 1) + (specChanged(cur, obj) ? 1 : 0);
    obj.metadata.resourceVersion = cur.metadata.resourceVersion;
    if (sameContent(cur, obj)) return clone(cur);
    if (t.kind === 'CustomResourceDefinition') registerCrd(obj);
    // last finalizer removed from an object being deleted: it goes now
    if (obj.metadata.deletionTimestamp && !(obj.metadata.finalizers ?? []).length) {
      obj.metadata.resourceVersion = String(++rev);
      m.delete(k);
      counters.writes++;
      record(t, 'DELETED', k, obj, cur);
      return clone(obj);
    }
    obj.metadata.resourceVersion = String(++rev);
    m.set(k, obj);
    counters.writes++;
    record(t, 'MODIFIED', k, obj, cur);
    return clone(obj);
  };

  const doDelete = (t: ResourceType, ns: string | undefined, name: string, precondRv?: string): any => {
    const m = store.get(typeKey(t))!;
    const k = objKey(t.namespaced ? ns : undefined, name);
    const cur = m.get(k);
    if (!cur) throw new HttpError(404, 'NotFound', `${t.plural}${t.group ? '.' + t.group : ''} "${name}" not found`, { name, group: t.group, kind: t.plural });
    if (precondRv && precondRv !== cur.metadata.resourceVersion) {
      throw new HttpError(409, 'Conflict', `Operation cannot be fulfilled on ${t.plural} "${name}": the ResourceVersion in the precondition (${precondRv}) does not match the ResourceVersion in record (${cur.metadata.resourceVersion}). The object might have been modified`, { name, kind: t.plural });
    }
    if ((cur.metadata.finalizers ?? []).length) {
      if (cur.metadata.deletionTimestamp) return clone(cur);
      const obj = clone(cur);
      obj.metadata.deletionTimestamp = nowStamp();
      obj.metadata.deletionGracePeriodSeconds = 0;
      obj.metadata.resourceVersion = String(++rev);
      m.set(k, obj);
      record(t, 'MODIFIED', k, obj, cur);
      return clone(obj);
    }
    const obj = clone(cur);
    obj.metadata.resourceVersion = String(++rev);
    m.delete(k);
    counters.writes++;
    if (t.kind === 'CustomResourceDefinition') {
      const g = obj.spec?.group;
      const p = obj.spec?.names?.plural;
      if (g && p) types.delete(`${g}/${p}`);
    }
    record(t, 'DELETED', k, obj, cur);
    return clone(obj);
  };

  /** The type's objects as they were at revision `at` (undoing later history). */
  const snapshot = (t: ResourceType, at: number): Map<string, any> => {
    const k = typeKey(t);
    const cur = store.get(k)!;
    if (at >= rev) return cur;
    if (at < Math.max(compactedAt.get(k) ?? 0, globalCompact)) throw new HttpError(410, 'Expired', `too old resource version: ${at} (${Math.max(compactedAt.get(k) ?? 0, globalCompact)})`);
    const snap = new Map(cur);
    const h = history.get(k)!;
    for (let i = h.length - 1; i >= 0 && h[i]!.rv > at; i--) {
      const e = h[i]!;
      if (e.prev) snap.set(e.key, e.prev);
      else snap.delete(e.key);
    }
    return snap;
  };

  // ---------------------------------------------------------------------------- watch
  const matches = (w: { namespace?: string; labels: LabelReq[]; fields: FieldReq[] }, obj: any) =>
    !!obj && (!w.namespace || obj.metadata?.namespace === w.namespace) && matchLabels(w.labels, obj.metadata?.labels) && matchFields(w.fields, obj);

  const write = (w: Watcher, ev: unknown) => {
    if (w.closed || w.stalled) return;
    w.res.write(JSON.stringify(ev) + '\n');
    if (w.res.writableLength > bufferLimit) {
      // a watcher that cannot keep up is closed, as kube-apiserver does
      endWatch(w, true);
    }
  };

  const deliver = (w: Watcher, ev: HistEvent) => {
    const was = ev.prev ? matches(w, ev.prev) : false;
    const is = ev.type !== 'DELETED' && matches(w, ev.obj);
    if (ev.type === 'DELETED') {
      if (matches(w, ev.prev ?? ev.obj)) write(w, { type: 'DELETED', object: ev.obj });
      return;
    }
    if (is && was) write(w, { type: 'MODIFIED', object: ev.obj });
    else if (is && !was) write(w, { type: 'ADDED', object: ev.obj });
    else if (!is && was) write(w, { type: 'DELETED', object: ev.obj });
  };

  const endWatch = (w: Watcher, abrupt = false) => {
    if (w.closed) return;
    w.closed = true;
    for (const t of w.timers) clearTimeout(t);
    watchers.delete(w);
    counters.watchesOpen--;
    if (abrupt) w.res.socket?.destroy();
    else w.res.end();
  };

  const startWatch = (req: IncomingMessage, res: ServerResponse, t: ResourceType, ns: string | undefined, q: URLSearchParams, labels: LabelReq[], fields: FieldReq[]) => {
    const rvParam = q.get('resourceVersion') ?? '';
    const sendInitial = q.get('sendInitialEvents') === 'true';
    const bookmarks = q.get('allowWatchBookmarks') === 'true' || q.get('allowWatchBookmarks') === '1';
    const timeoutS = q.has('timeoutSeconds') ? Number(q.get('timeoutSeconds')) : defaultTimeout;
    const k = typeKey(t);
    let from: number | undefined;
    if (rvParam !== '' && rvParam !== '0') {
      from = Number(rvParam);
      if (!Number.isInteger(from) || from < 0) throw new HttpError(400, 'BadRequest', `invalid resource version "${rvParam}"`);
      if (from > rev) throw new HttpError(504, 'Timeout', `Too large resource version: ${from}, current resource version: ${rev}`, { retryAfterSeconds: 1 }, 1);
      const oldest = Math.max(compactedAt.get(k) ?? 0, globalCompact);
      if (from < oldest) {
        counters.gone410++;
        const msg = `too old resource version: ${from} (${oldest})`;
        if (opts.goneAsHttpStatus) throw new HttpError(410, 'Expired', msg);
        res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private' });
        res.end(JSON.stringify({ type: 'ERROR', object: status(410, 'Expired', msg) }) + '\n');
        return;
      }
    }
    counters.watches++;
    counters.watchesOpen++;
    res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private', 'Transfer-Encoding': 'chunked' });
    res.flushHeaders();
    const w: Watcher = { type: t, namespace: ns, labels, fields, res, stalled: false, bookmarks, closed: false, timers: [] };
    if (from === undefined) {
      for (const [, obj] of [...store.get(k)!.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) if (matches(w, obj)) write(w, { type: 'ADDED', object: obj });
      if (sendInitial) write(w, { type: 'BOOKMARK', object: { kind: t.kind, apiVersion: apiVersionOf(t), metadata: { resourceVersion: String(rev), annotations: { 'k8s.io/initial-events-end': 'true' } } } });
    } else {
      for (const ev of history.get(k)!) if (ev.rv > from) deliver(w, ev);
    }
    watchers.add(w);
    if (timeoutS > 0) w.timers.push(setTimeout(() => endWatch(w), timeoutS * 1000));
    if (bookmarks && bookmarkMs > 0) {
      const tick = () => {
        if (w.closed) return;
        counters.bookmarks++;
        write(w, { type: 'BOOKMARK', object: { kind: t.kind, apiVersion: apiVersionOf(t), metadata: { resourceVersion: String(rev) } } });
        w.timers.push(setTimeout(tick, bookmarkMs));
      };
      w.timers.push(setTimeout(tick, bookmarkMs));
    }
    // the client went away (IncomingMessage 'close' only means the request body was read)
    res.on('close', () => endWatch(w, true));
    req.socket.on('close', () => endWatch(w, true));
  };

  // ---------------------------------------------------------------------------- list
  const doList = (t: ResourceType, ns: string | undefined, q: URLSearchParams, labels: LabelReq[], fields: FieldReq[], accept: string) => {
    counters.lists++;
    const rvParam = q.get('resourceVersion');
    const match = q.get('resourceVersionMatch');
    const limit = q.has('limit') ? Number(q.get('limit')) : 0;
    const cont = q.get('continue');
    if (limit < 0 || !Number.isInteger(limit)) throw new HttpError(400, 'BadRequest', `invalid limit ${q.get('limit')}`);
    let at = rev;
    let after = '';
    if (cont) {
      if (rvParam && rvParam !== '0') throw new HttpError(400, 'BadRequest', 'specifying resource version is not allowed when using continue');
      let tok: { rv: number; start: string };
      try {
        tok = JSON.parse(Buffer.from(cont, 'base64url').toString('utf8'));
        if (typeof tok.rv !== 'number' || typeof tok.start !== 'string') throw new Error();
      } catch {
        throw new HttpError(400, 'BadRequest', 'continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)');
      }
      at = tok.rv;
      after = tok.start;
      const oldest = Math.max(compactedAt.get(typeKey(t)) ?? 0, globalCompact);
      if (at < oldest) {
        counters.gone410++;
        throw new HttpError(410, 'Expired', 'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.');
      }
    } else if (match) {
      if (!rvParam) throw new HttpError(400, 'BadRequest', `resourceVersionMatch is forbidden unless resourceVersion is provided`);
      if (match === 'Exact') {
        if (rvParam === '0') throw new HttpError(400, 'BadRequest', 'resourceVersionMatch "exact" is forbidden for resourceVersion "0"');
        at = Number(rvParam);
      } else if (match === 'NotOlderThan') {
        if (Number(rvParam) > rev) throw new HttpError(504, 'Timeout', `Too large resource version: ${rvParam}, current resource version: ${rev}`, { retryAfterSeconds: 1 }, 1);
      } else throw new HttpError(400, 'BadRequest', `unsupported resourceVersionMatch "${match}"`);
    } else if (rvParam && rvParam !== '0') {
      const n = Number(rvParam);
      if (!Number.isInteger(n)) throw new HttpError(400, 'BadRequest', `invalid resource version "${rvParam}"`);
      if (n > rev) throw new HttpError(504, 'Timeout', `Too large resource version: ${n}, current resource version: ${rev}`, { retryAfterSeconds: 1 }, 1);
      if (limit > 0) at = n; // Exact
    }
    if (at > rev) throw new HttpError(504, 'Timeout', `Too large resource version: ${at}, current resource version: ${rev}`, { retryAfterSeconds: 1 }, 1);
    const snap = snapshot(t, at);
    const sel = { namespace: ns, labels, fields };
    const keys = [...snap.keys()].filter((key) => key > after).sort();
    const items: any[] = [];
    let next: string | undefined;
    let scanned = 0;
    for (const key of keys) {
      scanned++;
      const o = snap.get(key);
      if (!matches(sel, o)) continue;
      items.push(o);
      if (limit > 0 && items.length >= limit) {
        if (scanned < keys.length) next = Buffer.from(JSON.stringify({ rv: at, start: key })).toString('base64url');
        break;
      }
    }
    const metadata: Record<string, unknown> = { resourceVersion: String(at) };
    if (next) {
      metadata.continue = next;
      if (!labels.length && !fields.length) metadata.remainingItemCount = keys.length - scanned;
    }
    const out = items.map((o) => {
      const c = clone(o);
      if (t.builtin) {
        delete c.kind;
        delete c.apiVersion;
      }
      return c;
    });
    if (/as=Table/.test(accept)) return asTable(t, out, metadata);
    return { kind: `${t.kind}List`, apiVersion: apiVersionOf(t), metadata, items: out };
  };

  const age = (ts: string | undefined) => {
    if (!ts) return '<unknown>';
    const s = Math.max(0, Math.floor((Date.now() - Date.parse(ts)) / 1000));
    return s < 120 ? `${s}s` : s < 7200 ? `${Math.floor(s / 60)}m` : `${Math.floor(s / 3600)}h`;
  };
  const asTable = (t: ResourceType, items: any[], metadata: Record<string, unknown>) => ({
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata,
    columnDefinitions: [
      { name: 'Name', type: 'string', format: 'name', description: 'Name must be unique within a namespace.', priority: 0 },
      { name: 'Age', type: 'string', format: '', description: 'CreationTimestamp', priority: 0 },
    ],
    rows: items.map((o) => ({
      cells: [o.metadata.name, age(o.metadata.creationTimestamp)],
      object: { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata },
    })),
    _type: t.kind,
  });

  // ---------------------------------------------------------------------------- discovery
  const resourceList = (group: string, version: string) => {
    const res: any[] = [];
    for (const t of types.values()) {
      if (t.group !== group || t.version !== version) continue;
      res.push({
        name: t.plural,
        singularName: t.singular,
        namespaced: t.namespaced,
        kind: t.kind,
        verbs: ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'],
        ...(t.shortNames?.length ? { shortNames: t.shortNames } : {}),
      });
      if (t.statusSubresource) res.push({ name: `${t.plural}/status`, singularName: '', namespaced: t.namespaced, kind: t.kind, verbs: ['get', 'patch', 'update'] });
    }
    return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: group ? `${group}/${version}` : version, resources: res };
  };
  const groupList = () => {
    const groups = new Map<string, Set<string>>();
    for (const t of types.values()) if (t.group) (groups.get(t.group) ?? groups.set(t.group, new Set()).get(t.group)!).add(t.version);
    return {
      kind: 'APIGroupList',
      apiVersion: 'v1',
      groups: [...groups].map(([name, vs]) => ({
        name,
        versions: [...vs].map((v) => ({ groupVersion: `${name}/${v}`, version: v })),
        preferredVersion: { groupVersion: `${name}/${[...vs][0]}`, version: [...vs][0] },
      })),
    };
  };

  // ---------------------------------------------------------------------------- HTTP
  const readBody = (req: IncomingMessage): Promise<string> =>
    new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      req.on('error', reject);
    });

  const parseJson = (s: string, ct: string): any => {
    if (/yaml/.test(ct)) {
      const docs = parseAllDocuments(s);
      if (docs.length !== 1 || docs[0]!.errors.length) throw new HttpError(400, 'BadRequest', `error decoding YAML: ${docs[0]?.errors[0]?.message ?? 'expected one document'}`);
      return docs[0]!.toJS();
    }
    try {
      return JSON.parse(s);
    } catch (e) {
      throw new HttpError(400, 'BadRequest', `error decoding request body: ${(e as Error).message}`);
    }
  };

  const send = (res: ServerResponse, code: number, body: unknown, headers: Record<string, string> = {}) => {
    const s = JSON.stringify(body);
    res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(s)), ...headers });
    res.end(s);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    counters.requests++;
    const url = new URL(req.url ?? '/', 'https://x');
    const q = url.searchParams;
    const method = req.method ?? 'GET';
    const isWatch = q.get('watch') === 'true' || q.get('watch') === '1';
    if (req.headers.authorization !== `Bearer ${token}`) {
      send(res, 401, status(401, 'Unauthorized', 'Unauthorized'));
      return;
    }
    const rule = failRules.find(
      (r) => (!r.method || r.method === method) && (!r.path || url.pathname.includes(r.path)) && (r.watch === undefined || r.watch === isWatch),
    );
    if (rule) {
      rule.count = (rule.count ?? 1) - 1;
      if (rule.count <= 0) failRules.splice(failRules.indexOf(rule), 1);
      const headers: Record<string, string> = rule.retryAfterSeconds !== undefined ? { 'Retry-After': String(rule.retryAfterSeconds) } : {};
      send(res, rule.code, status(rule.code, rule.reason ?? 'InternalError', `injected failure ${rule.code}`), headers);
      return;
    }
    const p = url.pathname.replace(/\/+$/, '');
    if (p === '/version') return send(res, 200, { major: '1', minor: '32', gitVersion: 'v1.32.0', platform: 'linux/amd64' });
    if (p === '/api') return send(res, 200, { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: `127.0.0.1:${port}` }] });
    if (p === '/apis') return send(res, 200, groupList());
    if (p === '/healthz' || p === '/readyz' || p === '/livez') {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end('ok');
      return;
    }
    if (p.startsWith('/openapi')) throw new HttpError(404, 'NotFound', 'the server could not find the requested resource');

    // /api/v1/... or /apis/{g}/{v}/...
    const segs = p.split('/').filter(Boolean);
    let group: string;
    let version: string;
    let rest: string[];
    if (segs[0] === 'api' && segs.length >= 2) {
      group = '';
      version = segs[1]!;
      rest = segs.slice(2);
    } else if (segs[0] === 'apis' && segs.length >= 3) {
      group = segs[1]!;
      version = segs[2]!;
      rest = segs.slice(3);
    } else if (segs[0] === 'apis' && segs.length === 2) {
      const g = groupList().groups.find((x) => x.name === segs[1]);
      if (!g) throw new HttpError(404, 'NotFound', 'the server could not find the requested resource');
      return send(res, 200, { kind: 'APIGroup', apiVersion: 'v1', ...g });
    } else throw new HttpError(404, 'NotFound', 'the server could not find the requested resource');
    if (rest.length === 0) {
      const rl = resourceList(group, version);
      if (!rl.resources.length) throw new HttpError(404, 'NotFound', 'the server could not find the requested resource');
      return send(res, 200, rl);
    }
    let ns: string | undefined;
    // namespaces/{ns}/{plural}... but also the namespaces resource itself (/api/v1/namespaces[/name])
    if (rest[0] === 'namespaces' && rest.length >= 3) {
      ns = rest[1];
      rest = rest.slice(2);
    }
    const [plural, name, sub, ...extra] = rest;
    const t = findType(group, version, plural!);
    if (!t || extra.length) throw new HttpError(404, 'NotFound', 'the server could not find the requested resource');
    if (ns !== undefined && !t.namespaced) throw new HttpError(404, 'NotFound', 'the server could not find the requested resource');
    if (sub !== undefined && (sub !== 'status' || !t.statusSubresource)) throw new HttpError(404, 'NotFound', 'the server could not find the requested resource');

    let labels: LabelReq[];
    let fields: FieldReq[];
    try {
      labels = parseLabelSelector(q.get('labelSelector') ?? undefined);
      fields = parseFieldSelector(q.get('fieldSelector') ?? undefined, t.fieldSelectors ?? []);
    } catch (e) {
      if (e instanceof SelectorError) throw new HttpError(400, 'BadRequest', e.message);
      throw e;
    }
    const accept = String(req.headers.accept ?? '');
    const ct = String(req.headers['content-type'] ?? 'application/json');

    if (name === undefined) {
      if (method === 'GET') {
        if (isWatch) return startWatch(req, res, t, ns, q, labels, fields);
        return send(res, 200, doList(t, ns, q, labels, fields, accept));
      }
      if (method === 'POST') {
        const body = parseJson(await readBody(req), ct);
        if (t.namespaced && !ns) throw new HttpError(404, 'NotFound', 'the server could not find the requested resource');
        return send(res, 201, doCreate(t, ns, body));
      }
      if (method === 'DELETE') {
        const snap = [...store.get(typeKey(t))!.values()].filter((o) => matches({ namespace: ns, labels, fields }, o));
        const items = snap.map((o) => doDelete(t, o.metadata.namespace, o.metadata.name));
        return send(res, 200, { kind: `${t.kind}List`, apiVersion: apiVersionOf(t), metadata: { resourceVersion: String(rev) }, items });
      }
      throw new HttpError(405, 'MethodNotAllowed', `${method} is not supported on a collection`);
    }
    if (t.namespaced && !ns) throw new HttpError(404, 'NotFound', 'the server could not find the requested resource');
    const k = objKey(ns, name);
    const cur = store.get(typeKey(t))!.get(k);
    const notFound = () => new HttpError(404, 'NotFound', `${t.plural}${t.group ? '.' + t.group : ''} "${name}" not found`, { name, group: t.group, kind: t.plural });
    switch (method) {
      case 'GET': {
        if (!cur) throw notFound();
        if (/as=Table/.test(accept)) return send(res, 200, asTable(t, [cur], { resourceVersion: cur.metadata.resourceVersion }));
        return send(res, 200, cur);
      }
      case 'PUT': {
        const body = parseJson(await readBody(req), ct);
        if (!cur) throw notFound();
        if (body?.kind && body.kind !== t.kind) throw new HttpError(400, 'BadRequest', `the kind of the body (${body.kind}) does not match ${t.kind}`);
        return send(res, 200, doUpdate(t, ns, name, body, sub as 'status' | undefined));
      }
      case 'PATCH': {
        const raw = await readBody(req);
        const mediaType = ct.split(';')[0]!.trim();
        if (mediaType === 'application/apply-patch+yaml' || mediaType === 'application/apply-patch+json') {
          if (!q.get('fieldManager')) throw new HttpError(400, 'BadRequest', 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch');
          const intent = parseJson(raw, 'yaml');
          if (!cur) {
            if (sub) throw notFound();
            return send(res, 201, doCreate(t, ns, { ...intent, metadata: { ...(intent?.metadata ?? {}), name, ...(ns ? { namespace: ns } : {}) } }));
          }
          const merged = mergePatch(cur, { ...intent, metadata: { ...(intent?.metadata ?? {}), resourceVersion: intent?.metadata?.resourceVersion ?? null } });
          merged.metadata.resourceVersion = intent?.metadata?.resourceVersion;
          return send(res, 200, doUpdate(t, ns, name, merged, sub as 'status' | undefined));
        }
        if (!cur) throw notFound();
        const patch = parseJson(raw, 'json');
        let next: any;
        try {
          if (mediaType === 'application/merge-patch+json') next = mergePatch(cur, patch);
          else if (mediaType === 'application/json-patch+json') next = jsonPatch(cur, patch);
          else if (mediaType === 'application/strategic-merge-patch+json') {
            if (!t.builtin) throw new HttpError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml`);
            next = strategicMergePatch(cur, patch);
          } else throw new HttpError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml${t.builtin ? ', application/strategic-merge-patch+json' : ''}`);
        } catch (e) {
          if (e instanceof PatchError) throw new HttpError(e.code, e.code === 422 ? 'Invalid' : 'BadRequest', e.message);
          throw e;
        }
        // a patch without metadata.resourceVersion is unconditional
        const patchRv = mediaType === 'application/json-patch+json' ? next?.metadata?.resourceVersion : patch?.metadata?.resourceVersion;
        if (next?.metadata) next.metadata.resourceVersion = patchRv === cur.metadata.resourceVersion || patchRv === undefined ? undefined : patchRv;
        return send(res, 200, doUpdate(t, ns, name, next, sub as 'status' | undefined));
      }
      case 'DELETE': {
        const raw = await readBody(req);
        let pre: string | undefined;
        if (raw.trim()) pre = parseJson(raw, 'json')?.preconditions?.resourceVersion;
        if (!cur) throw notFound();
        const deleted = doDelete(t, ns, name, pre);
        return send(res, 200, deleted);
      }
      default:
        throw new HttpError(405, 'MethodNotAllowed', `${method} not allowed`);
    }
  };

  const server: Server = createServer({ key, cert }, (req, res) => {
    handle(req, res).catch((e) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (e instanceof HttpError) {
        const headers: Record<string, string> = e.retryAfter !== undefined ? { 'Retry-After': String(e.retryAfter) } : {};
        send(res, e.code, status(e.code, e.reason, e.message, e.details), headers);
      } else send(res, 500, status(500, 'InternalError', String((e as Error)?.stack ?? e)));
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  // keep-alive sockets must not keep stop() waiting
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  const url = `https://127.0.0.1:${port}`;

  for (const nsName of opts.namespaces ?? ['default', 'kube-system', 'kube-public']) {
    doCreate(types.get('/namespaces')!, undefined, { metadata: { name: nsName } });
  }
  if (opts.calicoCrds !== false) {
    for (const crd of loadCrdManifests()) doCreate(types.get('apiextensions.k8s.io/customresourcedefinitions')!, undefined, crd);
  }

  const kubeconfigFor = (tok: string, file: string) => {
    writeFileSync(
      file,
      `apiVersion: v1
kind: Config
clusters:
- name: petrel-test
  cluster:
    server: ${url}
    certificate-authority: ${caFile}
users:
- name: petrel-test
  user:
    token: ${tok}
contexts:
- name: petrel-test
  context:
    cluster: petrel-test
    user: petrel-test
    namespace: default
current-context: petrel-test
`,
    );
    return file;
  };
  const kubeconfigPath = kubeconfigFor(token, join(dir, 'kubeconfig'));

  const typeFor = (apiVersion: string, kind: string) => {
    const t = typeOfObject(apiVersion, kind);
    if (!t) throw new Error(`test apiserver: unknown type ${apiVersion} ${kind}`);
    return t;
  };

  return {
    url,
    token,
    caFile,
    kubeconfigPath,
    counters,
    revision: () => rev,
    async stop() {
      for (const w of [...watchers]) endWatch(w, true);
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
    compact() {
      globalCompact = rev;
      for (const [k, h] of history) {
        h.length = 0;
        compactedAt.set(k, rev);
      }
    },
    dropWatches() {
      for (const w of [...watchers]) endWatch(w, true);
    },
    stallWatches() {
      for (const w of watchers) w.stalled = true;
    },
    errorWatches(code = 500) {
      for (const w of [...watchers]) {
        w.res.write(JSON.stringify({ type: 'ERROR', object: status(code, code === 410 ? 'Expired' : 'InternalError', `injected watch error ${code}`) }) + '\n');
        endWatch(w);
      }
    },
    injectWatchLine(line: string) {
      for (const w of watchers) if (!w.closed && !w.stalled) w.res.write(line.endsWith('\n') ? line : `${line}\n`);
    },
    failNext(rule: FailRule) {
      failRules.push({ ...rule });
    },
    registerCrd(crd: any) {
      doCreate(types.get('apiextensions.k8s.io/customresourcedefinitions')!, undefined, crd);
    },
    put(obj: any) {
      const t = typeFor(obj.apiVersion, obj.kind);
      const ns = t.namespaced ? obj.metadata?.namespace ?? 'default' : undefined;
      const existing = store.get(typeKey(t))!.get(objKey(ns, obj.metadata?.name));
      if (!existing) return doCreate(t, ns, obj);
      const next = clone(obj);
      if (next.metadata) delete next.metadata.resourceVersion;
      let out = doUpdate(t, ns, obj.metadata.name, next);
      if (t.statusSubresource && obj.status !== undefined) out = doUpdate(t, ns, obj.metadata.name, { ...next, status: obj.status }, 'status');
      return out;
    },
    remove(apiVersion: string, kind: string, name: string, namespace?: string) {
      const t = typeFor(apiVersion, kind);
      doDelete(t, t.namespaced ? namespace ?? 'default' : undefined, name);
    },
    kubeconfigWithToken(tok: string) {
      return kubeconfigFor(tok, join(dir, `kubeconfig-${randomBytes(4).toString('hex')}`));
    },
  };
}
