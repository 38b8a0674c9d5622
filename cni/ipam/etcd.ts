// IPAM storage in etcd, Calico's own layout (CONTRACT §3, libcalico-go backend/model):
//   /calico/ipam/v2/assignment/ipv<4|6>/block/<cidr with / as ->   AllocationBlock JSON
//   /calico/ipam/v2/host/<node>/ipv<4|6>/block/<cidr->               {"state":…,"deleted":false}
//   /calico/ipam/v2/handle/<id>                                      {"block":{cidr:n},"deleted":false}
//   /calico/ipam/v2/config                                           IPAMConfig
// Compare-and-swap on the key's mod revision.
import { EtcdJson, type KeyValue } from '../etcd.js';
import {
  type AllocationBlock,
  type BlockAffinity,
  DEFAULT_IPAM_CONFIG,
  type IpamConfig,
  type IpamHandle,
  type PoolInfo,
  blockVersion,
  cidrFromKey,
  cidrKey,
  poolFromResource,
} from './model.js';
import { CasConflict, type IpamStore, type Prefetched, type Rev } from './store.js';

export const IPAM_PREFIX = '/calico/ipam/v2/';
export const RESOURCE_PREFIX = '/calico/resources/v3/projectcalico.org/';

const blockKey = (cidr: string) => `${IPAM_PREFIX}assignment/ipv${blockVersion(cidr)}/block/${cidrKey(cidr)}`;
const affKey = (host: string, cidr: string) => `${IPAM_PREFIX}host/${host}/ipv${blockVersion(cidr)}/block/${cidrKey(cidr)}`;
const handleKey = (id: string) => `${IPAM_PREFIX}handle/${id}`;

/** AllocationBlock as Calico writes it to etcd. */
export function blockToEtcd(b: AllocationBlock): unknown {
  return {
    cidr: b.cidr,
    affinity: b.affinity,
    ...(b.affinityClaimTime ? { affinity_claim_time: b.affinityClaimTime } : {}),
    strictAffinity: b.strictAffinity,
    allocations: b.allocations,
    unallocated: b.unallocated,
    attributes: b.attributes.map((a) => ({ handle_id: a.handle_id ?? null, secondary: a.secondary ?? null })),
    deleted: b.deleted,
    sequenceNumber: b.sequenceNumber,
    sequenceNumberForAllocation: b.sequenceNumberForAllocation,
  };
}

export function blockFromJson(j: any): AllocationBlock {
  return {
    cidr: j.cidr,
    affinity: j.affinity ?? j.hostAffinity ?? null,
    ...(j.affinity_claim_time || j.affinityClaimTime ? { affinityClaimTime: j.affinity_claim_time ?? j.affinityClaimTime } : {}),
    strictAffinity: !!j.strictAffinity,
    allocations: j.allocations ?? [],
    unallocated: j.unallocated ?? [],
    attributes: (j.attributes ?? []).map((a: any) => ({ handle_id: a.handle_id ?? null, secondary: a.secondary ?? null })),
    sequenceNumber: Number(j.sequenceNumber ?? 0),
    sequenceNumberForAllocation: j.sequenceNumberForAllocation ?? {},
    deleted: !!j.deleted,
  };
}

function handleFromJson(id: string, j: any): IpamHandle {
  return { handleId: id, block: j.block ?? {}, deleted: !!j.deleted };
}

function configFromJson(text: string | undefined): IpamConfig {
  if (!text) return { ...DEFAULT_IPAM_CONFIG };
  try {
    const j = JSON.parse(text);
    return {
      strictAffinity: !!(j.strict_affinity ?? j.strictAffinity),
      autoAllocateBlocks: (j.auto_allocate_blocks ?? j.autoAllocateBlocks) !== false,
      maxBlocksPerHost: Number(j.maxBlocksPerHost ?? 0),
    };
  } catch {
    return { ...DEFAULT_IPAM_CONFIG };
  }
}

function poolsFromKvs(kvs: KeyValue[]): PoolInfo[] {
  const out: PoolInfo[] = [];
  for (const kv of kvs) {
    try {
      const p = poolFromResource(JSON.parse(kv.value));
      if (p) out.push(p);
    } catch {
      /* a malformed pool is skipped; the agent reports it */
    }
  }
  return out;
}

export class EtcdIpamStore implements IpamStore {
  readonly kind = 'etcdv3' as const;
  constructor(readonly etcd: EtcdJson) {}

  private async getJson<T>(key: string, conv: (j: any, key: string) => T): Promise<Rev<T> | undefined> {
    const kv = await this.etcd.get(key);
    return kv ? { value: conv(JSON.parse(kv.value), key), rev: kv.modRevision } : undefined;
  }
  private async create<T>(key: string, json: unknown, value: T): Promise<Rev<T>> {
    const rev = await this.etcd.create(key, JSON.stringify(json));
    if (rev === undefined) throw new CasConflict(`${key} already exists`);
    return { value, rev };
  }
  private async update<T>(key: string, json: unknown, value: T, rev: string): Promise<Rev<T>> {
    const nrev = await this.etcd.update(key, JSON.stringify(json), rev);
    if (nrev === undefined) throw new CasConflict(`${key} changed (revision ${rev})`);
    return { value, rev: nrev };
  }
  private async del(key: string, rev: string): Promise<void> {
    if (await this.etcd.delete(key, rev)) return;
    if (await this.etcd.get(key)) throw new CasConflict(`${key} changed (revision ${rev})`);
  }

