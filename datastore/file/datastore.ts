// The file datastore: every *.yaml, *.yml, *.json under a directory (recursive, multi-document),
// watched for changes. See README "File datastore" for the layout and the write rules.
//
// Unit of change is the file. A file whose every document is valid contributes its resources;
// a file with a syntax error or an invalid document is reported (log + status().errors naming
// the file, document and field) and contributes the resources of its last good version (none
// if it never was good) until it is fixed. The same resource defined twice: the definition
// later in (file path, document) order wins, and the shadowed one is reported.
//
// Writes (ctl, IPAM) hold the directory lock (lock.ts), re-read the tree, check, and write the
// whole file atomically (temp file + rename): a resource that came from a file is rewritten in
// place in that file; a new one goes to `<dir>/<plural>/[<namespace>/]<name>.yaml`.

import { randomBytes } from 'node:crypto';
import { type FSWatcher, promises as fsp, watch as fsWatch } from 'node:fs';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { logger, type Logger } from '../../agent/log.js';
import { counter, gauge } from '../../agent/metrics.js';
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
  ValidationError,
  describeSource,
  kindInfo,
  kindOf,
  resourceKey,
} from '../types.js';
import { validateResource } from '../validate.js';
import { withDirectoryLock } from './lock.js';
import {
  type DocAddress,
  type FileFormat,
  SyntaxProblem,
  appendText,
  contentVersion,
  formatOf,
  parseManifestText,
  rewriteText,
  sha256,
  storedForm,
} from './parse.js';

const mProblems = () =>
  gauge({ name: 'petrel_datastore_file_problems', help: 'File datastore: broken files and shadowed duplicate definitions right now' });
const mRescans = () => counter({ name: 'petrel_datastore_file_rescans_total', help: 'File datastore: re-reads of the directory tree' });

export interface FileDatastoreOptions {
  path: string;
  /** Quiet time after the last file-system event before the tree is re-read. Default 75 ms. */
  debounceMs?: number;
  /** A burst of events never delays a re-read longer than this. Default 500 ms. */
  maxDelayMs?: number;
  /** Full re-read even without events (safety net for missed events). Default 30 s; 0 = off. */
  resyncIntervalMs?: number;
  /** Lock wait for writes. Default 10 s. */
  lockTimeoutMs?: number;
}

interface Entry extends DocAddress {
  key: ResourceKey;
  kind: KindId;
  /** Validated resource, metadata.resourceVersion set. */
  resource: Resource;
  file: string;
}

interface FileState {
  rel: string;
  abs: string;
  format: FileFormat;
  stamp: string;
  hash: string;
  /** Entries of the last good version. */
  entries: Entry[];
  everGood: boolean;
  /** Set while the current content is broken. */
  problem?: string;
  problemSince?: string;
}

interface Winner {
  entry: Entry;
  rv: string;
}

function clone<T>(v: T): T {
  return structuredClone(v);
}

function errMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** `<dir>/<plural>/[<namespace>/]<name>.yaml`: where a new resource is written. */
export function newResourcePath(dir: string, kind: KindId, name: string, namespace?: string): string {
  const k = kindInfo(kind);
  const safe = (s: string) => s.replace(/[\/\\\0]/g, '_');
  return k.namespaced
    ? join(dir, k.plural, safe(namespace ?? 'default'), `${safe(name)}.yaml`)
    : join(dir, k.plural, `${safe(name)}.yaml`);
}

async function writeAtomic(path: string, text: string): Promise<void> {
  await fsp.mkdir(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  let mode = 0o644;
  try {
    mode = (await fsp.stat(path)).mode & 0o777;
  } catch {
    /* new file */
  }
  const fh = await fsp.open(tmp, 'wx', mode);
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await fsp.rename(tmp, path);
  } catch (e) {
    await fsp.unlink(tmp).catch(() => undefined);
    throw e;
  }
}

