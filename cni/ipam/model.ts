// Calico's IPAM data model (libcalico-go model/{block,block_affinity,ipam_handle}.go) held in one
// internal shape; each backend (etcd, Kubernetes CRDs, file manifests) converts to its own
// storage form. Pure functions only: no I/O here.
import { type Cidr, type IpVersion, bitsOf, canonicalCidr, cidrContains, formatIp, parseCidr, parseIp } from '../../datastore/net.js';

export interface AllocationAttribute {
  handle_id?: string | null;
  secondary?: Record<string, string> | null;
}

export interface AllocationBlock {
  cidr: string;
  /** `host:<node>` (or `virtual:<name>`); null when not affine. */
  affinity: string | null;
  affinityClaimTime?: string;
  strictAffinity: boolean;
  /** per ordinal: null (free) or an index into `attributes`. */
  allocations: (number | null)[];
  /** FIFO of free ordinals. */
  unallocated: number[];
  attributes: AllocationAttribute[];
  sequenceNumber: number;
  sequenceNumberForAllocation: Record<string, number>;
  deleted: boolean;
}

export type AffinityState = 'pending' | 'confirmed' | 'pendingDeletion';

export interface BlockAffinity {
  host: string;
  cidr: string;
  state: AffinityState;
  deleted: boolean;
}

export interface IpamHandle {
  handleId: string;
  /** addresses held per block CIDR */
  block: Record<string, number>;
  deleted: boolean;
}

export interface IpamConfig {
  strictAffinity: boolean;
  autoAllocateBlocks: boolean;
  maxBlocksPerHost: number;
}

export const DEFAULT_IPAM_CONFIG: IpamConfig = { strictAffinity: false, autoAllocateBlocks: true, maxBlocksPerHost: 0 };

/** What IPAM needs of an IPPool. */
export interface PoolInfo {
  name: string;
  cidr: string;
  version: IpVersion;
  blockSize: number;
  nodeSelector: string;
  disabled: boolean;
  allowedUses: string[];
}

/** Maps an IPPool resource (projectcalico.org/v3 or crd.projectcalico.org/v1) to PoolInfo; undefined if unusable. */
export function poolFromResource(r: any): PoolInfo | undefined {
  const spec = r?.spec ?? {};
  const c = typeof spec.cidr === 'string' ? parseCidr(spec.cidr) : undefined;
  if (!c) return undefined;
  const blockSize = Number.isInteger(spec.blockSize) ? spec.blockSize : c.version === 4 ? 26 : 122;
  if (blockSize < c.prefix || blockSize > bitsOf(c.version)) return undefined;
  return {
    name: String(r?.metadata?.name ?? spec.cidr),
    cidr: canonicalCidr(spec.cidr),
    version: c.version,
    blockSize,
    nodeSelector: typeof spec.nodeSelector === 'string' ? spec.nodeSelector : 'all()',
    disabled: spec.disabled === true,
    allowedUses: Array.isArray(spec.allowedUses) && spec.allowedUses.length ? spec.allowedUses : ['Workload', 'Tunnel'],
  };
}

export const hostAffinity = (host: string) => `host:${host}`;

export function blockVersion(cidr: string): IpVersion {
  return cidr.includes(':') ? 6 : 4;
}

/** `10.65.0.0/26` → `10.65.0.0-26` (etcd key segment). */
export const cidrKey = (cidr: string) => cidr.replace('/', '-');
export const cidrFromKey = (k: string) => {
  const i = k.lastIndexOf('-');
  return `${k.slice(0, i)}/${k.slice(i + 1)}`;
};
/** Calico's names.CIDRToName: `.`, `:` and `/` become `-` (Kubernetes object names). */
export const cidrToName = (cidr: string) => cidr.replace(/[.:/]/g, '-');

export function blockSizeOf(cidr: string): number {
  const c = parseCidr(cidr)!;
  return Number(1n << BigInt(bitsOf(c.version) - c.prefix));
}

