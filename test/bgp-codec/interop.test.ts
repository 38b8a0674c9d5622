// Codec against a real implementation: BIRD 2 in one network namespace, a minimal passive BGP
// endpoint (peer.mjs) in another. Our OPEN (encodeOpen) must bring the session up; BIRD's
// UPDATEs (IPv4 + IPv6 over MP-BGP, communities, large communities, MED, 4-octet AS, and over a
// 2-octet session AS_TRANS + AS4_PATH) must decode to the right routes and attributes; the
// UPDATEs we pack (packUpdates/packWithdrawals/encodeEndOfRib) must show up in BIRD's table.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { NetNs, requireRoot, vethPair } from '../netns.js';
import {
  AsPathSegmentType,
  BgpNotification,
  CapabilityCode,
  COMMUNITY_NO_EXPORT,
  MessageReader,
  MessageType,
  Origin,
  decodeMessage,
  encodeEndOfRib,
  encodeOpen,
  formatPrefix4,
  packUpdates,
  packWithdrawals,
  parsePrefix4,
  type CodecContext,
  type DecodedAttributes,
  type OpenMessage,
  type UpdateMessage,
  summarizeCapabilities,
} from '../../bgp/codec/index.js';

const PEER = new URL('./peer.mjs', import.meta.url).pathname;
const p4 = (s: string): number => parsePrefix4(s)!;

interface Run {
  open?: OpenMessage;
  v4: Map<string, DecodedAttributes>;
  v6: Map<string, DecodedAttributes>;
  eor: string[];
  notifications: string[];
  birdRoutes: string;
}

async function waitFor(cond: () => boolean, ms: number, what: string): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Decode everything a peer sent (as recorded by peer.mjs). */
function decodeRecord(file: string, ctx: CodecContext): Run {
  // PETREL_CODEC_CAPTURE_DIR=dir keeps the raw streams (used to refresh bgp/codec/testdata)
  const keep = process.env.PETREL_CODEC_CAPTURE_DIR;
  if (keep) copyFileSync(file, join(keep, `${ctx.fourOctetAs ? 4 : 2}-${Date.now()}.bin`));
  const run: Run = { v4: new Map(), v6: new Map(), eor: [], notifications: [], birdRoutes: '' };
  const reader = new MessageReader();
  reader.push(readFileSync(file));
  for (let r = reader.next(); r !== null; r = reader.next()) {
    if (r instanceof BgpNotification) throw new Error(`framing: ${r.toString()}`);
    const m = decodeMessage(r, ctx);
    if (m instanceof BgpNotification) throw new Error(`decode: ${m.toString()}`);
    if (m.type === MessageType.NOTIFICATION) run.notifications.push(`${m.code}/${m.subcode}`);
    if (m.type === MessageType.OPEN) run.open = m;
    if (m.type !== MessageType.UPDATE) continue;
    const u = m as UpdateMessage;
    expect(u.problems).toEqual([]);
    if (u.endOfRib) run.eor.push(`${u.endOfRib.afi}/${u.endOfRib.safi}`);
    for (const p of u.nlri) run.v4.set(formatPrefix4(p), u.attrs!);
    for (const p of u.mpReach?.nlri ?? []) run.v6.set(p as string, u.attrs!);
  }
  return run;
}