export class FileDatastore implements Datastore {
  readonly type = 'file' as const;
  readonly dir: string;
  private readonly log: Logger;
  private readonly debounceMs: number;
  private readonly maxDelayMs: number;
  private readonly resyncIntervalMs: number;
  private readonly lockTimeoutMs: number;

  private files = new Map<string, FileState>();
  private winners = new Map<ResourceKey, Winner>();
  private duplicateErrors: SourceError[] = [];
  private loaded = false;
  private inSync = false;
  private connected = true;
  private reason?: string;

  private handlers: EventHandler[] = [];
  private watchers = new Map<string, FSWatcher>();
  private timer?: NodeJS.Timeout;
  private firstEventAt = 0;
  private resyncTimer?: NodeJS.Timeout;
  private closed = false;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(opts: FileDatastoreOptions) {
    this.dir = resolve(opts.path);
    this.debounceMs = opts.debounceMs ?? 75;
    this.maxDelayMs = opts.maxDelayMs ?? 500;
    this.resyncIntervalMs = opts.resyncIntervalMs ?? 30_000;
    this.lockTimeoutMs = opts.lockTimeoutMs ?? 10_000;
    this.log = logger('datastore-file', { path: this.dir });
  }

  // ---- serialisation: rescans and writes run one at a time in this process ----

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  // ---- reading the tree ----

  private async walk(): Promise<Map<string, { abs: string; stamp: string }>> {
    const found = new Map<string, { abs: string; stamp: string }>();
    const seenDirs = new Set<string>();
    const dirs: string[] = [];
    const visit = async (abs: string): Promise<void> => {
      let real: string;
      try {
        real = await fsp.realpath(abs);
      } catch (e) {
        if (abs === this.dir) throw e;
        return;
      }
      if (seenDirs.has(real)) return;
      seenDirs.add(real);
      dirs.push(abs);
      let ents;
      try {
        ents = await fsp.readdir(abs, { withFileTypes: true });
      } catch (e) {
        if (abs === this.dir) throw e;
        return; // vanished meanwhile
      }
      for (const ent of ents) {
        // Hidden entries: editor swap files, our temp files and lock, and Kubernetes
        // ConfigMap volumes' `..data` / `..<timestamp>` directories (read via the symlinks).
        if (ent.name.startsWith('.')) continue;
        const p = join(abs, ent.name);
        let isDir = ent.isDirectory();
        let isFile = ent.isFile();
        if (ent.isSymbolicLink()) {
          const st = await fsp.stat(p).catch(() => undefined);
          if (!st) continue;
          isDir = st.isDirectory();
          isFile = st.isFile();
        }
        if (isDir) await visit(p);
        else if (isFile && formatOf(ent.name)) {
          const st = await fsp.stat(p, { bigint: true }).catch(() => undefined);
          if (!st) continue;
          found.set(relative(this.dir, p).split(sep).join('/'), {
            abs: p,
            stamp: `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`,
          });
        }
      }
    };
    await visit(this.dir);
    if (this.handlers.length > 0 && !this.closed) this.syncWatchers(dirs);
    return found;
  }

  private parseFile(rel: string, abs: string, text: string, format: FileFormat): Entry[] {
    const docs = parseManifestText(text, format); // throws SyntaxProblem
    const entries: Entry[] = [];
    const problems: string[] = [];
    for (const d of docs) {
      const source = { file: abs, index: d.index, item: d.item };
      try {
        if (typeof d.raw !== 'object' || d.raw === null || Array.isArray(d.raw)) {
          throw new ValidationError(source, [{ path: '(document)', message: 'expected an object with apiVersion, kind, metadata' }]);
        }
        const { resource, warnings } = validateResource(d.raw, source);
        for (const w of (warnings ?? []) as unknown[]) {
          this.log.warn({ file: rel, document: d.index, warning: w }, `${rel}: document ${d.index}: ${typeof w === 'string' ? w : JSON.stringify(w)}`);
        }
        const k = kindOf(resource.apiVersion, resource.kind);
        if (!k) throw new ValidationError(source, [{ path: 'kind', message: `unknown kind ${resource.apiVersion} ${resource.kind}` }]);
        const r = clone(resource);
        if (k.namespaced && !r.metadata.namespace) r.metadata.namespace = 'default';
        if (!k.namespaced) delete r.metadata.namespace;
        delete r.metadata.resourceVersion;
        r.metadata.resourceVersion = contentVersion(r);
        const key = resourceKey(k.id, r.metadata.name, k.namespaced ? r.metadata.namespace : undefined);
        entries.push({ key, kind: k.id, resource: r, file: rel, index: d.index, item: d.item });
      } catch (e) {
        if (e instanceof ValidationError) problems.push(e.message);
        else problems.push(`${describeSource(source)}: ${errMessage(e)}`);
      }
    }
    if (problems.length > 0) throw new Error(problems.join('\n'));
    return entries;
  }

