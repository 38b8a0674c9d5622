// The storage seam of the IPAM: every backend (etcd v3 JSON gateway, Kubernetes CRDs, file
// manifests) offers the same compare-and-swap operations on blocks, affinities and handles.
import type { AllocationBlock, BlockAffinity, IpamConfig, IpamHandle, PoolInfo } from './model.js';

/** A stored value and the revision a compare-and-swap must match. */
export interface Rev<T> {
  value: T;
  rev: string;
}

/** The revision did not match, or create found the object already there. */
export class CasConflict extends Error {
  override name = 'CasConflict';
}

export interface Prefetched {
  handle: Rev<IpamHandle> | undefined;
  config: IpamConfig;
  pools: PoolInfo[];
  affinities: Rev<BlockAffinity>[];
}

export interface IpamStore {
  readonly kind: 'etcdv3' | 'kubernetes' | 'file';
  getBlock(cidr: string): Promise<Rev<AllocationBlock> | undefined>;
  listBlocks(): Promise<Rev<AllocationBlock>[]>;
  /** CasConflict when it exists. */
  createBlock(b: AllocationBlock): Promise<Rev<AllocationBlock>>;
  /** CasConflict when the stored revision differs or it is gone. */
  updateBlock(b: AllocationBlock, rev: string): Promise<Rev<AllocationBlock>>;
  /** CasConflict when the stored revision differs; fine when already gone. */
  deleteBlock(cidr: string, rev: string): Promise<void>;

  getAffinity(host: string, cidr: string): Promise<Rev<BlockAffinity> | undefined>;
  /** every affinity, or those of one host */
  listAffinities(host?: string): Promise<Rev<BlockAffinity>[]>;
  createAffinity(a: BlockAffinity): Promise<Rev<BlockAffinity>>;
  updateAffinity(a: BlockAffinity, rev: string): Promise<Rev<BlockAffinity>>;
  deleteAffinity(host: string, cidr: string, rev: string): Promise<void>;

  getHandle(id: string): Promise<Rev<IpamHandle> | undefined>;
  listHandles(): Promise<Rev<IpamHandle>[]>;
  createHandle(h: IpamHandle): Promise<Rev<IpamHandle>>;
  updateHandle(h: IpamHandle, rev: string): Promise<Rev<IpamHandle>>;
  deleteHandle(id: string, rev: string): Promise<void>;

  ipamConfig(): Promise<IpamConfig>;
  pools(): Promise<PoolInfo[]>;
  /** labels of the Calico Node (or Kubernetes Node) `name`; {} when unknown */
  nodeLabels(name: string): Promise<Record<string, string>>;

  /** Optional: what every assignment reads first, in one round trip. */
  prefetch?(host: string, handleId: string): Promise<Prefetched>;
  /**
   * Optional: writes the block and the handle in one atomic compare-and-swap (`handleRev`
   * undefined = the handle must not exist). CasConflict when either changed.
   */
  commitAllocation?(block: AllocationBlock, blockRev: string, handle: IpamHandle, handleRev: string | undefined): Promise<{ block: Rev<AllocationBlock>; handle: Rev<IpamHandle> }>;

  /**
   * Optional: writes the block (or deletes it: `block` null) and deletes the handle in one atomic
   * compare-and-swap. CasConflict when either changed.
   */
  commitRelease?(cidr: string, block: AllocationBlock | null, blockRev: string, handleId: string, handleRev: string): Promise<void>;

  /**
   * Runs `fn` holding the store's node-wide lock when it has one (the file datastore's
   * directory lock: the only thing that serialises writers there). Others just run `fn`.
   */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
  close(): Promise<void>;
}
