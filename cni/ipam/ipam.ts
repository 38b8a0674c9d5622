// Calico's block-affinity IPAM (libcalico-go/lib/ipam) over an IpamStore. Every write is a
// compare-and-swap retried on conflict, so concurrent assignments on many nodes never give one
// address to two holders, and the handle is counted up before the block is written (and down
// again when that write loses), so a crash never leaves an address nobody can release.
import { type IpVersion, parseCidr } from '../../datastore/net.js';
import {
  type AllocationBlock,
  type BlockAffinity,
  type IpamConfig,
  type IpamHandle,
  type PoolInfo,
  allocateFromBlock,
  assignIpInBlock,
  blockCount,
  blockVersion,
  fnv32,
  hostAffinity,
  ipToOrdinal,
  ipsOfHandle,
  isEmpty,
  newBlock,
  nthBlock,
  releaseHandleInBlock,
  releaseIpsInBlock,
} from './model.js';
import { CasConflict, type IpamStore, type Rev } from './store.js';

export const MAX_RETRIES = 100;

export class IpamError extends Error {
  override name = 'IpamError';
}

export interface AssignRequest {
  handleId: string;
  host: string;
  attrs: Record<string, string>;
  num4: number;
  num6: number;
  /** pool CIDRs or names to use (empty/undefined = every pool that selects the node) */
  pools4?: string[];
  pools6?: string[];
  /** fixed addresses (cni.projectcalico.org/ipAddrs) instead of auto-assignment */
  ips?: string[];
}

export interface IpamStats {
  conflicts: number;
}

type SelectorMatcher = (selector: string, labels: Record<string, string>) => Promise<boolean>;

/** `all()` and empty selectors need no parser; anything else loads acl/selector (CONTRACT §5) on demand. */
export const defaultSelectorMatcher: SelectorMatcher = async (sel, labels) => {
  const s = sel.trim();
  if (s === '' || s === 'all()') return true;
  const mod: any = await import('../../acl/selector.js');
  return mod.parseSelector(s).evaluate(labels);
};

export class Ipam {
  readonly stats: IpamStats = { conflicts: 0 };
  /** what the last assign() call newly assigned (the rest the handle already held) */
  lastAssigned: string[] = [];
  private configCache?: IpamConfig;

  /**
   * One IPAM operation at a time per instance (per node, as Calico's node-wide IPAM flock):
   * concurrent requests of one node would otherwise mostly conflict on that node's block.
   * Correctness never depends on it: every write is a compare-and-swap.
   */
  private chain: Promise<unknown> = Promise.resolve();
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  constructor(
    readonly store: IpamStore,
    private readonly matchSelector: SelectorMatcher = defaultSelectorMatcher,
  ) {}

  private async config(): Promise<IpamConfig> {
    return (this.configCache ??= await this.store.ipamConfig());
  }

  private poolsCache?: Promise<PoolInfo[]>;
  private poolsOnce(): Promise<PoolInfo[]> {
    return (this.poolsCache ??= this.store.pools());
  }
  private affCache?: { host: string; p: Promise<Rev<BlockAffinity>[]> };
  /** The host's affinities: the first read may come from the warm-up; later ones are fresh. */
  private affinitiesOnce(host: string): Promise<Rev<BlockAffinity>[]> {
    if (this.affCache?.host === host) {
      const p = this.affCache.p;
      this.affCache = undefined;
      return p;
    }
    const p = this.store.listAffinities(host);
    this.affCache = { host, p };
    return p;
  }

  /** Pools of `version` this host may use (enabled, Workload use, nodeSelector matches, requested). */
  async eligiblePools(version: IpVersion, host: string, requested?: string[]): Promise<PoolInfo[]> {
    const all = (await this.poolsOnce()).filter((p) => p.version === version);
    let pools = all;
    if (requested && requested.length) {
      pools = [];
      for (const r of requested) {
        const p = all.find((x) => x.name === r || x.cidr === r || (parseCidr(r) && x.cidr === canon(r)));
        if (!p) throw new IpamError(`requested IP pool ${r} does not exist`);
        if (p.disabled) throw new IpamError(`requested IP pool ${r} is disabled`);
        pools.push(p);
      }
      // as Calico: requested pools must still select the node
    } else pools = pools.filter((p) => !p.disabled && p.allowedUses.includes('Workload'));
    let labels: Record<string, string> | undefined;
    const out: PoolInfo[] = [];
    for (const p of pools) {
      const sel = p.nodeSelector.trim();
      if (sel !== '' && sel !== 'all()') labels ??= await this.store.nodeLabels(host);
      if (await this.matchSelector(sel, labels ?? {})) out.push(p);
    }
    return out;
  }