  /** Re-reads the tree (changed files only) and returns the events that changed the view. */
  private async rescan(): Promise<DatastoreEvent[]> {
    let found;
    try {
      found = await this.walk();
    } catch (e) {
      const reason =
        (e as NodeJS.ErrnoException).code === 'ENOENT'
          ? `datastore directory ${this.dir} does not exist`
          : `cannot read datastore directory ${this.dir}: ${errMessage(e)}`;
      if (!this.loaded) throw new DatastoreUnavailableError(reason);
      if (this.connected) {
        this.log.error({ reason }, 'datastore directory unreadable; keeping every resource loaded so far');
        this.connected = false;
        this.reason = reason;
        return [{ type: 'status', state: 'disconnected', reason }];
      }
      return [];
    }
    const events: DatastoreEvent[] = [];
    const reconnected = !this.connected;
    if (!this.connected) {
      this.connected = true;
      this.reason = undefined;
      this.log.info('datastore directory readable again');
      events.push({ type: 'status', state: 'connected' });
    }

    const next = new Map<string, FileState>();
    for (const [rel, { abs, stamp }] of found) {
      const old = this.files.get(rel);
      if (old && old.stamp === stamp) {
        next.set(rel, old);
        continue;
      }
      let text: string;
      try {
        text = await fsp.readFile(abs, 'utf8');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue; // deleted meanwhile
        text = '\0unreadable';
      }
      const hash = sha256(text);
      if (old && old.hash === hash) {
        next.set(rel, { ...old, stamp });
        continue;
      }
      const format = formatOf(rel)!;
      const st: FileState = {
        rel,
        abs,
        format,
        stamp,
        hash,
        entries: old?.entries ?? [],
        everGood: old?.everGood ?? false,
      };
      try {
        if (text === '\0unreadable') throw new Error(`${abs}: cannot read file`);
        st.entries = this.parseFile(rel, abs, text, format);
        st.everGood = true;
        if (old?.problem) this.log.info({ file: rel }, `${rel}: fixed; its resources are loaded again`);
      } catch (e) {
        let msg = e instanceof SyntaxProblem ? `${abs}: ${e.message}` : errMessage(e);
        msg += st.everGood
          ? ` (keeping the ${st.entries.length} resource(s) of its last good version until it is fixed)`
          : ' (file skipped until it is fixed)';
        st.problem = msg;
        st.problemSince = old?.problem === msg ? old.problemSince : new Date().toISOString();
        this.log.error({ file: rel }, msg);
      }
      next.set(rel, st);
    }
    for (const rel of this.files.keys()) {
      if (!next.has(rel)) this.log.info({ file: rel }, `${rel}: removed; its resources are deleted`);
    }
    this.files = next;
    this.loaded = true;

    // The view: files in path order, documents in order; a later definition wins.
    const winners = new Map<ResourceKey, Winner>();
    const defs = new Map<ResourceKey, Entry[]>();
    for (const rel of [...this.files.keys()].sort()) {
      for (const e of this.files.get(rel)!.entries) {
        winners.set(e.key, { entry: e, rv: e.resource.metadata.resourceVersion! });
        const l = defs.get(e.key);
        if (l) l.push(e);
        else defs.set(e.key, [e]);
      }
    }
    const dup: SourceError[] = [];
    for (const [key, list] of defs) {
      if (list.length < 2) continue;
      const w = list[list.length - 1];
      for (const e of list.slice(0, -1)) {
        const prev = this.duplicateErrors.find((d) => d.source === e.file && d.message.includes(` ${key} `));
        const message = `${join(this.dir, e.file)}, document ${e.index}: ${key} is also defined in ${join(this.dir, w.file)}, document ${w.index}, which wins (later path wins)`;
        dup.push({ source: e.file, message, since: prev?.message === message ? prev.since : new Date().toISOString() });
      }
    }
    for (const d of dup) {
      if (!this.duplicateErrors.some((p) => p.message === d.message)) this.log.warn({ file: d.source }, d.message);
    }
    this.duplicateErrors = dup;
    mRescans().inc();
    mProblems().set([...this.files.values()].filter((f) => f.problem).length + dup.length);

    for (const [key, w] of winners) {
      const before = this.winners.get(key);
      if (!before || before.rv !== w.rv) events.push({ type: 'update', key, kind: w.entry.kind, resource: clone(w.entry.resource) });
    }
    for (const [key, w] of this.winners) {
      if (!winners.has(key)) events.push({ type: 'delete', key, kind: w.entry.kind });
    }
    this.winners = winners;
    // A resync after the directory came back ends like the first list (types.ts InSyncEvent).
    if (reconnected) events.push({ type: 'in-sync' });
    return events;
  }

