// Reads the whole IPAM state and reports what `ctl ipam show` and `ctl ipam check` print:
// utilisation per pool and block, and problems (leaked addresses, handles without addresses,
// blocks naming handles that do not exist, addresses outside every pool, inconsistent blocks).
import { cidrSize, parseCidr } from '../../datastore/net.js';
import { contains } from './ipam.js';
import { type AllocationBlock, type BlockAffinity, type IpamHandle, type PoolInfo, allocationsOf, blockProblems, blockSizeOf, inUse } from './model.js';
import type { IpamStore } from './store.js';

export interface IpamSnapshot {
  pools: PoolInfo[];
  blocks: AllocationBlock[];
  affinities: BlockAffinity[];
  handles: IpamHandle[];
}

export async function snapshot(store: IpamStore): Promise<IpamSnapshot> {
  const [pools, blocks, affinities, handles] = await Promise.all([store.pools(), store.listBlocks(), store.listAffinities(), store.listHandles()]);
  return { pools, blocks: blocks.map((b) => b.value), affinities: affinities.map((a) => a.value), handles: handles.map((h) => h.value) };
}

export interface UsageRow {
  grouping: 'IP Pool' | 'Block';
  cidr: string;
  total: bigint;
  inUse: number;
  free: bigint;
  node?: string;
}

export function usage(s: IpamSnapshot, showBlocks: boolean): UsageRow[] {
  const rows: UsageRow[] = [];
  for (const p of s.pools) {
    const blocks = s.blocks.filter((b) => contains(p.cidr, b.cidr));
    const used = blocks.reduce((n, b) => n + inUse(b), 0);
    const total = cidrSize(parseCidr(p.cidr)!);
    rows.push({ grouping: 'IP Pool', cidr: p.cidr, total, inUse: used, free: total - BigInt(used) });
    if (showBlocks) {
      for (const b of blocks) {
        const t = BigInt(blockSizeOf(b.cidr));
        rows.push({ grouping: 'Block', cidr: b.cidr, total: t, inUse: inUse(b), free: t - BigInt(inUse(b)), node: b.affinity?.replace(/^host:/, '') });
      }
    }
  }
  return rows;
}

export interface Allocation {
  ip: string;
  block: string;
  handle?: string;
  attrs: Record<string, string>;
}

export function allocations(s: IpamSnapshot): Allocation[] {
  return s.blocks.flatMap((b) => allocationsOf(b).map((a) => ({ ...a, block: b.cidr })));
}

export interface CheckReport {
  problems: string[];
  /** addresses whose pod/endpoint no longer exists: what `ipam release --from-report` frees */
  leaked: Allocation[];
  allocations: number;
  handles: number;
}

/**
 * `live` says whether the holder of an allocation still exists (pod or workload endpoint);
 * undefined when it cannot be judged (then only structural problems are reported).
 */
export function check(s: IpamSnapshot, live?: (a: Allocation) => boolean): CheckReport {
  const problems: string[] = [];
  const allocs = allocations(s);
  const handleIds = new Set(s.handles.map((h) => h.handleId));
  const perHandle = new Map<string, Map<string, number>>();
  const seen = new Map<string, string>();
  for (const b of s.blocks) problems.push(...blockProblems(b));
  for (const a of allocs) {
    if (seen.has(a.ip)) problems.push(`${a.ip} allocated twice (blocks ${seen.get(a.ip)} and ${a.block})`);
    seen.set(a.ip, a.block);
    if (!s.pools.some((p) => contains(p.cidr, a.ip))) problems.push(`${a.ip} is allocated but outside every IP pool`);
    if (a.handle) {
      if (!handleIds.has(a.handle)) problems.push(`${a.ip} names handle ${a.handle}, which does not exist`);
      const m = perHandle.get(a.handle) ?? new Map<string, number>();
      m.set(a.block, (m.get(a.block) ?? 0) + 1);
      perHandle.set(a.handle, m);
    }
  }
  for (const h of s.handles) {
    const m = perHandle.get(h.handleId);
    if (!m) {
      problems.push(`handle ${h.handleId} holds no addresses`);
      continue;
    }
    for (const [cidr, n] of Object.entries(h.block)) {
      if ((m.get(cidr) ?? 0) !== n) problems.push(`handle ${h.handleId} counts ${n} address(es) in ${cidr}, the block holds ${m.get(cidr) ?? 0}`);
    }
    for (const [cidr, n] of m) if (!(cidr in h.block)) problems.push(`handle ${h.handleId} does not list block ${cidr}, which holds ${n} of its addresses`);
  }
  const affine = new Map(s.affinities.map((a) => [a.cidr, a]));
  for (const b of s.blocks) {
    const host = b.affinity?.startsWith('host:') ? b.affinity.slice(5) : undefined;
    if (host && affine.get(b.cidr)?.host !== host) problems.push(`block ${b.cidr} is affine to ${host} but has no affinity for it`);
  }
  const leaked: Allocation[] = [];
  if (live) {
    for (const a of allocs) {
      if (!live(a)) {
        leaked.push(a);
        problems.push(`${a.ip} leaked; attrs ${JSON.stringify({ handle: a.handle, ...a.attrs })}`);
      }
    }
  }
  return { problems, leaked, allocations: allocs.length, handles: s.handles.length };
}