  /** Addresses `handleId` already holds (per block listed in the handle). */
  async ipsOfHandle(handleId: string): Promise<string[]> {
    const h = await this.store.getHandle(handleId);
    this.handleCache.set(handleId, h);
    if (!h) return [];
    return this.ipsOfHandleRev(h);
  }

  private async ipsOfHandleRev(h: Rev<IpamHandle>): Promise<string[]> {
    const handleId = h.value.handleId;
    const out: string[] = [];
    for (const cidr of Object.keys(h.value.block)) {
      const b = await this.store.getBlock(cidr);
      if (b) out.push(...ipsOfHandle(b.value, handleId));
    }
    return out;
  }

  /**
   * Assigns addresses to `handleId`. A handle that already holds addresses of a family keeps them
   * (a repeated ADD gets the same answer). If one family fails, what this call assigned is released.
   */
  async assign(req: AssignRequest): Promise<string[]> {
    return this.serial(() => this.assignNow(req));
  }

  private async assignNow(req: AssignRequest): Promise<string[]> {
    this.lastAssigned = [];
    return this.store.exclusive(async () => {
      // Warm what every assignment reads: one request when the store can (etcd: a transaction
      // of ranges), else four in parallel.
      let existing: string[];
      if (this.store.prefetch) {
        const p = await this.store.prefetch(req.host, req.handleId);
        this.configCache = p.config;
        this.poolsCache = Promise.resolve(p.pools);
        this.affCache = { host: req.host, p: Promise.resolve(p.affinities) };
        this.handleCache.set(req.handleId, p.handle);
        existing = p.handle ? await this.ipsOfHandleRev(p.handle) : [];
      } else {
        [existing] = await Promise.all([this.ipsOfHandle(req.handleId), this.config(), this.poolsOnce(), this.affinitiesOnce(req.host)]);
      }
      const have4 = existing.filter((ip) => !ip.includes(':'));
      const have6 = existing.filter((ip) => ip.includes(':'));
      const got: string[] = [];
      try {
        if (req.ips && req.ips.length) {
          for (const ip of req.ips) {
            if (existing.includes(ip)) continue;
            await this.assignIp(ip, req.handleId, req.host, req.attrs);
            got.push(ip);
            this.lastAssigned = got;
          }
          return [...existing.filter((ip) => req.ips!.includes(ip)), ...got];
        }
        if (req.num4 > have4.length) got.push(...(await this.autoAssign(4, req.num4 - have4.length, req, req.pools4)));
        if (req.num6 > have6.length) got.push(...(await this.autoAssign(6, req.num6 - have6.length, req, req.pools6)));
      } catch (e) {
        if (got.length) await this.releaseIpsUnlocked(got).catch(() => undefined);
        throw e;
      }
      this.lastAssigned = got;
      return [...have4.slice(0, Math.max(req.num4, 0)), ...have6.slice(0, Math.max(req.num6, 0)), ...got];
    });
  }