  private emit(events: DatastoreEvent[]): void {
    if (events.length === 0 || this.closed) return;
    for (const h of this.handlers) {
      try {
        h(events);
      } catch (e) {
        this.log.error({ err: e }, 'event handler threw');
      }
    }
  }

  private refresh(): Promise<void> {
    return this.serial(async () => {
      const ev = await this.rescan();
      if (this.inSync) this.emit(ev);
    });
  }

  // ---- watching ----

  private syncWatchers(dirs: string[]): void {
    const want = new Set(dirs);
    for (const [d, w] of this.watchers) {
      if (!want.has(d)) {
        w.close();
        this.watchers.delete(d);
      }
    }
    for (const d of want) {
      if (this.watchers.has(d)) continue;
      try {
        const w = fsWatch(d, { persistent: false }, () => this.schedule());
        w.on('error', () => {
          w.close();
          this.watchers.delete(d);
          this.schedule();
        });
        this.watchers.set(d, w);
      } catch (e) {
        this.log.warn({ dir: d, err: errMessage(e) }, 'cannot watch directory; relying on periodic re-reads');
      }
    }
  }

  private schedule(): void {
    if (this.closed) return;
    const now = Date.now();
    if (!this.timer) this.firstEventAt = now;
    else clearTimeout(this.timer);
    const wait = Math.max(0, Math.min(this.debounceMs, this.firstEventAt + this.maxDelayMs - now));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.refresh().catch((e) => this.log.error({ err: errMessage(e) }, 're-read failed'));
    }, wait);
  }

  async watch(handler: EventHandler): Promise<void> {
    if (this.closed) throw new Error('datastore closed');
    const first = this.handlers.length === 0;
    this.handlers.push(handler);
    await this.serial(async () => {
      const ev = await this.rescan(); // sets up directory watchers too
      if (first) {
        // Watching starts after a read: re-read once more so that nothing written between
        // that read and the watchers' start is missed.
        ev.push(...(await this.rescan()));
      }
      const snapshot: DatastoreEvent[] = this.connected ? [] : [{ type: 'status', state: 'disconnected', reason: this.reason }];
      for (const [key, w] of this.winners) snapshot.push({ type: 'update', key, kind: w.entry.kind, resource: clone(w.entry.resource) });
      snapshot.push({ type: 'in-sync' });
      if (this.inSync) this.emit(ev.filter((e) => e.type !== 'status'));
      this.inSync = true;
      try {
        handler(snapshot);
      } catch (e) {
        this.log.error({ err: e }, 'event handler threw');
      }
      this.log.info({ files: this.files.size, resources: this.winners.size, errors: this.status().errors.length }, 'file datastore loaded; in sync');
    });
    if (first && this.resyncIntervalMs > 0) {
      this.resyncTimer = setInterval(() => this.schedule(), this.resyncIntervalMs);
      this.resyncTimer.unref();
    }
  }

  status(): DatastoreStatus {
    const errors: SourceError[] = [];
    for (const f of [...this.files.values()].sort((a, b) => (a.rel < b.rel ? -1 : 1))) {
      if (f.problem) errors.push({ source: f.rel, message: f.problem, since: f.problemSince ?? new Date().toISOString() });
    }
    errors.push(...this.duplicateErrors);
    return { type: 'file', inSync: this.inSync, connected: this.connected, reason: this.reason, errors };
  }

  // ---- reads ----

  private async ensureFresh(): Promise<void> {
    if (this.handlers.length > 0 && this.loaded) {
      // Watching: the view is at most one debounce behind; re-read so a read after a write by
      // another process sees it.
      await this.refresh();
      return;
    }
    await this.serial(async () => {
      await this.rescan();
    });
  }

  async get(kind: KindId, name: string, namespace?: string): Promise<Resource | undefined> {
    await this.ensureFresh();
    const k = kindInfo(kind);
    const w = this.winners.get(resourceKey(kind, name, k.namespaced ? namespace ?? 'default' : undefined));
    return w ? clone(w.entry.resource) : undefined;
  }

  async list(kind: KindId, opts: ListOptions = {}): Promise<Resource[]> {
    await this.ensureFresh();
    const out: Resource[] = [];
    for (const w of this.winners.values()) {
      if (w.entry.kind !== kind) continue;
      if (opts.namespace !== undefined && w.entry.resource.metadata.namespace !== opts.namespace) continue;
      out.push(clone(w.entry.resource));
    }
    out.sort((a, b) => {
      const ka = `${a.metadata.namespace ?? ''}/${a.metadata.name}`;
      const kb = `${b.metadata.namespace ?? ''}/${b.metadata.name}`;
      return ka < kb ? -1 : ka > kb ? 1 : 0;
    });
    return out;
  }

  /** Where a resource is defined (file relative to the directory, document index), if anywhere. */
  async locate(kind: KindId, name: string, namespace?: string): Promise<{ file: string; index: number; item?: number } | undefined> {
    await this.ensureFresh();
    const k = kindInfo(kind);
    const w = this.winners.get(resourceKey(kind, name, k.namespaced ? namespace ?? 'default' : undefined));
    return w ? { file: w.entry.file, index: w.entry.index, item: w.entry.item } : undefined;
  }

  // ---- writes ----

  private validated(input: Resource): { resource: Resource; key: ResourceKey; kind: KindId; namespace?: string } {
    const source = { kind: input?.kind, name: input?.metadata?.name, namespace: input?.metadata?.namespace };
    const { resource } = validateResource(input, source);
    const k = kindOf(resource.apiVersion, resource.kind);
    if (!k) throw new ValidationError(source, [{ path: 'kind', message: `unknown kind ${resource.apiVersion} ${resource.kind}` }]);
    const namespace = k.namespaced ? resource.metadata.namespace ?? 'default' : undefined;
    return { resource, key: resourceKey(k.id, resource.metadata.name, namespace), kind: k.id, namespace };
  }

  private async write(op: 'create' | 'replace' | 'apply', input: Resource): Promise<Resource> {
    const v = this.validated(input);
    const stored = storedForm(input);
    const wantRv = input.metadata?.resourceVersion;
    return await this.serial(() =>
      withDirectoryLock(
        this.dir,
        async () => {
          const ev = await this.rescan();
          if (this.inSync) this.emit(ev);
          const cur = this.winners.get(v.key);
          if (op === 'create' && cur) throw new ConflictError(`${v.key} already exists (in ${join(this.dir, cur.entry.file)})`);
          if (op === 'replace' && !cur) throw new NotFoundError(`${v.key} does not exist`);
          if (cur && wantRv && wantRv !== cur.rv) {
            throw new ConflictError(`${v.key}: resourceVersion ${wantRv} is stale (current ${cur.rv}); get it again and retry`);
          }
          if (cur) {
            const f = this.files.get(cur.entry.file)!;
            if (f.problem) {
              throw new ConflictError(`${v.key} is defined in ${f.abs}, which is broken (${f.problem.split('\n')[0]}); fix that file first`);
            }
            const text = await fsp.readFile(f.abs, 'utf8');
            await writeAtomic(f.abs, rewriteText(text, f.format, cur.entry, stored));
            this.log.info({ file: f.rel, document: cur.entry.index, key: v.key }, `${op}: rewrote ${v.key} in ${f.rel}`);
          } else {
            const path = newResourcePath(this.dir, v.kind, v.resource.metadata.name, v.namespace);
            const text = await fsp.readFile(path, 'utf8').catch(() => '');
            const fmt = formatOf(path)!;
            await writeAtomic(path, appendText(text, fmt, stored));
            this.log.info({ file: relative(this.dir, path), key: v.key }, `${op}: wrote ${v.key} to ${relative(this.dir, path)}`);
          }
          const after = await this.rescan();
          if (this.inSync) this.emit(after);
          const w = this.winners.get(v.key);
          if (!w) {
            const f = this.status().errors.map((e) => e.message).join('; ');
            throw new Error(`${v.key} was written but does not read back${f ? `: ${f}` : ''}`);
          }
          return clone(w.entry.resource);
        },
        { timeoutMs: this.lockTimeoutMs },
      ),
    );
  }

  create(resource: Resource): Promise<Resource> {
    return this.write('create', resource);
  }

  replace(resource: Resource): Promise<Resource> {
    return this.write('replace', resource);
  }

  apply(resource: Resource): Promise<Resource> {
    return this.write('apply', resource);
  }

  async delete(kind: KindId, name: string, namespace?: string): Promise<Resource> {
    const k = kindInfo(kind);
    const key = resourceKey(kind, name, k.namespaced ? namespace ?? 'default' : undefined);
    return await this.serial(() =>
      withDirectoryLock(
        this.dir,
        async () => {
          const ev = await this.rescan();
          if (this.inSync) this.emit(ev);
          const cur = this.winners.get(key);
          if (!cur) throw new NotFoundError(`${key} does not exist`);
          // Every definition goes (a shadowed duplicate would otherwise come back).
          const defs: Entry[] = [];
          for (const f of this.files.values()) for (const e of f.entries) if (e.key === key) defs.push(e);
          const byFile = new Map<string, Entry[]>();
          for (const e of defs) byFile.set(e.file, [...(byFile.get(e.file) ?? []), e]);
          for (const [rel, list] of byFile) {
            const f = this.files.get(rel)!;
            if (f.problem) throw new ConflictError(`${key} is defined in ${f.abs}, which is broken (${f.problem.split('\n')[0]}); fix that file first`);
            let text = await fsp.readFile(f.abs, 'utf8');
            // Highest address first so earlier addresses stay valid.
            list.sort((a, b) => b.index - a.index || (b.item ?? 0) - (a.item ?? 0));
            for (const e of list) text = rewriteText(text, f.format, e, undefined);
            if (text === '') await fsp.unlink(f.abs);
            else await writeAtomic(f.abs, text);
            this.log.info({ file: rel, key }, `delete: removed ${key} from ${rel}`);
          }
          const after = await this.rescan();
          if (this.inSync) this.emit(after);
          return clone(cur.entry.resource);
        },
        { timeoutMs: this.lockTimeoutMs },
      ),
    );
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
    this.handlers = [];
    await this.chain.catch(() => undefined);
  }
}
