// Petrel speaker against Petrel speakers: several speaker processes in one namespace, each on
// its own 10.99.0.x address on lo. Sessions, exports/withdrawals, route reflection (3 clients of
// a Petrel RR), split horizon, graceful restart (kill -9 and restart, twice), Cease on a
// non-graceful stop, live reconfiguration touching only the affected session.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { NetNs } from '../netns.js';
import { requireRoot } from '../netns.js';
import { Lab, PetrelProc, sleep, until } from './harness.js';

requireRoot();
const lab = new Lab();
let ns: NetNs;
const ip = (n: number) => `10.99.0.${n}`;

beforeAll(async () => {
  ns = await lab.ns();
  for (let i = 1; i <= 20; i++) await ns.exec('ip', ['addr', 'add', `${ip(i)}/32`, 'dev', 'lo']);
}, 120_000);
afterEach(() => lab.endTest(), 60_000);
afterAll(() => lab.cleanup(), 60_000);

function peerOf(n: number, asNumber: number, from: number, extra: object = {}) {
  return { address: ip(n), asNumber, type: 'global', sourceAddress: ip(from), holdTime: 9, ...extra };
}

async function start(n: number, asNumber: number, extra: object = {}) {
  return PetrelProc.start(lab, ns, { routerId: ip(n), asNumber, listenAddress: ip(n), connectRetryMs: 500, gracefulRestart: { restartTime: 20, deferralTime: 5 }, ...extra });
}