  private async autoAssign(version: IpVersion, num: number, req: AssignRequest, requested?: string[]): Promise<string[]> {
    const pools = await this.eligiblePools(version, req.host, requested);
    if (pools.length === 0) throw new IpamError(`no configured IPv${version} pools for node ${req.host}`);
    const cfg = await this.config();
    const inPools = (cidr: string) => pools.some((p) => contains(p.cidr, cidr));
    const got: string[] = [];

    // 1. Blocks already affine to this host.
    const affs = (await this.affinitiesOnce(req.host)).filter((a) => blockVersion(a.value.cidr) === version && inPools(a.value.cidr));
    for (const a of affs.sort((x, y) => cmpCidr(x.value.cidr, y.value.cidr))) {
      if (got.length >= num) break;
      if (a.value.state === 'pendingDeletion') continue;
      const b = await this.ensureAffineBlock(a, req.host);
      if (!b) continue;
      if (b.value.unallocated.length === 0) continue;
      got.push(...(await this.allocateInBlock(a.value.cidr, num - got.length, req, req.host, b)));
    }

    // 2. Claim new blocks.
    let blocksHeld = affs.length;
    while (got.length < num && cfg.autoAllocateBlocks) {
      const limit = cfg.maxBlocksPerHost > 0 ? cfg.maxBlocksPerHost : Infinity;
      if (blocksHeld >= limit) break;
      const cidr = await this.claimFreeBlock(pools, req.host);
      if (!cidr) break;
      blocksHeld++;
      got.push(...(await this.allocateInBlock(cidr, num - got.length, req, req.host)));
    }

    // 3. Borrow from other hosts' blocks.
    if (got.length < num && !cfg.strictAffinity) {
      const blocks = (await this.store.listBlocks()).filter((b) => blockVersion(b.value.cidr) === version && inPools(b.value.cidr));
      for (const b of blocks) {
        if (got.length >= num) break;
        if (b.value.unallocated.length === 0) continue;
        got.push(...(await this.allocateInBlock(b.value.cidr, num - got.length, req, undefined)));
      }
    }
    if (got.length < num) {
      const why = cfg.strictAffinity ? 'no more free affine blocks and strict affinity enabled' : 'the pools are exhausted';
      if (got.length) await this.releaseIpsUnlocked(got).catch(() => undefined);
      throw new IpamError(`could not assign ${num} IPv${version} address(es) to ${req.handleId}: ${why}`);
    }
    return got;
  }

  /** Makes sure the block behind an affinity exists and is ours; confirms a pending affinity. */
  private async ensureAffineBlock(a: Rev<BlockAffinity>, host: string): Promise<Rev<AllocationBlock> | undefined> {
    const cidr = a.value.cidr;
    let b = await this.store.getBlock(cidr);
    if (!b) {
      try {
        b = await this.store.createBlock(newBlock(cidr, host));
      } catch (e) {
        if (!(e instanceof CasConflict)) throw e;
        this.stats.conflicts++;
        b = await this.store.getBlock(cidr);
        if (!b) return undefined;
      }
    }
    if (b.value.affinity !== hostAffinity(host)) {
      // A stale affinity: the block belongs to someone else.
      await this.store.deleteAffinity(host, cidr, a.rev).catch(() => undefined);
      return undefined;
    }
    if (a.value.state !== 'confirmed') {
      await this.store.updateAffinity({ ...a.value, state: 'confirmed' }, a.rev).catch((e) => {
        if (!(e instanceof CasConflict)) throw e;
      });
    }
    return b;
  }

