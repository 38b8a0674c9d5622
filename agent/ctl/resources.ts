// `petrel ctl apply|create|replace|delete|get`: datastore-neutral resource management.

import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { stringify as yamlStringify } from 'yaml';
import { createBackend, datastoreOptionsFrom } from '../../datastore/factory.js';
import { parseManifestText, SyntaxProblem, type FileFormat } from '../../datastore/file/parse.js';
import {
  CALICO_API,
  ConflictError,
  type Datastore,
  type DatastoreOptions,
  DatastoreUnavailableError,
  type KindInfo,
  NotFoundError,
  type Resource,
  ValidationError,
  describeSource,
  type KindId,
  kindFromUserWord,
  kindInfo,
  kindOf,
} from '../../datastore/types.js';
import { validateResource } from '../../datastore/validate.js';
import { CtlExit, EXIT_BAD_INPUT, EXIT_UNREACHABLE, io } from './io.js';
import { redactSecrets, resourceTable } from './table.js';

/** Datastore options from parsed argv (the common options of CONTRACT §1, camelCase). */
export const ctlDatastoreOptions = (argv: Record<string, unknown>): DatastoreOptions => datastoreOptionsFrom(argv);

const NET_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'EAI_AGAIN']);

function isUnreachable(e: unknown): boolean {
  if (e instanceof DatastoreUnavailableError) return true;
  const err = e as { code?: string; name?: string; message?: string; cause?: unknown } | undefined;
  if (!err) return false;
  if (err.code && NET_CODES.has(err.code)) return true;
  if (err.name === 'GRPCConnectFailedError' || err.name === 'GRPCUnavailableError' || err.name === 'GRPCDeadlineExceededError') return true;
  if (err.cause && err.cause !== e) return isUnreachable(err.cause);
  return false;
}

/** Turns any error into the exit code of CONTRACT §1 and a message. */
export function toExit(e: unknown, what: string): CtlExit {
  if (e instanceof CtlExit) return e;
  const msg = e instanceof Error ? e.message : String(e);
  if (isUnreachable(e)) return new CtlExit(EXIT_UNREACHABLE, `${what}: datastore unreachable: ${msg}`);
  return new CtlExit(EXIT_BAD_INPUT, `${what}: ${msg}`);
}

function timeoutMs(): number {
  const v = Number(process.env.PETREL_CTL_TIMEOUT_MS);
  return Number.isFinite(v) && v > 0 ? v : 15_000;
}