describe('Petrel <-> Petrel', () => {
  it('eBGP with a 4-octet ASN: routes with next hop self and AS path, withdrawals, hold time negotiated', async () => {
    const a = await start(1, 65001);
    const b = await start(2, 4200000002);
    await a.configure([peerOf(2, 4200000002, 1)]);
    await b.configure([peerOf(1, 65001, 2, { holdTime: 6 })]);
    await a.exports(['10.1.0.0/24', '10.1.1.0/26']);
    await b.exports([]);
    await until('routes at b', async () => (await b.rib()).size === 2);
    const r = (await b.rib()).get('10.1.0.0/24');
    expect(r).toMatchObject({ nextHop: ip(1), asPath: [65001], peer: ip(1) });
    const pa = await a.peer(ip(2));
    expect(pa).toMatchObject({ state: 'Established', prefixesAdvertised: 2, holdTime: 6, keepaliveTime: 2, type: 'global' });
    expect((await b.peer(ip(1))).prefixesReceived).toBe(2);
    await a.exports(['10.1.0.0/24']);
    await until('withdrawal at b', async () => (await b.rib()).size === 1);
    await until('sync', async () => (await a.call('sync')) && (await b.call('sync')));
    expect((await a.call('ready')).ready).toBe(true);
    const m: string = await a.call('metrics');
    expect(m).toContain(`petrel_bgp_session_state{peer="${ip(2)}"} 6`);
    expect(m).toContain(`petrel_bgp_prefixes_advertised{peer="${ip(2)}"} 1`);
    expect(m).toMatch(new RegExp(`petrel_bgp_updates_sent_total\\{peer="${ip(2).replace(/\./g, '\\.')}"\\} [2-9]`));
    expect((await b.call('metrics')) as string).toMatch(/petrel_bgp_updates_received_total\{peer="10\.99\.0\.1"\} [2-9]/);
    expect(m).toContain('petrel_bgp_session_flaps_total');
  });

  it('hold time 0 is honoured: no keepalives, no hold timer, session stays up', async () => {
    const a = await start(14, 65014);
    const b = await start(15, 65015);
    await a.configure([peerOf(15, 65015, 14, { holdTime: 0 })]);
    await b.configure([peerOf(14, 65014, 15, { holdTime: 0 })]);
    await a.exports(['10.7.0.0/24']);
    await b.exports([]);
    await until('routes', async () => (await b.rib()).size === 1);
    expect(await a.peer(ip(15))).toMatchObject({ state: 'Established', holdTime: 0, keepaliveTime: 0 });
    // one side with 0, the other with 9: negotiated to the lower, i.e. 0
    await b.configure([peerOf(14, 65014, 15, { holdTime: 9 })]);
    await until('re-established', async () => (await b.peer(ip(14)))?.state === 'Established');
    expect((await b.peer(ip(14))).holdTime).toBe(0);
  });

  it('route reflection: 3 Petrel clients of a Petrel RR learn each other once; no reflection without RR', async () => {
    const rr = await start(3, 64512);
    const cs = [await start(4, 64512), await start(5, 64512), await start(6, 64512)];
    await rr.configure(cs.map((_, i) => peerOf(4 + i, 64512, 3, { type: 'rr-client', routeReflectorClient: true, clusterId: '1.0.0.1' })));
    await rr.exports(['10.2.9.0/26']);
    for (const [i, c] of cs.entries()) {
      await c.configure([peerOf(3, 64512, 4 + i)]);
      await c.exports([`10.2.${i}.0/26`]);
    }
    for (const c of cs) await until('client routes', async () => (await c.rib()).size === 3);
    for (const [i, c] of cs.entries()) {
      const rib = await c.rib();
      for (let j = 0; j < 3; j++) {
        if (j === i) continue;
        expect(rib.get(`10.2.${j}.0/26`)).toMatchObject({ nextHop: ip(4 + j), peer: ip(3), asPath: [] });
      }
      expect(rib.get('10.2.9.0/26')).toMatchObject({ nextHop: ip(3) });
      expect((await c.peer(ip(3))).prefixesReceived).toBe(3);
    }
    // Without rr-client marking the RR must not pass iBGP routes on (split horizon).
    await rr.configure(cs.map((_, i) => peerOf(4 + i, 64512, 3, { type: 'node-mesh' })));
    await until('reflected routes withdrawn', async () => (await cs[0]!.rib()).size === 1);
    expect([...(await cs[0]!.rib()).keys()]).toEqual(['10.2.9.0/26']);
  });

  it('graceful restart: kill -9 keeps routes at the helper (stale), restart re-syncs, twice in a row', async () => {
    const h = await start(7, 65007);
    await h.configure([peerOf(8, 65008, 7)]);
    await h.exports([]);
    let r = await start(8, 65008);
    await r.configure([peerOf(7, 65007, 8)]);
    await r.exports(['10.4.0.0/24', '10.4.1.0/24']);
    await until('helper learns', async () => (await h.rib()).size === 2);
    for (let round = 0; round < 2; round++) {
      r.kill('SIGKILL');
      await r.waitExit();
      await until('helper sees the session down', async () => (await h.peer(ip(8))).state !== 'Established');
      const kept = await h.rib();
      expect(kept.size).toBe(2);
      expect([...kept.values()].every((x) => x.stale)).toBe(true);
      r = await start(8, 65008);
      await r.configure([peerOf(7, 65007, 8)]);
      // second round: one prefix is gone after the restart and must be swept after End-of-RIB
      await r.exports(round === 0 ? ['10.4.0.0/24', '10.4.1.0/24'] : ['10.4.0.0/24']);
      await until('re-synced', async () => {
        const rib = await h.rib();
        return rib.size === (round === 0 ? 2 : 1) && [...rib.values()].every((x) => !x.stale);
      });
    }
  });

  it('non-graceful stop sends a Cease and the peer withdraws at once; live reconfiguration resets only what changed', async () => {
    const a = await start(9, 65009);
    const b = await start(10, 65010);
    const c = await start(11, 65011);
    await a.configure([peerOf(10, 65010, 9), peerOf(11, 65011, 9)]);
    await b.configure([peerOf(9, 65009, 10)]);
    await c.configure([peerOf(9, 65009, 11)]);
    await a.exports([]);
    await b.exports(['10.5.0.0/24']);
    await c.exports(['10.5.1.0/24']);
    await until('both up', async () => (await a.status()).peers.every((p: any) => p.state === 'Established'));
    await until('a learns', async () => (await a.rib()).size === 2);
    const sinceB = (await a.peer(ip(10))).since;
    // keepOriginalNextHop is no OPEN field: no reset; removing c closes only c.
    await a.configure([peerOf(10, 65010, 9, { keepOriginalNextHop: true })]);
    await sleep(500);
    expect((await a.status()).peers.map((p: any) => p.address)).toEqual([ip(10)]);
    expect((await a.peer(ip(10))).since).toBe(sinceB);
    await until('c sees a gone', async () => (await c.peer(ip(9))).state !== 'Established');
    expect((await a.rib()).has('10.5.1.0/24')).toBe(false);
    await b.call('stop', { graceful: false });
    await until('a withdraws b routes', async () => (await a.rib()).size === 0);
    expect((await a.peer(ip(10))).info).toMatch(/Cease/);
  });

  it('eBGP transit: next hop self by default, keepOriginalNextHop applied live without a reset; exportLearnedWithin limits transit', async () => {
    const a = await start(16, 65016);
    const b = await start(17, 65017);
    const c = await start(18, 65018);
    await a.configure([peerOf(17, 65017, 16), peerOf(18, 65018, 16)]);
    await b.configure([peerOf(16, 65016, 17)]);
    await c.configure([peerOf(16, 65016, 18)]);
    await a.exports([]);
    await b.exports(['10.8.0.0/24', '10.9.0.0/24']);
    await c.exports([]);
    await until('c learns via a', async () => (await c.rib()).size === 2);
    expect((await c.rib()).get('10.8.0.0/24')).toMatchObject({ nextHop: ip(16), asPath: [65016, 65017] });
    const since = (await a.peer(ip(18))).since;
    await a.configure([peerOf(17, 65017, 16), peerOf(18, 65018, 16, { keepOriginalNextHop: true })]);
    await until('next hop kept', async () => (await c.rib()).get('10.8.0.0/24')?.nextHop === ip(17));
    expect((await a.peer(ip(18))).since).toBe(since);
    // Calico exports only what lies in enabled pools: 10.9.0.0/24 is not passed on any more
    await a.configure([peerOf(17, 65017, 16), peerOf(18, 65018, 16, { keepOriginalNextHop: true })], { exportLearnedWithin: ['10.8.0.0/16'] });
    await until('transit limited', async () => (await c.rib()).size === 1);
    expect((await c.rib()).has('10.8.0.0/24')).toBe(true);
  });

  it('a session to a peer that is not configured there yet comes up once it is (held, not reset)', async () => {
    const a = await start(12, 65012);
    const b = await start(13, 65013);
    await a.configure([peerOf(13, 65013, 12)]);
    await a.exports(['10.6.0.0/24']);
    await b.exports([]);
    await sleep(1500);
    await b.configure([peerOf(12, 65012, 13, { passive: true })]);
    await until('b learns', async () => (await b.rib()).size === 1, 15_000);
  });
});
