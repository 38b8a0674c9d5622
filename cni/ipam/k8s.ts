// IPAM on the Kubernetes datastore: Calico's cluster-scoped CRDs in crd.projectcalico.org/v1
// (ipamblocks named by CIDRToName, blockaffinities `<node>-<cidrname>`, ipamhandles by the
// lower-cased handle ID), compare-and-swap on metadata.resourceVersion.
import type { K8sClient } from '../k8s.js';
import { affinityFromSpec, affinityName, affinitySpec, blockFromSpec, blockName, blockSpec, handleFromSpec, handleName, handleSpec } from './crd.js';
import { type AllocationBlock, type BlockAffinity, DEFAULT_IPAM_CONFIG, type IpamConfig, type IpamHandle, type PoolInfo, poolFromResource } from './model.js';
import { CasConflict, type IpamStore, type Rev } from './store.js';

const API = '/apis/crd.projectcalico.org/v1';
const KIND = { ipamblocks: 'IPAMBlock', blockaffinities: 'BlockAffinity', ipamhandles: 'IPAMHandle' } as const;
type Plural = keyof typeof KIND;

export class K8sIpamStore implements IpamStore {
  readonly kind = 'kubernetes' as const;
  constructor(readonly client: K8sClient) {}

  private fail(op: string, r: { status: number; body: any }): never {
    throw new Error(`Kubernetes API ${op}: HTTP ${r.status}: ${r.body?.message ?? ''}`);
  }

  private async get<T>(plural: Plural, name: string, conv: (s: any) => T): Promise<Rev<T> | undefined> {
    const r = await this.client.request('GET', `${API}/${plural}/${encodeURIComponent(name)}`);
    if (r.status === 404) return undefined;
    if (r.status !== 200) this.fail(`get ${plural}/${name}`, r);
    return { value: conv(r.body.spec), rev: r.body.metadata.resourceVersion };
  }
  private async list<T>(plural: Plural, conv: (s: any) => T): Promise<Rev<T>[]> {
    const r = await this.client.request('GET', `${API}/${plural}`);
    if (r.status !== 200) this.fail(`list ${plural}`, r);
    return (r.body.items ?? []).map((o: any) => ({ value: conv(o.spec), rev: o.metadata.resourceVersion }));
  }
  private async create<T>(plural: Plural, name: string, spec: unknown, value: T): Promise<Rev<T>> {
    const r = await this.client.request('POST', `${API}/${plural}`, { apiVersion: 'crd.projectcalico.org/v1', kind: KIND[plural], metadata: { name }, spec });
    if (r.status === 409) throw new CasConflict(`${plural}/${name} already exists`);
    if (r.status !== 201 && r.status !== 200) this.fail(`create ${plural}/${name}`, r);
    return { value, rev: r.body.metadata.resourceVersion };
  }
  private async update<T>(plural: Plural, name: string, spec: unknown, value: T, rev: string): Promise<Rev<T>> {
    const r = await this.client.request('PUT', `${API}/${plural}/${encodeURIComponent(name)}`, {
      apiVersion: 'crd.projectcalico.org/v1',
      kind: KIND[plural],
      metadata: { name, resourceVersion: rev },
      spec,
    });
    if (r.status === 409 || r.status === 404) throw new CasConflict(`${plural}/${name} changed`);
    if (r.status !== 200) this.fail(`update ${plural}/${name}`, r);
    return { value, rev: r.body.metadata.resourceVersion };
  }
  private async del(plural: Plural, name: string, rev: string): Promise<void> {
    const r = await this.client.request('DELETE', `${API}/${plural}/${encodeURIComponent(name)}`, {
      apiVersion: 'v1',
      kind: 'DeleteOptions',
      preconditions: { resourceVersion: rev },
    });
    if (r.status === 404) return;
    if (r.status === 409) throw new CasConflict(`${plural}/${name} changed`);
    if (r.status !== 200 && r.status !== 202) this.fail(`delete ${plural}/${name}`, r);
  }

  getBlock(cidr: string) {
    return this.get('ipamblocks', blockName(cidr), blockFromSpec);
  }
  listBlocks() {
    return this.list('ipamblocks', blockFromSpec);
  }
  createBlock(b: AllocationBlock) {
    return this.create('ipamblocks', blockName(b.cidr), blockSpec(b), b);
  }
  updateBlock(b: AllocationBlock, rev: string) {
    return this.update('ipamblocks', blockName(b.cidr), blockSpec(b), b, rev);
  }
  deleteBlock(cidr: string, rev: string) {
    return this.del('ipamblocks', blockName(cidr), rev);
  }
  getAffinity(host: string, cidr: string) {
    return this.get('blockaffinities', affinityName(host, cidr), affinityFromSpec);
  }
  async listAffinities(host?: string) {
    const all = await this.list('blockaffinities', affinityFromSpec);
    return host ? all.filter((a) => a.value.host === host) : all;
  }
  createAffinity(a: BlockAffinity) {
    return this.create('blockaffinities', affinityName(a.host, a.cidr), affinitySpec(a, true), a);
  }
  updateAffinity(a: BlockAffinity, rev: string) {
    return this.update('blockaffinities', affinityName(a.host, a.cidr), affinitySpec(a, true), a, rev);
  }
  deleteAffinity(host: string, cidr: string, rev: string) {
    return this.del('blockaffinities', affinityName(host, cidr), rev);
  }
  getHandle(id: string) {
    return this.get('ipamhandles', handleName(id), handleFromSpec);
  }
  listHandles() {
    return this.list('ipamhandles', handleFromSpec);
  }
  createHandle(h: IpamHandle) {
    return this.create('ipamhandles', handleName(h.handleId), handleSpec(h), h);
  }
  updateHandle(h: IpamHandle, rev: string) {
    return this.update('ipamhandles', handleName(h.handleId), handleSpec(h), h, rev);
  }
  deleteHandle(id: string, rev: string) {
    return this.del('ipamhandles', handleName(id), rev);
  }
  async ipamConfig(): Promise<IpamConfig> {
    const r = await this.client.request('GET', `${API}/ipamconfigs/default`);
    if (r.status !== 200) return { ...DEFAULT_IPAM_CONFIG };
    const s = r.body.spec ?? {};
    return { strictAffinity: !!s.strictAffinity, autoAllocateBlocks: s.autoAllocateBlocks !== false, maxBlocksPerHost: Number(s.maxBlocksPerHost ?? 0) };
  }
  async pools(): Promise<PoolInfo[]> {
    const r = await this.client.request('GET', `${API}/ippools`);
    if (r.status !== 200) this.fail('list ippools', r);
    return (r.body.items ?? []).map(poolFromResource).filter((p: PoolInfo | undefined): p is PoolInfo => !!p);
  }
  async nodeLabels(name: string): Promise<Record<string, string>> {
    const r = await this.client.request('GET', `/api/v1/nodes/${encodeURIComponent(name)}`);
    return r.status === 200 ? r.body.metadata?.labels ?? {} : {};
  }
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return fn();
  }
  async close(): Promise<void> {
    this.client.close();
  }
}