/** GoBGP 3 as the sender (the relay in the 100k-feed benchmark): its UPDATEs must decode. */
async function gobgpSession(): Promise<Run> {
  const dir = mkdtempSync(join(tmpdir(), 'ptbc-'));
  const nsG = await NetNs.create('ptbc');
  const nsP = await NetNs.create('ptbc');
  const procs: ChildProcess[] = [];
  try {
    await vethPair(nsG, 'eth0', ['10.99.2.1/30', 'fd00:98::1/64'], nsP, 'eth0', ['10.99.2.2/30', 'fd00:98::2/64']);
    writeFileSync(
      join(dir, 'gobgpd.toml'),
      `[global.config]
  as = 4200000003
  router-id = "10.99.2.1"
  local-address-list = ["10.99.2.1"]
[[neighbors]]
  [neighbors.config]
    neighbor-address = "10.99.2.2"
    peer-as = 65002
  [neighbors.transport.config]
    local-address = "10.99.2.1"
    passive-mode = true
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
`,
    );
    const ctx: CodecContext = { fourOctetAs: true, external: true };
    const open = encodeOpen({
      asn: 65002,
      holdTime: 90,
      bgpId: '10.99.2.2',
      capabilities: [
        { code: CapabilityCode.MULTIPROTOCOL, afi: 1, safi: 1 },
        { code: CapabilityCode.MULTIPROTOCOL, afi: 2, safi: 1 },
        { code: CapabilityCode.ROUTE_REFRESH },
        { code: CapabilityCode.FOUR_OCTET_AS, asn: 65002 },
      ],
    });
    let out = '';
    const gobgpd = nsG.spawn('gobgpd', ['-f', join(dir, 'gobgpd.toml'), '-p', '--api-hosts', '127.0.0.1:50051', '--pprof-disable']);
    procs.push(gobgpd);
    const cli = (...a: string[]) => nsG.exec('gobgp', ['-u', '127.0.0.1', '-p', '50051', ...a]);
    for (let i = 0; ; i++) {
      try {
        await cli('global');
        break;
      } catch (e) {
        if (i > 50) throw e;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    await cli('global', 'rib', 'add', '10.70.0.0/16', 'origin', 'igp', 'med', '20', 'community', '65003:9', 'large-community', '4200000003:1:2', '-a', 'ipv4');
    await cli('global', 'rib', 'add', '10.71.1.0/24', 'origin', 'igp', 'med', '20', 'community', '65003:9', 'large-community', '4200000003:1:2', '-a', 'ipv4');
    await cli('global', 'rib', 'add', 'fd00:70::/48', 'nexthop', 'fd00:98::1', 'origin', 'igp', '-a', 'ipv6');
    // GoBGP is passive here (its first outgoing connect takes seconds); we dial in.
    const peer = nsP.spawn(process.execPath, [PEER, 'connect:10.99.2.1', join(dir, 'rec.bin'), open.toString('hex')]);
    procs.push(peer);
    peer.stdout!.on('data', (d) => (out += d));
    peer.stderr!.on('data', (d) => (out += d));
    let run: Run | undefined;
    await waitFor(() => {
      if (!out.includes('idle')) return false;
      run = decodeRecord(join(dir, 'rec.bin'), ctx);
      return run.v4.size >= 2 && run.v6.size >= 1;
    }, 30_000, `GoBGP's UPDATEs (${out})`);
    return run!;
  } finally {
    for (const p of procs) p.kill('SIGKILL');
    await nsG.destroy();
    await nsP.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function session(fourOctetAs: boolean): Promise<Run> {
  const dir = mkdtempSync(join(tmpdir(), 'ptbc-'));
  const nsB = await NetNs.create('ptbc');
  const nsP = await NetNs.create('ptbc');
  const procs: ChildProcess[] = [];
  try {
    await vethPair(nsB, 'eth0', ['10.99.1.1/30', 'fd00:99::1/64'], nsP, 'eth0', ['10.99.1.2/30', 'fd00:99::2/64']);
    writeFileSync(
      join(dir, 'bird.conf'),
      `router id 10.99.1.1;
protocol device { }
protocol direct { ipv4; ipv6; interface "eth0"; }
protocol static s4 { ipv4; route 10.50.0.0/16 blackhole; route 10.51.1.0/24 blackhole; route 10.52.2.128/25 blackhole; }
protocol static s6 { ipv6; route fd00:50::/48 blackhole; route fd00:51:1::/64 blackhole; }
filter out_attrs {
  if proto = "s4" || proto = "s6" then {
    bgp_med = 50;
    bgp_community.add((65001,7));
    bgp_large_community.add((4200000001,1,2));
    accept;
  }
  reject;
}
protocol bgp petrel {
  local 10.99.1.1 as 4200000001;
  neighbor 10.99.1.2 as 65002;
  start delay time 1;
  graceful restart on;
  ipv4 { import all; export filter out_attrs; };
  ipv6 { import all; export filter out_attrs; next hop address fd00:99::1; };
}
`,
    );
    const ctx: CodecContext = { fourOctetAs, external: true };
    const open = encodeOpen({
      asn: 65002,
      holdTime: 90,
      bgpId: '10.99.1.2',
      capabilities: [
        { code: CapabilityCode.MULTIPROTOCOL, afi: 1, safi: 1 },
        { code: CapabilityCode.MULTIPROTOCOL, afi: 2, safi: 1 },
        { code: CapabilityCode.ROUTE_REFRESH },
        { code: CapabilityCode.GRACEFUL_RESTART, restarting: false, notification: false, restartTime: 120, families: [{ afi: 1, safi: 1, forwardingState: false }, { afi: 2, safi: 1, forwardingState: false }] },
        ...(fourOctetAs ? [{ code: CapabilityCode.FOUR_OCTET_AS as const, asn: 65002 }] : []),
      ],
    });
    // What we announce: three IPv4 prefixes (one withdrawn again), two IPv6, then End-of-RIB.
    const attrs = {
      origin: Origin.IGP,
      asPath: [{ type: AsPathSegmentType.AS_SEQUENCE, asns: [65002, 4200000099] }],
      nextHop: '10.99.1.2',
      mpNextHop: 'fd00:99::2',
      communities: [65002 * 65536 + 5, COMMUNITY_NO_EXPORT],
      largeCommunities: [65002, 1, 1],
    };
    const send = Buffer.concat([
      ...packUpdates(attrs, [p4('10.60.0.0/16'), p4('10.61.1.0/24'), p4('10.62.0.0/24')], ctx),
      ...packUpdates(attrs, ['fd00:60::/48', 'fd00:61:1::/64'], ctx),
      ...packWithdrawals([p4('10.62.0.0/24')], 1),
      encodeEndOfRib(1, 1),
      encodeEndOfRib(2, 1),
    ]);
    writeFileSync(join(dir, 'send.bin'), send);
    let out = '';
    const peer = nsP.spawn(process.execPath, [PEER, '10.99.1.2', join(dir, 'rec.bin'), open.toString('hex'), join(dir, 'send.bin')]);
    procs.push(peer);
    peer.stdout!.on('data', (d) => (out += d));
    peer.stderr!.on('data', (d) => (out += d));
    await waitFor(() => out.includes('listening'), 10_000, 'peer listening');
    const bird = nsB.spawn('bird', ['-f', '-c', join(dir, 'bird.conf'), '-s', join(dir, 'bird.ctl')]);
    procs.push(bird);
    bird.stderr!.on('data', (d) => (out += `bird: ${d}`));
    await waitFor(() => out.includes('idle'), 30_000, `BIRD's UPDATEs (${out})`);

    const run = decodeRecord(join(dir, 'rec.bin'), ctx);
    // BIRD's view of what we sent
    for (let i = 0; i < 30; i++) {
      run.birdRoutes = (await nsB.exec('birdc', ['-s', join(dir, 'bird.ctl'), 'show', 'route', 'all', 'protocol', 'petrel'])).stdout;
      if (run.birdRoutes.includes('fd00:61:1::/64') && run.birdRoutes.includes('10.61.1.0/24')) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    return run;
  } finally {
    for (const p of procs) p.kill('SIGKILL');
    await nsB.destroy();
    await nsP.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('codec interop with BIRD 2 and GoBGP 3', () => {
  const runs: Record<string, Run> = {};
  beforeAll(async () => {
    requireRoot();
    runs.four = await session(true);
    runs.two = await session(false);
    runs.gobgp = await gobgpSession();
  }, 150_000);
  afterAll(() => undefined);

  for (const kind of ['four', 'two'] as const) {
    it(`${kind}-octet session: BIRD's IPv4 and IPv6 UPDATEs decode with the right attributes`, () => {
      const r = runs[kind]!;
      expect(r.notifications).toEqual([]);
      // BIRD's OPEN: AS 4200000001 via the 4-octet capability (AS_TRANS in My AS), both families, GR
      expect(r.open!.asn).toBe(4200000001);
      expect(r.open!.myAs).toBe(23456);
      const caps = summarizeCapabilities(r.open!.capabilities);
      expect(caps.families).toEqual(expect.arrayContaining([{ afi: 1, safi: 1 }, { afi: 2, safi: 1 }]));
      expect(caps.fourOctetAs).toBe(4200000001);
      expect(caps.routeRefresh).toBe(true);
      expect(caps.gracefulRestart).toBeDefined();
      expect([...r.v4.keys()].sort()).toEqual(['10.50.0.0/16', '10.51.1.0/24', '10.52.2.128/25']);
      expect([...r.v6.keys()].sort()).toEqual(['fd00:50::/48', 'fd00:51:1::/64']);
      const a = r.v4.get('10.51.1.0/24')!;
      // AS 4200000001 arrives intact: directly on a 4-octet session, via AS4_PATH merge on a 2-octet one
      expect(a.asPath).toEqual([{ type: AsPathSegmentType.AS_SEQUENCE, asns: [4200000001] }]);
      expect(a.nextHop).toBe('10.99.1.1');
      expect(a.med).toBe(50);
      expect(a.communities).toContain(65001 * 65536 + 7);
      expect(a.largeCommunities).toEqual([4200000001, 1, 2]);
      expect(a.localPref).toBeUndefined();
      const b = r.v6.get('fd00:50::/48')!;
      expect(b.mpNextHop).toBe('fd00:99::1');
      expect(b.asPath).toEqual(a.asPath);
      expect(r.eor.sort()).toEqual(['1/1', '2/1']);
    });

    it(`${kind}-octet session: BIRD accepts our packed UPDATEs, withdrawal and attributes`, () => {
      const t = runs[kind]!.birdRoutes;
      expect(t).toMatch(/10\.60\.0\.0\/16\s/);
      expect(t).toMatch(/10\.61\.1\.0\/24\s/);
      expect(t).not.toMatch(/10\.62\.0\.0\/24/);
      expect(t).toMatch(/fd00:60::\/48/);
      expect(t).toMatch(/fd00:61:1::\/64/);
      expect(t).toMatch(/BGP\.as_path: 65002 4200000099/);
      expect(t).toMatch(/BGP\.community: .*\(65002,5\)/);
      expect(t).toMatch(/BGP\.large_community: \(65002, 1, 1\)/);
      expect(t).toMatch(/BGP\.next_hop: fd00:99::2/);
    });
  }

  it('GoBGP: IPv4 and IPv6 UPDATEs decode with the right attributes', () => {
    const r = runs.gobgp!;
    expect(r.notifications).toEqual([]);
    expect(r.open!.asn).toBe(4200000003);
    expect(summarizeCapabilities(r.open!.capabilities).families).toEqual(expect.arrayContaining([{ afi: 1, safi: 1 }, { afi: 2, safi: 1 }]));
    expect([...r.v4.keys()].sort()).toEqual(['10.70.0.0/16', '10.71.1.0/24']);
    expect([...r.v6.keys()]).toEqual(['fd00:70::/48']);
    const a = r.v4.get('10.70.0.0/16')!;
    expect(a.asPath).toEqual([{ type: AsPathSegmentType.AS_SEQUENCE, asns: [4200000003] }]);
    expect(a.nextHop).toBe('10.99.2.1');
    expect(a.origin).toBe(Origin.IGP);
    expect(a.med).toBe(20);
    expect(a.communities).toEqual([65003 * 65536 + 9]);
    expect(a.largeCommunities).toEqual([4200000003, 1, 2]);
    expect(r.v4.get('10.71.1.0/24')).toEqual(a);
    expect(r.v6.get('fd00:70::/48')!.mpNextHop).toMatch(/^fd00:98::1$|^::ffff:10\.99\.2\.1$/);
  });
});