  /** Claims an unclaimed block of one of the pools: affinity pending → block created → confirmed. */
  private async claimFreeBlock(pools: PoolInfo[], host: string): Promise<string | undefined> {
    for (let attempt = 0; attempt < MAX_RETRIES; attempt++) {
      const existing = new Set((await this.store.listBlocks()).map((b) => b.value.cidr));
      let candidate: { cidr: string } | undefined;
      for (const p of pools) {
        const pc = parseCidr(p.cidr)!;
        const n = blockCount(pc, p.blockSize);
        const start = BigInt(fnv32(host)) % n;
        // Among existing+1 consecutive candidates at least one is free (when the pool has room).
        const tries = n < BigInt(existing.size + 1) ? n : BigInt(existing.size + 1);
        for (let i = 0n; i < tries; i++) {
          const cidr = nthBlock(pc, p.blockSize, (start + i) % n);
          if (!existing.has(cidr)) {
            candidate = { cidr };
            break;
          }
        }
        if (candidate) break;
      }
      if (!candidate) {
        // No unclaimed block left: take over another host's empty block claimed long enough ago
        // (Calico's EmptyBlockMinReclaimAge), through that host's affinity release.
        const reclaimed = await this.reclaimEmptyBlock(pools, host);
        if (reclaimed) continue;
        return undefined;
      }
      const cidr = candidate.cidr;
      let aff: Rev<BlockAffinity>;
      try {
        aff = await this.store.createAffinity({ host, cidr, state: 'pending', deleted: false });
      } catch (e) {
        if (!(e instanceof CasConflict)) throw e;
        const cur = await this.store.getAffinity(host, cidr);
        if (!cur) continue;
        aff = cur;
      }
      try {
        await this.store.createBlock(newBlock(cidr, host));
      } catch (e) {
        if (!(e instanceof CasConflict)) throw e;
        this.stats.conflicts++;
        const b = await this.store.getBlock(cidr);
        if (!b || b.value.affinity !== hostAffinity(host)) {
          await this.store.deleteAffinity(host, cidr, aff.rev).catch(() => undefined);
          continue;
        }
      }
      try {
        await this.store.updateAffinity({ ...aff.value, state: 'confirmed' }, aff.rev);
      } catch (e) {
        if (!(e instanceof CasConflict)) throw e;
        const cur = await this.store.getAffinity(host, cidr);
        if (cur && cur.value.state !== 'confirmed') await this.store.updateAffinity({ ...cur.value, state: 'confirmed' }, cur.rev);
      }
      return cidr;
    }
    throw new IpamError('max retries hit claiming a block - excessive concurrent IPAM requests');
  }

  /** Minimum age of another host's claim before its empty block may be taken over. */
  reclaimAgeMs = 60_000;

  private async reclaimEmptyBlock(pools: PoolInfo[], host: string): Promise<boolean> {
    const now = Date.now();
    for (const b of await this.store.listBlocks()) {
      const v = b.value;
      if (!v.affinity?.startsWith('host:') || v.affinity === hostAffinity(host) || !isEmpty(v)) continue;
      if (!pools.some((p) => contains(p.cidr, v.cidr))) continue;
      const claimed = v.affinityClaimTime ? Date.parse(v.affinityClaimTime) : 0;
      if (now - claimed < this.reclaimAgeMs) continue;
      if (await this.releaseAffinity(v.affinity.slice(5), v.cidr, true)) return true;
    }
    return false;
  }

  /** Allocates up to `num` addresses in one block for the request, CAS-retried. `host` restricts to our own block. */
  private async allocateInBlock(cidr: string, num: number, req: AssignRequest, host: string | undefined, prefetched?: Rev<AllocationBlock>): Promise<string[]> {
    for (let attempt = 0; attempt < MAX_RETRIES; attempt++) {
      const b = attempt === 0 && prefetched ? prefetched : await this.store.getBlock(cidr);
      if (!b || b.value.deleted) return [];
      if (host !== undefined && b.value.affinity !== hostAffinity(host)) return [];
      const { block, ips } = allocateFromBlock(b.value, num, req.handleId, req.attrs);
      if (ips.length === 0) return [];
      if (this.store.commitAllocation) {
        // block and handle in one atomic compare-and-swap
        const known = this.handleCache.has(req.handleId);
        const h = known ? this.handleCache.get(req.handleId) : await this.store.getHandle(req.handleId);
        const counts = { ...(h?.value.block ?? {}) };
        counts[cidr] = (counts[cidr] ?? 0) + ips.length;
        try {
          const r = await this.store.commitAllocation(block, b.rev, { handleId: req.handleId, block: counts, deleted: false }, h?.rev);
          this.handleCache.set(req.handleId, r.handle);
          return ips;
        } catch (e) {
          this.handleCache.delete(req.handleId);
          if (!(e instanceof CasConflict)) throw e;
          this.stats.conflicts++;
          await backoff(attempt);
          continue;
        }
      }
      await this.changeHandle(req.handleId, cidr, ips.length);
      try {
        await this.store.updateBlock(block, b.rev);
        return ips;
      } catch (e) {
        await this.changeHandle(req.handleId, cidr, -ips.length);
        if (!(e instanceof CasConflict)) throw e;
        this.stats.conflicts++;
        await backoff(attempt);
      }
    }
    throw new IpamError('max retries hit - excessive concurrent IPAM requests');
  }

