// IPAM on the file datastore: IPAMBlock, BlockAffinity and IPAMHandle manifests (one JSON file
// each, the layout `petrel ctl` writes: <dir>/<plural>/<name>.json) read and written under the
// directory lock (datastore/file withDirectoryLock), compare-and-swap on metadata.resourceVersion.
import { promises as fsp } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { withDirectoryLock } from '../../datastore/file/lock.js';
import { type AllocationBlock, type BlockAffinity, DEFAULT_IPAM_CONFIG, type IpamConfig, type IpamHandle, type PoolInfo, poolFromResource } from './model.js';
import { affinityFromSpec, affinityName, affinitySpec, blockFromSpec, blockName, blockSpec, handleFromSpec, handleName, handleSpec } from './crd.js';
import { CasConflict, type IpamStore, type Rev } from './store.js';

const PLURAL = { IPAMBlock: 'ipamblocks', BlockAffinity: 'blockaffinities', IPAMHandle: 'ipamhandles' } as const;
type Kind = keyof typeof PLURAL;
/** directories the IPAM and the plugin own; skipped when scanning for pools, nodes and pods */
export const OWN_DIRS = new Set(['ipamblocks', 'blockaffinities', 'ipamhandles', 'workloadendpoints']);

export async function writeAtomic(path: string, text: string): Promise<void> {
  await fsp.mkdir(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(4).toString('hex')}.tmp`);
  await fsp.writeFile(tmp, text);
  await fsp.rename(tmp, path);
}

async function readJson(path: string): Promise<any | undefined> {
  try {
    return JSON.parse(await fsp.readFile(path, 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

export interface ScannedResources {
  pools: any[];
  nodes: any[];
  pods: any[];
  namespaces: any[];
  ipamConfig?: any;
}

/** Reads the user's manifests (not the IPAM's own files) for pools, nodes, pods and namespaces. */
export async function scanManifests(dir: string): Promise<ScannedResources> {
  const out: ScannedResources = { pools: [], nodes: [], pods: [], namespaces: [] };
  const files: string[] = [];
  const walk = async (d: string, depth: number) => {
    let ents;
    try {
      ents = await fsp.readdir(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of ents) {
      if (e.name.startsWith('.')) continue;
      const p = join(d, e.name);
      if (e.isDirectory()) {
        if (!(depth === 0 && OWN_DIRS.has(e.name))) await walk(p, depth + 1);
      } else if (/\.(ya?ml|json)$/.test(e.name)) files.push(p);
    }
  };
  await walk(dir, 0);
  let yaml: typeof import('yaml') | undefined;
  for (const f of files) {
    let text: string;
    try {
      text = await fsp.readFile(f, 'utf8');
    } catch {
      continue;
    }
    if (!/kind:\s*"?(IPPool|Node|Pod|Namespace|IPAMConfig)|"kind"\s*:\s*"(IPPool|Node|Pod|Namespace|IPAMConfig)"/.test(text)) continue;
    let docs: any[] = [];
    try {
      if (f.endsWith('.json')) {
        const j = JSON.parse(text);
        docs = j?.kind === 'List' && Array.isArray(j.items) ? j.items : [j];
      } else {
        yaml ??= await import('yaml');
        docs = yaml.parseAllDocuments(text).map((d) => d.toJSON());
      }
    } catch {
      continue; // a broken manifest: the agent reports it
    }
    for (const d of docs) {
      if (!d || typeof d !== 'object') continue;
      if (d.kind === 'IPPool') out.pools.push(d);
      else if (d.kind === 'Node') out.nodes.push(d);
      else if (d.kind === 'Pod') out.pods.push(d);
      else if (d.kind === 'Namespace') out.namespaces.push(d);
      else if (d.kind === 'IPAMConfig' || d.kind === 'IPAMConfiguration') out.ipamConfig = d;
    }
  }
  return out;
}

export class FileIpamStore implements IpamStore {
  readonly kind = 'file' as const;
  private scanned?: Promise<ScannedResources>;

  constructor(readonly dir: string) {}

  scan(): Promise<ScannedResources> {
    return (this.scanned ??= scanManifests(this.dir));
  }

  private path(kind: Kind, name: string): string {
    return join(this.dir, PLURAL[kind], `${name.replace(/[\/\\\0]/g, '_')}.json`);
  }
  private lock<T>(fn: () => Promise<T>): Promise<T> {
    return withDirectoryLock(this.dir, fn, { timeoutMs: 60_000 });
  }

  private async get<T>(kind: Kind, name: string, conv: (spec: any) => T): Promise<Rev<T> | undefined> {
    const j = await readJson(this.path(kind, name));
    return j ? { value: conv(j.spec), rev: String(j.metadata?.resourceVersion ?? '0') } : undefined;
  }
  private async list<T>(kind: Kind, conv: (spec: any) => T): Promise<Rev<T>[]> {
    let names: string[];
    try {
      names = (await fsp.readdir(join(this.dir, PLURAL[kind]))).filter((n) => n.endsWith('.json') && !n.startsWith('.'));
    } catch {
      return [];
    }
    const out: Rev<T>[] = [];
    for (const n of names) {
      const j = await readJson(join(this.dir, PLURAL[kind], n)).catch(() => undefined);
      if (j?.spec) out.push({ value: conv(j.spec), rev: String(j.metadata?.resourceVersion ?? '0') });
    }
    return out;
  }
  private write<T>(kind: Kind, name: string, spec: Record<string, unknown>, value: T, rev: string | undefined): Promise<Rev<T>> {
    return this.lock(async () => {
      const path = this.path(kind, name);
      const cur = await readJson(path);
      if (rev === undefined && cur) throw new CasConflict(`${kind} ${name} already exists`);
      if (rev !== undefined && String(cur?.metadata?.resourceVersion ?? '') !== rev) throw new CasConflict(`${kind} ${name} changed`);
      const nrev = String(Number(rev ?? 0) + 1);
      const doc = { apiVersion: 'projectcalico.org/v3', kind, metadata: { name, resourceVersion: nrev }, spec };
      await writeAtomic(path, JSON.stringify(doc, null, 1) + '\n');
      return { value, rev: nrev };
    });
  }
  private remove(kind: Kind, name: string, rev: string): Promise<void> {
    return this.lock(async () => {
      const path = this.path(kind, name);
      const cur = await readJson(path);
      if (!cur) return;
      if (String(cur.metadata?.resourceVersion ?? '') !== rev) throw new CasConflict(`${kind} ${name} changed`);
      await fsp.unlink(path).catch(() => undefined);
    });
  }

  getBlock(cidr: string) {
    return this.get('IPAMBlock', blockName(cidr), blockFromSpec);
  }
  listBlocks() {
    return this.list('IPAMBlock', blockFromSpec);
  }
  createBlock(b: AllocationBlock) {
    return this.write('IPAMBlock', blockName(b.cidr), blockSpec(b), b, undefined);
  }
  updateBlock(b: AllocationBlock, rev: string) {
    return this.write('IPAMBlock', blockName(b.cidr), blockSpec(b), b, rev);
  }
  deleteBlock(cidr: string, rev: string) {
    return this.remove('IPAMBlock', blockName(cidr), rev);
  }
  getAffinity(host: string, cidr: string) {
    return this.get('BlockAffinity', affinityName(host, cidr), affinityFromSpec);
  }
  async listAffinities(host?: string) {
    const all = await this.list('BlockAffinity', affinityFromSpec);
    return host ? all.filter((a) => a.value.host === host) : all;
  }
  createAffinity(a: BlockAffinity) {
    return this.write('BlockAffinity', affinityName(a.host, a.cidr), affinitySpec(a, false), a, undefined);
  }
  updateAffinity(a: BlockAffinity, rev: string) {
    return this.write('BlockAffinity', affinityName(a.host, a.cidr), affinitySpec(a, false), a, rev);
  }
  deleteAffinity(host: string, cidr: string, rev: string) {
    return this.remove('BlockAffinity', affinityName(host, cidr), rev);
  }
  getHandle(id: string) {
    return this.get('IPAMHandle', handleName(id), handleFromSpec);
  }
  listHandles() {
    return this.list('IPAMHandle', handleFromSpec);
  }
  createHandle(h: IpamHandle) {
    return this.write('IPAMHandle', handleName(h.handleId), handleSpec(h), h, undefined);
  }
  updateHandle(h: IpamHandle, rev: string) {
    return this.write('IPAMHandle', handleName(h.handleId), handleSpec(h), h, rev);
  }
  deleteHandle(id: string, rev: string) {
    return this.remove('IPAMHandle', handleName(id), rev);
  }

  async ipamConfig(): Promise<IpamConfig> {
    const c = (await this.scan()).ipamConfig?.spec;
    if (!c) return { ...DEFAULT_IPAM_CONFIG };
    return { strictAffinity: !!c.strictAffinity, autoAllocateBlocks: c.autoAllocateBlocks !== false, maxBlocksPerHost: Number(c.maxBlocksPerHost ?? 0) };
  }
  async pools(): Promise<PoolInfo[]> {
    return (await this.scan()).pools.map(poolFromResource).filter((p): p is PoolInfo => !!p);
  }
  async nodeLabels(name: string): Promise<Record<string, string>> {
    const nodes = (await this.scan()).nodes.filter((n) => n.metadata?.name === name);
    return Object.assign({}, ...nodes.map((n) => n.metadata?.labels ?? {}));
  }
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return this.lock(fn);
  }
  async close(): Promise<void> {}
}
