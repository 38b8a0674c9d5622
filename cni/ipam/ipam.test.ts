import { describe, expect, it } from 'vitest';
import { Ipam } from './ipam.js';
import { MemoryIpamStore } from './memory.js';
import { allocateFromBlock, blockProblems, newBlock, releaseHandleInBlock, type PoolInfo } from './model.js';
import { check, snapshot } from './audit.js';

const pool = (cidr: string, extra: Partial<PoolInfo> = {}): PoolInfo => ({
  name: `pool-${cidr}`,
  cidr,
  version: cidr.includes(':') ? 6 : 4,
  blockSize: cidr.includes(':') ? 122 : 29,
  nodeSelector: 'all()',
  disabled: false,
  allowedUses: ['Workload', 'Tunnel'],
  ...extra,
});

function store(pools: PoolInfo[]): MemoryIpamStore {
  const s = new MemoryIpamStore();
  s.poolList = pools;
  return s;
}

const req = (handleId: string, host: string, extra = {}) => ({ handleId, host, attrs: { node: host }, num4: 1, num6: 0, ...extra });

describe('block model', () => {
  it('allocates from the head of unallocated and frees to the tail, compacting attributes', () => {
    const b = newBlock('10.0.0.0/30', 'n1');
    const a = allocateFromBlock(b, 2, 'h1', {});
    expect(a.ips).toEqual(['10.0.0.0', '10.0.0.1']);
    const c = allocateFromBlock(a.block, 1, 'h2', {});
    expect(c.ips).toEqual(['10.0.0.2']);
    const r = releaseHandleInBlock(c.block, 'h1');
    expect(r.released).toEqual(['10.0.0.0', '10.0.0.1']);
    expect(r.block.unallocated).toEqual([3, 0, 1]);
    expect(r.block.attributes).toEqual([{ handle_id: 'h2', secondary: {} }]);
    expect(r.block.allocations).toEqual([null, null, 0, null]);
    expect(blockProblems(r.block)).toEqual([]);
    expect(b.unallocated).toEqual([0, 1, 2, 3]); // input untouched
  });
});

