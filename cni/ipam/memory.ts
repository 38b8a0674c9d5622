// An in-memory IpamStore with real compare-and-swap semantics: unit tests and simulations.
import type { AllocationBlock, BlockAffinity, IpamConfig, IpamHandle, PoolInfo } from './model.js';
import { DEFAULT_IPAM_CONFIG } from './model.js';
import { CasConflict, type IpamStore, type Rev } from './store.js';

export class MemoryIpamStore implements IpamStore {
  readonly kind = 'file' as const;
  private rev = 0;
  private readonly data = new Map<string, { value: any; rev: string }>();
  config: IpamConfig = { ...DEFAULT_IPAM_CONFIG };
  poolList: PoolInfo[] = [];
  labels: Record<string, Record<string, string>> = {};
  /** fail the next N writes with a conflict (tests of the retry paths) */
  injectConflicts = 0;

  private clone<T>(v: T): T {
    return JSON.parse(JSON.stringify(v));
  }
  private async tick(): Promise<void> {
    await new Promise((r) => setImmediate(r));
  }
  private async get<T>(k: string): Promise<Rev<T> | undefined> {
    await this.tick();
    const e = this.data.get(k);
    return e ? { value: this.clone(e.value), rev: e.rev } : undefined;
  }
  private async list<T>(prefix: string): Promise<Rev<T>[]> {
    await this.tick();
    return [...this.data.entries()].filter(([k]) => k.startsWith(prefix)).map(([, e]) => ({ value: this.clone(e.value), rev: e.rev }));
  }
  private async put<T>(k: string, v: T, rev: string | undefined): Promise<Rev<T>> {
    await this.tick();
    if (this.injectConflicts > 0) {
      this.injectConflicts--;
      throw new CasConflict(`injected conflict on ${k}`);
    }
    const cur = this.data.get(k);
    if (rev === undefined ? cur !== undefined : cur?.rev !== rev) throw new CasConflict(`${k} changed`);
    const e = { value: this.clone(v), rev: String(++this.rev) };
    this.data.set(k, e);
    return { value: this.clone(v), rev: e.rev };
  }
  private async del(k: string, rev: string): Promise<void> {
    await this.tick();
    const cur = this.data.get(k);
    if (!cur) return;
    if (cur.rev !== rev) throw new CasConflict(`${k} changed`);
    this.data.delete(k);
  }

  getBlock = (cidr: string) => this.get<AllocationBlock>(`b/${cidr}`);
  listBlocks = () => this.list<AllocationBlock>('b/');
  createBlock = (b: AllocationBlock) => this.put(`b/${b.cidr}`, b, undefined);
  updateBlock = (b: AllocationBlock, rev: string) => this.put(`b/${b.cidr}`, b, rev);
  deleteBlock = (cidr: string, rev: string) => this.del(`b/${cidr}`, rev);
  getAffinity = (host: string, cidr: string) => this.get<BlockAffinity>(`a/${host}/${cidr}`);
  listAffinities = (host?: string) => this.list<BlockAffinity>(host ? `a/${host}/` : 'a/');
  createAffinity = (a: BlockAffinity) => this.put(`a/${a.host}/${a.cidr}`, a, undefined);
  updateAffinity = (a: BlockAffinity, rev: string) => this.put(`a/${a.host}/${a.cidr}`, a, rev);
  deleteAffinity = (host: string, cidr: string, rev: string) => this.del(`a/${host}/${cidr}`, rev);
  getHandle = (id: string) => this.get<IpamHandle>(`h/${id}`);
  listHandles = () => this.list<IpamHandle>('h/');
  createHandle = (h: IpamHandle) => this.put(`h/${h.handleId}`, h, undefined);
  updateHandle = (h: IpamHandle, rev: string) => this.put(`h/${h.handleId}`, h, rev);
  deleteHandle = (id: string, rev: string) => this.del(`h/${id}`, rev);
  ipamConfig = async () => ({ ...this.config });
  pools = async () => this.clone(this.poolList);
  nodeLabels = async (name: string) => ({ ...(this.labels[name] ?? {}) });
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return fn();
  }
  async close(): Promise<void> {}
}