  /** Assigns one given address (claiming its block for the host when nobody has it). */
  async assignIp(ip: string, handleId: string, host: string, attrs: Record<string, string>): Promise<void> {
    const v: IpVersion = ip.includes(':') ? 6 : 4;
    const pools = (await this.store.pools()).filter((p) => p.version === v && contains(p.cidr, ip));
    if (!pools.length) throw new IpamError(`address ${ip} is not in any configured pool`);
    const pool = pools[0];
    const pc = parseCidr(pool.cidr)!;
    const ipc = parseCidr(ip)!;
    const shift = BigInt((v === 4 ? 32 : 128) - pool.blockSize);
    const cidr = nthBlock(pc, pool.blockSize, (ipc.addr - (pc.addr & ~((1n << BigInt((v === 4 ? 32 : 128) - pc.prefix)) - 1n))) >> shift);
    for (let attempt = 0; attempt < MAX_RETRIES; attempt++) {
      let b = await this.store.getBlock(cidr);
      if (!b) {
        try {
          await this.store.createAffinity({ host, cidr, state: 'pending', deleted: false }).catch((e) => {
            if (!(e instanceof CasConflict)) throw e;
          });
          b = await this.store.createBlock(newBlock(cidr, host));
          const a = await this.store.getAffinity(host, cidr);
          if (a) await this.store.updateAffinity({ ...a.value, state: 'confirmed' }, a.rev).catch(() => undefined);
        } catch (e) {
          if (!(e instanceof CasConflict)) throw e;
          this.stats.conflicts++;
          continue;
        }
      }
      if (ipToOrdinal(b.value, ip) === undefined) throw new IpamError(`${ip} is not in block ${cidr}`);
      let nb: AllocationBlock;
      try {
        nb = assignIpInBlock(b.value, ip, handleId, attrs);
      } catch (e) {
        throw new IpamError((e as Error).message);
      }
      await this.changeHandle(handleId, cidr, 1);
      try {
        await this.store.updateBlock(nb, b.rev);
        return;
      } catch (e) {
        await this.changeHandle(handleId, cidr, -1);
        if (!(e instanceof CasConflict)) throw e;
        this.stats.conflicts++;
        await backoff(attempt);
      }
    }
    throw new IpamError('max retries hit - excessive concurrent IPAM requests');
  }

  /** Adds `delta` to the handle's count for `cidr` (creating / deleting the handle as needed). */
  private handleCache = new Map<string, Rev<IpamHandle> | undefined>();

  private async changeHandle(handleId: string, cidr: string, delta: number): Promise<void> {
    for (let attempt = 0; attempt < MAX_RETRIES; attempt++) {
      // First try from what this process last saw of the handle; a stale view just conflicts.
      const cached = attempt === 0 && this.handleCache.has(handleId);
      const h = cached ? this.handleCache.get(handleId) : await this.store.getHandle(handleId);
      this.handleCache.delete(handleId);
      try {
        if (!h) {
          if (delta <= 0) {
            if (cached) continue;
            return;
          }
          this.handleCache.set(handleId, await this.store.createHandle({ handleId, block: { [cidr]: delta }, deleted: false }));
          return;
        }
        const block = { ...h.value.block };
        const n = (block[cidr] ?? 0) + delta;
        if (n > 0) block[cidr] = n;
        else delete block[cidr];
        if (Object.keys(block).length === 0) {
          await this.store.deleteHandle(handleId, h.rev);
          this.handleCache.set(handleId, undefined);
        } else this.handleCache.set(handleId, await this.store.updateHandle({ ...h.value, block }, h.rev));
        return;
      } catch (e) {
        if (!(e instanceof CasConflict)) throw e;
        this.stats.conflicts++;
      }
    }
    throw new IpamError(`max retries hit updating handle ${handleId}`);
  }

  /**
   * Releases every address of `handleId` (idempotent: an unknown handle is fine). Empty blocks
   * that are not affine are deleted; an empty affine block whose claim is older than
   * `emptyBlockGraceMs` has its affinity released.
   */
  async releaseByHandle(handleId: string, opts: { emptyBlockGraceMs?: number } = {}): Promise<string[]> {
    return this.serial(() => this.releaseByHandleNow(handleId, opts));
  }