  getBlock(cidr: string) {
    return this.getJson(blockKey(cidr), blockFromJson);
  }
  async listBlocks() {
    const kvs = await this.etcd.list(`${IPAM_PREFIX}assignment/`);
    return kvs.map((kv) => ({ value: blockFromJson(JSON.parse(kv.value)), rev: kv.modRevision }));
  }
  createBlock(b: AllocationBlock) {
    return this.create(blockKey(b.cidr), blockToEtcd(b), b);
  }
  updateBlock(b: AllocationBlock, rev: string) {
    return this.update(blockKey(b.cidr), blockToEtcd(b), b, rev);
  }
  deleteBlock(cidr: string, rev: string) {
    return this.del(blockKey(cidr), rev);
  }

  private static aff(j: any, key: string): BlockAffinity {
    const m = key.slice(IPAM_PREFIX.length).match(/^host\/(.+)\/ipv[46]\/block\/(.+)$/)!;
    return { host: m[1], cidr: cidrFromKey(m[2]), state: j.state || 'confirmed', deleted: !!j.deleted };
  }
  getAffinity(host: string, cidr: string) {
    return this.getJson(affKey(host, cidr), EtcdIpamStore.aff);
  }
  async listAffinities(host?: string) {
    const kvs = await this.etcd.list(host ? `${IPAM_PREFIX}host/${host}/` : `${IPAM_PREFIX}host/`);
    return kvs
      .filter((kv) => /\/ipv[46]\/block\//.test(kv.key))
      .map((kv) => ({ value: EtcdIpamStore.aff(JSON.parse(kv.value), kv.key), rev: kv.modRevision }));
  }
  createAffinity(a: BlockAffinity) {
    return this.create(affKey(a.host, a.cidr), { state: a.state, deleted: a.deleted }, a);
  }
  updateAffinity(a: BlockAffinity, rev: string) {
    return this.update(affKey(a.host, a.cidr), { state: a.state, deleted: a.deleted }, a, rev);
  }
  deleteAffinity(host: string, cidr: string, rev: string) {
    return this.del(affKey(host, cidr), rev);
  }

  getHandle(id: string) {
    return this.getJson(handleKey(id), (j) => handleFromJson(id, j));
  }
  async listHandles() {
    const kvs = await this.etcd.list(`${IPAM_PREFIX}handle/`);
    return kvs.map((kv) => {
      const j = JSON.parse(kv.value);
      return { value: { handleId: kv.key.slice(`${IPAM_PREFIX}handle/`.length), block: j.block ?? {}, deleted: !!j.deleted }, rev: kv.modRevision };
    });
  }
  createHandle(h: IpamHandle) {
    return this.create(handleKey(h.handleId), { block: h.block, deleted: h.deleted }, h);
  }
  updateHandle(h: IpamHandle, rev: string) {
    return this.update(handleKey(h.handleId), { block: h.block, deleted: h.deleted }, h, rev);
  }
  deleteHandle(id: string, rev: string) {
    return this.del(handleKey(id), rev);
  }

  async ipamConfig(): Promise<IpamConfig> {
    return configFromJson((await this.etcd.get(`${IPAM_PREFIX}config`))?.value);
  }
  async pools(): Promise<PoolInfo[]> {
    return poolsFromKvs(await this.etcd.list(`${RESOURCE_PREFIX}ippools/`));
  }
  async nodeLabels(name: string): Promise<Record<string, string>> {
    const kv = await this.etcd.get(`${RESOURCE_PREFIX}nodes/${name}`);
    if (!kv) return {};
    try {
      return JSON.parse(kv.value).metadata?.labels ?? {};
    } catch {
      return {};
    }
  }
  async prefetch(host: string, handleId: string): Promise<Prefetched> {
    const [h, cfg, pools, affs] = await this.etcd.getMany([
      { key: handleKey(handleId) },
      { key: `${IPAM_PREFIX}config` },
      { key: `${RESOURCE_PREFIX}ippools/`, prefix: true },
      { key: `${IPAM_PREFIX}host/${host}/`, prefix: true },
    ]);
    const handle = h[0] ? { value: handleFromJson(handleId, JSON.parse(h[0].value)), rev: h[0].modRevision } : undefined;
    return {
      handle,
      config: configFromJson(cfg[0]?.value),
      pools: poolsFromKvs(pools),
      affinities: affs.filter((kv) => /\/ipv[46]\/block\//.test(kv.key)).map((kv) => ({ value: EtcdIpamStore.aff(JSON.parse(kv.value), kv.key), rev: kv.modRevision })),
    };
  }

  async commitAllocation(block: AllocationBlock, blockRev: string, handle: IpamHandle, handleRev: string | undefined) {
    const rev = await this.etcd.putIf([
      { key: handleKey(handle.handleId), value: JSON.stringify({ block: handle.block, deleted: handle.deleted }), rev: handleRev ?? '0' },
      { key: blockKey(block.cidr), value: JSON.stringify(blockToEtcd(block)), rev: blockRev },
    ]);
    if (rev === undefined) throw new CasConflict(`block ${block.cidr} or handle ${handle.handleId} changed`);
    return { block: { value: block, rev }, handle: { value: handle, rev } };
  }

  async commitRelease(cidr: string, block: AllocationBlock | null, blockRev: string, handleId: string, handleRev: string): Promise<void> {
    const rev = await this.etcd.txnIf(
      [{ key: blockKey(cidr), rev: blockRev }, { key: handleKey(handleId), rev: handleRev }],
      block ? [{ key: blockKey(cidr), value: JSON.stringify(blockToEtcd(block)) }] : [],
      block ? [handleKey(handleId)] : [blockKey(cidr), handleKey(handleId)],
    );
    if (rev === undefined) throw new CasConflict(`block ${cidr} or handle ${handleId} changed`);
  }

  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return fn();
  }
  async close(): Promise<void> {
    this.etcd.close();
  }
}