describe('Ipam', () => {
  it('claims a block by affinity (confirmed) and allocates from it first', async () => {
    const s = store([pool('10.1.0.0/24')]);
    const ipam = new Ipam(s);
    const [ip1] = await ipam.assign(req('h1', 'n1'));
    const [ip2] = await ipam.assign(req('h2', 'n1'));
    const affs = await s.listAffinities('n1');
    expect(affs).toHaveLength(1);
    expect(affs[0].value.state).toBe('confirmed');
    const blk = affs[0].value.cidr;
    expect(ip1).not.toBe(ip2);
    for (const ip of [ip1, ip2]) expect(ip.startsWith(blk.split('.').slice(0, 3).join('.'))).toBe(true);
    expect(check(await snapshot(s)).problems).toEqual([]);
  });

  it('a repeated assign for the same handle returns the same address', async () => {
    const ipam = new Ipam(store([pool('10.1.0.0/24')]));
    const a = await ipam.assign(req('h1', 'n1'));
    const b = await ipam.assign(req('h1', 'n1'));
    expect(b).toEqual(a);
  });

  it('claims another block when its own are full, then borrows from other hosts unless strict affinity', async () => {
    const s = store([pool('10.2.0.0/28')]); // two /29 blocks of 8
    const ipam = new Ipam(s);
    for (let i = 0; i < 8; i++) await ipam.assign(req(`a${i}`, 'n1'));
    for (let i = 0; i < 8; i++) await ipam.assign(req(`b${i}`, 'n2'));
    // pool exhausted
    await expect(ipam.assign(req('x', 'n3'))).rejects.toThrow(/exhausted/);
    await ipam.releaseByHandle('b0');
    // n3 has no block and none free: borrows n2's freed address
    const [ip] = await ipam.assign(req('x', 'n3'));
    const blocks = await s.listBlocks();
    const owner = blocks.find((b) => b.value.allocations.some((a, o) => a !== null && b.value.attributes[a].handle_id === 'x'))!;
    expect(owner.value.affinity).toBe('host:n2');
    expect(ip).toBeTruthy();
    await ipam.releaseByHandle('x');
    s.config.strictAffinity = true;
    await expect(new Ipam(s).assign(req('y', 'n3'))).rejects.toThrow(/strict affinity/);
  });

  it('skips disabled pools and pools whose nodeSelector does not select the node', async () => {
    const s = store([pool('10.3.0.0/24', { disabled: true }), pool('10.4.0.0/24', { nodeSelector: "rack == 'a'" }), pool('10.5.0.0/24')]);
    s.labels = { n1: { rack: 'a' }, n2: { rack: 'b' } };
    const ipam = new Ipam(s);
    const [a] = await ipam.assign(req('h1', 'n1'));
    const [b] = await ipam.assign(req('h2', 'n2'));
    expect(a.startsWith('10.4.') || a.startsWith('10.5.')).toBe(true);
    expect(b.startsWith('10.5.')).toBe(true);
    const [c] = await ipam.assign(req('h3', 'n1', { pools4: ['10.4.0.0/24'] }));
    expect(c.startsWith('10.4.')).toBe(true);
    await expect(ipam.assign(req('h4', 'n1', { pools4: ['10.3.0.0/24'] }))).rejects.toThrow(/disabled/);
    await expect(ipam.assign(req('h5', 'n2', { pools4: ['10.4.0.0/24'] }))).rejects.toThrow(/no configured IPv4 pools/);
  });

  it('assigns a fixed address and refuses one already taken', async () => {
    const ipam = new Ipam(store([pool('10.6.0.0/24')]));
    expect(await ipam.assign(req('h1', 'n1', { ips: ['10.6.0.77'] }))).toEqual(['10.6.0.77']);
    await expect(ipam.assign(req('h2', 'n1', { ips: ['10.6.0.77'] }))).rejects.toThrow(/in use/);
  });

  it("takes over another node's empty block once the pool has no unclaimed block left", async () => {
    const s = store([pool('10.11.0.0/28')]); // two /29 blocks
    const ipam = new Ipam(s);
    ipam.reclaimAgeMs = 0;
    await ipam.assign(req('a', 'n1'));
    await ipam.assign(req('b', 'n2'));
    await ipam.releaseByHandle('b'); // n2's block is empty but still affine to n2
    s.config.strictAffinity = true; // no borrowing: n3 needs a block of its own
    for (let i = 0; i < 7; i++) await ipam.assign(req(`a${i}`, 'n1'));
    const [ip] = await ipam.assign(req('c', 'n3'));
    expect(ip).toBeTruthy();
    const hosts = (await s.listAffinities()).map((a) => a.value.host).sort();
    expect(hosts).toEqual(['n1', 'n3']);
    expect(check(await snapshot(s)).problems).toEqual([]);
  });

  it('dual stack assigns one address of each family', async () => {
    const ipam = new Ipam(store([pool('10.7.0.0/24'), pool('fd00:7::/120')]));
    const ips = await ipam.assign(req('h1', 'n1', { num6: 1 }));
    expect(ips).toHaveLength(2);
    expect(ips.filter((ip) => ip.includes(':'))).toHaveLength(1);
  });

  it('release by handle is idempotent; an empty block past its grace loses its affinity', async () => {
    const s = store([pool('10.8.0.0/24')]);
    const ipam = new Ipam(s);
    await ipam.assign(req('h1', 'n1'));
    expect(await ipam.releaseByHandle('h1', { emptyBlockGraceMs: 0 })).toHaveLength(1);
    expect(await ipam.releaseByHandle('h1', { emptyBlockGraceMs: 0 })).toEqual([]);
    expect(await s.listAffinities()).toEqual([]);
    expect(await s.listBlocks()).toEqual([]);
    expect(await s.listHandles()).toEqual([]);
  });

  it('never gives one address to two holders under concurrent assignment with conflicts', async () => {
    const s = store([pool('10.9.0.0/22')]);
    const ipams = ['n1', 'n2', 'n3'].map(() => new Ipam(s));
    s.injectConflicts = 20;
    const all = await Promise.all(
      Array.from({ length: 90 }, (_, i) => ipams[i % 3].assign(req(`h${i}`, `n${(i % 3) + 1}`))),
    );
    const flat = all.flat();
    expect(new Set(flat).size).toBe(90);
    const rep = check(await snapshot(s));
    expect(rep.problems).toEqual([]);
    expect(rep.allocations).toBe(90);
    expect(rep.handles).toBe(90);
    await Promise.all(flat.map((_, i) => ipams[i % 3].releaseByHandle(`h${i}`)));
    expect(check(await snapshot(s)).allocations).toBe(0);
  });

  it('check reports leaks, dangling handles and miscounts', async () => {
    const s = store([pool('10.10.0.0/24')]);
    const ipam = new Ipam(s);
    const [ip] = await ipam.assign(req('h1', 'n1'));
    await s.createHandle({ handleId: 'ghost', block: { '10.10.0.0/29': 1 }, deleted: false });
    const rep = check(await snapshot(s), (a) => a.ip !== ip);
    expect(rep.leaked.map((a) => a.ip)).toEqual([ip]);
    expect(rep.problems.some((p) => p.includes('handle ghost holds no addresses'))).toBe(true);
  });
});