export function newBlock(cidr: string, host: string | null, now = new Date()): AllocationBlock {
  const n = blockSizeOf(cidr);
  return {
    cidr,
    affinity: host === null ? null : hostAffinity(host),
    ...(host === null ? {} : { affinityClaimTime: now.toISOString() }),
    strictAffinity: false,
    allocations: new Array(n).fill(null),
    unallocated: Array.from({ length: n }, (_, i) => i),
    attributes: [],
    sequenceNumber: 0,
    sequenceNumberForAllocation: {},
    deleted: false,
  };
}

export function ordinalToIp(block: AllocationBlock, ordinal: number): string {
  const c = parseCidr(block.cidr)!;
  return formatIp(c.version, c.addr + BigInt(ordinal));
}

/** Ordinal of `ip` in the block, or undefined when outside it. */
export function ipToOrdinal(block: AllocationBlock, ip: string): number | undefined {
  const c = parseCidr(block.cidr)!;
  const a = parseIp(ip);
  if (!a || a.version !== c.version || !cidrContains(c, { version: a.version, addr: a.addr, prefix: bitsOf(a.version) })) return undefined;
  return Number(a.addr - c.addr);
}

export function inUse(block: AllocationBlock): number {
  return block.allocations.filter((a) => a !== null).length;
}

export function isEmpty(block: AllocationBlock): boolean {
  return block.allocations.every((a) => a === null);
}

function cloneBlock(b: AllocationBlock): AllocationBlock {
  return JSON.parse(JSON.stringify(b));
}

function attrIndex(b: AllocationBlock, handle: string, attrs: Record<string, string>): number {
  const want = JSON.stringify(attrs);
  const i = b.attributes.findIndex((a) => a.handle_id === handle && JSON.stringify(a.secondary ?? {}) === want);
  if (i >= 0) return i;
  b.attributes.push({ handle_id: handle, secondary: attrs });
  return b.attributes.length - 1;
}

/**
 * Takes up to `num` free ordinals from the head of `unallocated` for `handle`.
 * Returns the new block and the addresses; the input is not modified.
 */
export function allocateFromBlock(block: AllocationBlock, num: number, handle: string, attrs: Record<string, string>): { block: AllocationBlock; ips: string[] } {
  const b = cloneBlock(block);
  const ords = b.unallocated.splice(0, Math.min(num, b.unallocated.length));
  if (ords.length === 0) return { block, ips: [] };
  const idx = attrIndex(b, handle, attrs);
  b.sequenceNumber += 1;
  for (const o of ords) {
    b.allocations[o] = idx;
    b.sequenceNumberForAllocation[String(o)] = b.sequenceNumber;
  }
  return { block: b, ips: ords.map((o) => ordinalToIp(b, o)) };
}

/** Assigns one specific address; throws when it is taken. */
export function assignIpInBlock(block: AllocationBlock, ip: string, handle: string, attrs: Record<string, string>): AllocationBlock {
  const o = ipToOrdinal(block, ip);
  if (o === undefined) throw new Error(`${ip} is not in block ${block.cidr}`);
  if (block.allocations[o] !== null) throw new Error(`address ${ip} is already in use`);
  const b = cloneBlock(block);
  b.unallocated = b.unallocated.filter((x) => x !== o);
  b.sequenceNumber += 1;
  b.allocations[o] = attrIndex(b, handle, attrs);
  b.sequenceNumberForAllocation[String(o)] = b.sequenceNumber;
  return b;
}

/** Drops attributes no allocation points at and renumbers the rest. */
function compactAttributes(b: AllocationBlock): void {
  const used = new Set(b.allocations.filter((a): a is number => a !== null));
  const map = new Map<number, number>();
  const kept: AllocationAttribute[] = [];
  b.attributes.forEach((a, i) => {
    if (used.has(i)) {
      map.set(i, kept.length);
      kept.push(a);
    }
  });
  b.attributes = kept;
  b.allocations = b.allocations.map((a) => (a === null ? null : map.get(a)!));
}