async function withTimeout<T>(p: Promise<T>, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  const ms = timeoutMs();
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, rej) => {
        t = setTimeout(() => rej(new DatastoreUnavailableError(`${what}: no answer within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    if (t) clearTimeout(t);
  }
}

/** Opens the datastore of argv, runs fn, closes it; maps errors to exit codes. */
export async function withDatastore<T>(argv: Record<string, unknown>, what: string, fn: (ds: Datastore) => Promise<T>): Promise<T> {
  let ds: Datastore | undefined;
  try {
    const opts = ctlDatastoreOptions(argv);
    ds = await withTimeout(createBackend(opts), `connecting to the ${opts.type} datastore`);
    return await withTimeout(fn(ds), what);
  } catch (e) {
    throw toExit(e, what);
  } finally {
    if (ds) await Promise.race([ds.close().catch(() => undefined), new Promise((r) => setTimeout(r, 2000).unref())]);
  }
}

// ---- reading manifests (-f FILE | - | DIR) ----

export interface InputDoc {
  file: string;
  index: number;
  item?: number;
  raw: unknown;
}

async function readInputs(path: string): Promise<{ file: string; text: string; format: FileFormat }[]> {
  if (path === '-') {
    const text = await io().stdin();
    const t = text.trimStart();
    return [{ file: '<stdin>', text, format: t.startsWith('{') || t.startsWith('[') ? 'json' : 'yaml' }];
  }
  let st;
  try {
    st = await fsp.stat(path);
  } catch (e) {
    throw new CtlExit(EXIT_BAD_INPUT, `${path}: cannot read: ${(e as Error).message}`);
  }
  const files = st.isDirectory()
    ? (await fsp.readdir(path))
        .filter((f) => /\.(ya?ml|json)$/i.test(f) && !f.startsWith('.'))
        .sort()
        .map((f) => join(path, f))
    : [path];
  const out = [];
  for (const f of files) {
    out.push({ file: f, text: await fsp.readFile(f, 'utf8'), format: (/\.json$/i.test(f) ? 'json' : 'yaml') as FileFormat });
  }
  return out;
}

/** Every document of -f, parsed; syntax errors → exit 1 naming the file and document. */
export async function readDocs(path: string): Promise<InputDoc[]> {
  const docs: InputDoc[] = [];
  for (const { file, text, format } of await readInputs(path)) {
    try {
      for (const d of parseManifestText(text, format)) docs.push({ file, ...d });
    } catch (e) {
      if (e instanceof SyntaxProblem) throw new CtlExit(EXIT_BAD_INPUT, `${file}: ${e.message}`);
      throw e;
    }
  }
  if (docs.length === 0) throw new CtlExit(EXIT_BAD_INPUT, `${path}: no resources found`);
  return docs;
}

function docLabel(d: InputDoc): string {
  return `${d.file}, document ${d.index}${d.item !== undefined ? `, item ${d.item}` : ''}`;
}

/** Validates every document before anything is written; returns them with -n applied. */
export function validateAll(docs: InputDoc[], namespace?: string): { raw: Resource; resource: Resource; info: KindInfo }[] {
  const problems: string[] = [];
  const out: { raw: Resource; resource: Resource; info: KindInfo }[] = [];
  for (const d of docs) {
    const src = { file: d.file, index: d.index, item: d.item };
    try {
      if (typeof d.raw !== 'object' || d.raw === null || Array.isArray(d.raw)) {
        throw new ValidationError(src, [{ path: '(document)', message: 'expected an object with apiVersion, kind, metadata' }]);
      }
      const raw = structuredClone(d.raw) as Resource;
      const info = kindOf(raw.apiVersion, raw.kind);
      if (info?.namespaced && namespace !== undefined && raw.metadata && typeof raw.metadata === 'object') {
        if (raw.metadata.namespace === undefined) raw.metadata.namespace = namespace;
        else if (raw.metadata.namespace !== namespace) {
          throw new ValidationError({ ...src, kind: raw.kind, name: raw.metadata.name }, [
            { path: 'metadata.namespace', message: `namespace ${raw.metadata.namespace} does not match -n ${namespace}` },
          ]);
        }
      }
      const { resource, warnings } = validateResource(raw, src);
      for (const w of warnings ?? []) io().err(`warning: ${docLabel(d)}: ${w.path}: ${w.message}\n`);
      const k = kindOf(resource.apiVersion, resource.kind);
      if (!k) throw new ValidationError(src, [{ path: 'kind', message: `unknown kind ${resource.apiVersion} ${resource.kind}` }]);
      out.push({ raw, resource, info: k });
    } catch (e) {
      if (e instanceof ValidationError) {
        const where = describeSource(e.source) || docLabel(d);
        problems.push(`${where.startsWith(d.file) ? '' : `${docLabel(d)}: `}${e.message}`);
      } else problems.push(`${docLabel(d)}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  if (problems.length > 0) {
    throw new CtlExit(
      EXIT_BAD_INPUT,
      `${problems.join('\n')}\nNothing was written: ${problems.length} of ${docs.length} document(s) invalid.`,
    );
  }
  return out;
}

function summary(verb: string, items: { info: KindInfo }[]): string {
  const counts = new Map<string, number>();
  for (const i of items) counts.set(i.info.kind, (counts.get(i.info.kind) ?? 0) + 1);
  return [...counts].map(([k, n]) => `Successfully ${verb} ${n} '${k}' resource(s)\n`).join('');
}

function nsOf(info: KindInfo, r: Resource): string | undefined {
  return info.namespaced ? r.metadata.namespace ?? 'default' : undefined;
}

function label(info: KindInfo, r: Resource): string {
  const ns = nsOf(info, r);
  return `${info.kind}(${ns ? `${ns}/` : ''}${r.metadata.name})`;
}

export async function writeVerb(
  verb: 'apply' | 'create' | 'replace',
  argv: Record<string, unknown>,
): Promise<void> {
  const docs = await readDocs(String(argv.filename));
  const items = validateAll(docs, argv.namespace as string | undefined);
  await withDatastore(argv, `${verb} ${String(argv.filename)}`, async (ds) => {
    // Checks that need the datastore, before any write.
    if (verb !== 'apply') {
      const problems: string[] = [];
      for (const it of items) {
        const cur = await ds.get(it.info.id, it.resource.metadata.name, nsOf(it.info, it.resource));
        if (verb === 'create' && cur) problems.push(`resource already exists: ${label(it.info, it.resource)}`);
        if (verb === 'replace' && !cur) problems.push(`resource does not exist: ${label(it.info, it.resource)}`);
        const rv = it.raw.metadata?.resourceVersion;
        if (verb === 'replace' && cur && rv && rv !== cur.metadata.resourceVersion) {
          problems.push(`${label(it.info, it.resource)}: resourceVersion ${rv} is stale (current ${cur.metadata.resourceVersion})`);
        }
      }
      if (problems.length) throw new CtlExit(EXIT_BAD_INPUT, `${problems.join('\n')}\nNothing was written.`);
    }
    const done: typeof items = [];
    for (const it of items) {
      try {
        await ds[verb](it.raw);
        done.push(it);
      } catch (e) {
        const partial = done.length ? `\n${summary(verb === 'apply' ? 'applied' : verb === 'create' ? 'created' : 'replaced', done)}` : '';
        if (e instanceof ConflictError || e instanceof NotFoundError || e instanceof ValidationError) {
          throw new CtlExit(EXIT_BAD_INPUT, `${label(it.info, it.resource)}: ${e.message}${partial}`);
        }
        throw e;
      }
    }
    io().out(summary(verb === 'apply' ? 'applied' : verb === 'create' ? 'created' : 'replaced', done));
  });
}

export async function deleteVerb(argv: Record<string, unknown>): Promise<void> {
  const targets: { info: KindInfo; name: string; namespace?: string }[] = [];
  if (argv.filename !== undefined) {
    const docs = await readDocs(String(argv.filename));
    const problems: string[] = [];
    for (const d of docs) {
      const r = d.raw as Resource;
      const info = kindOf(r?.apiVersion, r?.kind);
      const name = r?.metadata?.name;
      if (!info) problems.push(`${docLabel(d)}: kind: unknown kind ${String(r?.apiVersion)} ${String(r?.kind)}`);
      else if (typeof name !== 'string' || !name) problems.push(`${docLabel(d)}: metadata.name: required`);
      else targets.push({ info, name, namespace: info.namespaced ? r.metadata.namespace ?? (argv.namespace as string) ?? 'default' : undefined });
    }
    if (problems.length) throw new CtlExit(EXIT_BAD_INPUT, `${problems.join('\n')}\nNothing was deleted.`);
  } else {
    const info = kindFromUserWord(String(argv.kind ?? ''));
    if (!info) throw new CtlExit(EXIT_BAD_INPUT, `unknown resource type: ${String(argv.kind)}`);
    const names = (argv.name as string[] | string | undefined) ?? [];
    const list = Array.isArray(names) ? names : [names];
    if (list.length === 0) throw new CtlExit(EXIT_BAD_INPUT, 'delete: name a resource (delete KIND NAME) or give -f FILE');
    for (const name of list) targets.push({ info, name: String(name), namespace: info.namespaced ? (argv.namespace as string) ?? 'default' : undefined });
  }
  await withDatastore(argv, 'delete', async (ds) => {
    const missing: string[] = [];
    const done: { info: KindInfo }[] = [];
    for (const t of targets) {
      try {
        await ds.delete(t.info.id, t.name, t.namespace);
        done.push(t);
      } catch (e) {
        if (e instanceof NotFoundError) missing.push(`resource does not exist: ${t.info.kind}(${t.namespace ? `${t.namespace}/` : ''}${t.name})`);
        else throw e;
      }
    }
    if (done.length) io().out(summary('deleted', done));
    if (missing.length && !argv.skipNotExists) throw new CtlExit(EXIT_BAD_INPUT, missing.join('\n'));
  });
}

/**
 * Workload endpoints and profiles that Pods, Namespaces and ServiceAccounts become (as the agent
 * sees them, CONTRACT §3), so `get weps` / `get profiles` show them as calicoctl does on KDD.
 */
async function derivedOf(ds: Datastore, kind: KindId, namespace: string | undefined): Promise<Resource[]> {
  const sources: KindId[] = kind === 'WorkloadEndpoint' ? ['Pod'] : kind === 'Profile' ? ['Namespace', 'ServiceAccount'] : [];
  if (sources.length === 0) return [];
  const { deriveFrom } = await import('../../datastore/derive.js');
  const out: Resource[] = [];
  for (const src of sources) {
    const ns = kindInfo(src).namespaced && namespace !== undefined ? { namespace } : {};
    for (const r of await ds.list(src, ns)) {
      const d = deriveFrom(src, r);
      if (d) out.push(d);
    }
  }
  return out;
}

export async function getVerb(argv: Record<string, unknown>): Promise<void> {
  const info = kindFromUserWord(String(argv.kind ?? ''));
  if (!info) throw new CtlExit(EXIT_BAD_INPUT, `unknown resource type: ${String(argv.kind)}`);
  const output = String(argv.output ?? 'table');
  if (!['table', 'wide', 'yaml', 'json'].includes(output)) throw new CtlExit(EXIT_BAD_INPUT, `unknown output format ${output} (table, wide, yaml, json)`);
  const all = Boolean(argv.allNamespaces);
  const namespace = info.namespaced ? (all ? undefined : ((argv.namespace as string | undefined) ?? 'default')) : undefined;
  const names = ((Array.isArray(argv.name) ? argv.name : argv.name !== undefined ? [argv.name] : []) as unknown[]).map(String);
  const items = await withDatastore(argv, `get ${info.plural}`, async (ds) => {
    const derived = await derivedOf(ds, info.id, namespace);
    if (names.length === 0) {
      const stored = await ds.list(info.id, namespace !== undefined ? { namespace } : {});
      const seen = new Set(stored.map((r) => `${r.metadata.namespace ?? ''}/${r.metadata.name}`));
      const extra = derived.filter((r) => !seen.has(`${r.metadata.namespace ?? ''}/${r.metadata.name}`));
      return [...stored, ...extra].sort((a, b) =>
        `${a.metadata.namespace ?? ''}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace ?? ''}/${b.metadata.name}`),
      );
    }
    const found: Resource[] = [];
    const missing: string[] = [];
    for (const n of names) {
      const r = (await ds.get(info.id, n, info.namespaced ? namespace ?? 'default' : undefined)) ?? derived.find((d) => d.metadata.name === n);
      if (r) found.push(r);
      else missing.push(`resource does not exist: ${info.kind}(${namespace ? `${namespace}/` : ''}${n})`);
    }
    if (missing.length) throw new CtlExit(EXIT_BAD_INPUT, missing.join('\n'));
    return found;
  });
  const shown = argv.showSecrets ? items : items.map((r) => redactSecrets(r));
  if (output === 'table' || output === 'wide') {
    io().out(resourceTable(info.id, shown, { wide: output === 'wide', namespaceColumn: info.namespaced && all }));
    return;
  }
  const doc: unknown =
    names.length === 1
      ? shown[0]
      : info.apiVersion === CALICO_API
        ? { apiVersion: CALICO_API, kind: `${info.kind}List`, metadata: {}, items: shown }
        : { apiVersion: 'v1', kind: 'List', metadata: {}, items: shown };
  io().out(output === 'json' ? `${JSON.stringify(doc, null, 2)}\n` : yamlStringify(doc, { lineWidth: 0 }));
}