  private async releaseByHandleNow(handleId: string, opts: { emptyBlockGraceMs?: number }): Promise<string[]> {
    return this.store.exclusive(async () => {
      const h = await this.store.getHandle(handleId);
      if (!h) return [];
      const released: string[] = [];
      const cidrs = Object.keys(h.value.block);
      if (cidrs.length === 1 && this.store.commitRelease) {
        // the usual case, one block: block and handle in one atomic compare-and-swap
        const freed = await this.releaseInBlock(cidrs[0], (b) => releaseHandleInBlock(b, handleId).block, opts.emptyBlockGraceMs, h);
        if (freed !== undefined) return freed;
      }
      for (const cidr of cidrs) {
        released.push(...(await this.releaseInBlock(cidr, (b) => releaseHandleInBlock(b, handleId).block, opts.emptyBlockGraceMs)));
      }
      for (let attempt = 0; attempt < MAX_RETRIES; attempt++) {
        const cur = attempt === 0 ? h : await this.store.getHandle(handleId);
        if (!cur) break;
        try {
          await this.store.deleteHandle(handleId, cur.rev);
          break;
        } catch (e) {
          if (!(e instanceof CasConflict)) throw e;
        }
      }
      return released;
    });
  }

  /** Frees addresses in one block. With `withHandle`, deletes that handle in the same atomic write
   * (returns undefined when that is not possible, e.g. the handle changed: the caller falls back). */
  private async releaseInBlock(cidr: string, change: (b: AllocationBlock) => AllocationBlock, graceMs?: number): Promise<string[]>;
  private async releaseInBlock(cidr: string, change: (b: AllocationBlock) => AllocationBlock, graceMs: number | undefined, withHandle: Rev<IpamHandle>): Promise<string[] | undefined>;
  private async releaseInBlock(cidr: string, change: (b: AllocationBlock) => AllocationBlock, graceMs?: number, withHandle?: Rev<IpamHandle>): Promise<string[] | undefined> {
    for (let attempt = 0; attempt < MAX_RETRIES; attempt++) {
      const b = await this.store.getBlock(cidr);
      if (!b) return withHandle ? undefined : [];
      const nb = change(b.value);
      if (nb === b.value) return withHandle ? undefined : [];
      const before = new Set(b.value.unallocated);
      const freed = nb.unallocated.filter((o) => !before.has(o)).map((o) => ordinalOf(nb, o));
      const drop = isEmpty(nb) && nb.affinity === null;
      try {
        if (withHandle && this.store.commitRelease) await this.store.commitRelease(cidr, drop ? null : nb, b.rev, withHandle.value.handleId, withHandle.rev);
        else if (drop) await this.store.deleteBlock(cidr, b.rev);
        else await this.store.updateBlock(nb, b.rev);
      } catch (e) {
        if (withHandle && e instanceof CasConflict) {
          this.stats.conflicts++;
          const cur = await this.store.getHandle(withHandle.value.handleId);
          if (!cur || Object.keys(cur.value.block).length !== 1) return undefined;
          withHandle = cur;
          await backoff(attempt);
          continue;
        }
        if (!(e instanceof CasConflict)) throw e;
        this.stats.conflicts++;
        await backoff(attempt);
        continue;
      }
      if (graceMs !== undefined && isEmpty(nb) && nb.affinity?.startsWith('host:')) {
        const claimed = nb.affinityClaimTime ? Date.parse(nb.affinityClaimTime) : 0;
        if (Date.now() - claimed >= graceMs) await this.releaseAffinity(nb.affinity.slice(5), cidr, true).catch(() => undefined);
      }
      return freed;
    }
    throw new IpamError(`max retries hit releasing addresses in ${cidr}`);
  }

  /** Releases given addresses whatever handle holds them (ctl ipam release). Returns those freed. */
  async releaseIps(ips: string[]): Promise<string[]> {
    return this.store.exclusive(() => this.releaseIpsUnlocked(ips));
  }