/** Frees every address held by `handle`; returns the new block and what was freed. */
export function releaseHandleInBlock(block: AllocationBlock, handle: string): { block: AllocationBlock; released: string[] } {
  const b = cloneBlock(block);
  const released: string[] = [];
  b.allocations.forEach((a, o) => {
    if (a !== null && b.attributes[a]?.handle_id === handle) {
      b.allocations[o] = null;
      b.unallocated.push(o);
      delete b.sequenceNumberForAllocation[String(o)];
      released.push(ordinalToIp(b, o));
    }
  });
  if (released.length === 0) return { block, released };
  compactAttributes(b);
  b.sequenceNumber += 1;
  return { block: b, released };
}

/** Frees the given addresses whatever holds them; returns the new block and what was freed. */
export function releaseIpsInBlock(block: AllocationBlock, ips: string[]): { block: AllocationBlock; released: { ip: string; handle?: string }[] } {
  const b = cloneBlock(block);
  const released: { ip: string; handle?: string }[] = [];
  for (const ip of ips) {
    const o = ipToOrdinal(b, ip);
    if (o === undefined || b.allocations[o] === null) continue;
    released.push({ ip, handle: b.attributes[b.allocations[o]!]?.handle_id ?? undefined });
    b.allocations[o] = null;
    b.unallocated.push(o);
    delete b.sequenceNumberForAllocation[String(o)];
  }
  if (released.length === 0) return { block, released };
  compactAttributes(b);
  b.sequenceNumber += 1;
  return { block: b, released };
}

/** Addresses in the block held by `handle`. */
export function ipsOfHandle(block: AllocationBlock, handle: string): string[] {
  const out: string[] = [];
  block.allocations.forEach((a, o) => {
    if (a !== null && block.attributes[a]?.handle_id === handle) out.push(ordinalToIp(block, o));
  });
  return out;
}

/** Every allocation: ip, handle, attributes. */
export function allocationsOf(block: AllocationBlock): { ip: string; handle?: string; attrs: Record<string, string> }[] {
  const out: { ip: string; handle?: string; attrs: Record<string, string> }[] = [];
  block.allocations.forEach((a, o) => {
    if (a === null) return;
    const at = block.attributes[a] ?? {};
    out.push({ ip: ordinalToIp(block, o), handle: at.handle_id ?? undefined, attrs: at.secondary ?? {} });
  });
  return out;
}

/** Consistency problems of one block (bad ordinals, duplicates, dangling attribute indexes). */
export function blockProblems(b: AllocationBlock): string[] {
  const p: string[] = [];
  const n = blockSizeOf(b.cidr);
  if (b.allocations.length !== n) p.push(`block ${b.cidr}: ${b.allocations.length} allocations for ${n} addresses`);
  const free = new Set<number>();
  for (const o of b.unallocated) {
    if (free.has(o)) p.push(`block ${b.cidr}: ordinal ${o} listed twice as free`);
    free.add(o);
    if (b.allocations[o] !== null) p.push(`block ${b.cidr}: ordinal ${o} both free and allocated`);
  }
  b.allocations.forEach((a, o) => {
    if (a === null && !free.has(o)) p.push(`block ${b.cidr}: ordinal ${o} neither free nor allocated`);
    if (a !== null && !b.attributes[a]) p.push(`block ${b.cidr}: ordinal ${o} points at missing attribute ${a}`);
  });
  return p;
}

/** FNV-1a 32-bit (the seed of the per-host block search order). */
export function fnv32(s: string): number {
  let h = 0x811c9dc5;
  for (const ch of Buffer.from(s)) {
    h ^= ch;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** The i-th block CIDR of a pool. */
export function nthBlock(pool: Cidr, blockSize: number, i: bigint): string {
  const step = 1n << BigInt(bitsOf(pool.version) - blockSize);
  return `${formatIp(pool.version, (pool.addr & ~((1n << BigInt(bitsOf(pool.version) - pool.prefix)) - 1n)) + step * i)}/${blockSize}`;
}

export function blockCount(pool: Cidr, blockSize: number): bigint {
  return 1n << BigInt(blockSize - pool.prefix);
}