  private async releaseIpsUnlocked(ips: string[]): Promise<string[]> {
    const byBlock = new Map<string, string[]>();
    const blocks = await this.store.listBlocks();
    for (const ip of ips) {
      const b = blocks.find((x) => ipToOrdinal(x.value, ip) !== undefined);
      if (!b) continue;
      byBlock.set(b.value.cidr, [...(byBlock.get(b.value.cidr) ?? []), ip]);
    }
    const out: string[] = [];
    for (const [cidr, list] of byBlock) {
      let handles: { ip: string; handle?: string }[] = [];
      const freed = await this.releaseInBlock(cidr, (b) => {
        const r = releaseIpsInBlock(b, list);
        handles = r.released;
        return r.block;
      });
      out.push(...freed);
      for (const r of handles) if (r.handle) await this.changeHandle(r.handle, cidr, -1);
    }
    return out;
  }

  /**
   * Releases a host's affinity for a block: pendingDeletion, then the block is deleted when
   * empty (or `onlyIfEmpty` stops here) or left unaffined, then the affinity is deleted.
   */
  async releaseAffinity(host: string, cidr: string, onlyIfEmpty = false): Promise<boolean> {
    for (let attempt = 0; attempt < MAX_RETRIES; attempt++) {
      const a = await this.store.getAffinity(host, cidr);
      if (!a) return false;
      const b = await this.store.getBlock(cidr);
      if (b && onlyIfEmpty && !isEmpty(b.value)) return false;
      let arev = a.rev;
      try {
        if (a.value.state !== 'pendingDeletion') arev = (await this.store.updateAffinity({ ...a.value, state: 'pendingDeletion' }, a.rev)).rev;
        if (b && b.value.affinity === hostAffinity(host)) {
          if (isEmpty(b.value)) await this.store.deleteBlock(cidr, b.rev);
          else {
            const nb = { ...b.value, affinity: null, sequenceNumber: b.value.sequenceNumber + 1 };
            delete nb.affinityClaimTime;
            await this.store.updateBlock(nb, b.rev);
          }
        }
        await this.store.deleteAffinity(host, cidr, arev);
        return true;
      } catch (e) {
        if (!(e instanceof CasConflict)) throw e;
        this.stats.conflicts++;
        // put the affinity back to confirmed if the block changed under us and is still ours
        const cur = await this.store.getAffinity(host, cidr);
        if (cur?.value.state === 'pendingDeletion') {
          const cb = await this.store.getBlock(cidr);
          if (cb && !isEmpty(cb.value) && onlyIfEmpty) {
            await this.store.updateAffinity({ ...cur.value, state: 'confirmed' }, cur.rev).catch(() => undefined);
            return false;
          }
        }
      }
    }
    return false;
  }
}

function ordinalOf(b: AllocationBlock, o: number): string {
  const c = parseCidr(b.cidr)!;
  return formatAddr(c.version, c.addr + BigInt(o));
}

import { formatIp as formatAddr } from '../../datastore/net.js';

function canon(c: string): string {
  const p = parseCidr(c)!;
  const bits = p.version === 4 ? 32 : 128;
  const mask = p.prefix === 0 ? 0n : ((1n << BigInt(bits)) - 1n) ^ ((1n << BigInt(bits - p.prefix)) - 1n);
  return `${formatAddr(p.version, p.addr & mask)}/${p.prefix}`;
}

/** True when `inner` (CIDR or address) is inside pool `outer`. */
export function contains(outer: string, inner: string): boolean {
  const o = parseCidr(outer);
  const i = parseCidr(inner);
  if (!o || !i || o.version !== i.version || i.prefix < o.prefix) return false;
  const bits = o.version === 4 ? 32 : 128;
  const shift = BigInt(bits - o.prefix);
  return o.addr >> shift === i.addr >> shift;
}

function cmpCidr(a: string, b: string): number {
  const x = parseCidr(a)!.addr;
  const y = parseCidr(b)!.addr;
  return x < y ? -1 : x > y ? 1 : 0;
}

function backoff(attempt: number): Promise<void> {
  if (attempt < 2) return Promise.resolve();
  return new Promise((r) => setTimeout(r, Math.min(50, 2 + Math.random() * attempt * 3)));
}
