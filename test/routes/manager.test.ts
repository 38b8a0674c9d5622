// RouteManager against a real kernel, each test in its own network namespace.
import { afterEach, describe, expect, it } from 'vitest';
import { requireRoot, vethPair, type NetNs } from '../netns.js';
import { NetnsHost, RouteManager, type DesiredRoute } from '../../routes/index.js';
import { metricsRegistry } from '../../agent/metrics.js';
import { eventually, manager, newNs, routesOf } from './helpers.js';

requireRoot();

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

async function setup(): Promise<{ ns: NetNs; peer: NetNs }> {
  const ns = await newNs();
  const peer = await newNs();
  cleanups.push(() => ns.destroy(), () => peer.destroy());
  // an "underlay" NIC and a workload-like interface
  await vethPair(ns, 'eth0', ['192.168.50.1/24', 'fd00:50::1/64'], peer, 'eth0', ['192.168.50.2/24', 'fd00:50::2/64']);
  await vethPair(ns, 'cali0123456789a', null, peer, 'pod0', null);
  return { ns, peer };
}

async function start(ns: NetNs, protocol = 80): Promise<{ rm: RouteManager; host: NetnsHost }> {
  const m = await manager(ns, { protocol });
  cleanups.push(async () => {
    await m.rm.stop();
    await m.host.close();
  });
  return m;
}

const V4: DesiredRoute[] = [
  { dst: '10.65.0.7/32', type: 'unicast', dev: 'cali0123456789a' },
  { dst: '10.65.0.0/26', type: 'blackhole' },
  { dst: '10.65.1.0/26', type: 'unicast', via: '192.168.50.2', dev: 'eth0' },
  { dst: '10.65.2.0/26', type: 'unicast', via: '10.66.0.9', dev: 'eth0', onlink: true, mtu: 1400 },
  { dst: '10.65.3.0/26', type: 'unreachable' },
  { dst: '10.65.4.0/26', type: 'unicast', via: '192.168.50.2', table: 100 },
];
const V6: DesiredRoute[] = [
  { dst: 'fd00:65::7/128', type: 'unicast', dev: 'cali0123456789a' },
  { dst: 'fd00:65::/122', type: 'blackhole' },
  { dst: 'fd00:65::1:0/122', type: 'unicast', via: 'fd00:50::2', dev: 'eth0' },
  { dst: 'fd00:65::3:0/122', type: 'unreachable' },
];

const EXPECT_V4 = [
  '10.65.0.7 dev cali0123456789a scope link',
  'blackhole 10.65.0.0/26',
  '10.65.1.0/26 via 192.168.50.2 dev eth0',
  '10.65.2.0/26 via 10.66.0.9 dev eth0 onlink mtu 1400',
  'unreachable 10.65.3.0/26',
  '10.65.4.0/26 via 192.168.50.2 dev eth0 table 100',
];

describe('RouteManager', () => {
  it('programs exactly the desired set into an empty netns, IPv4 and IPv6, and a second run changes nothing', async () => {
    const { ns } = await setup();
    const { rm } = await start(ns);
    await rm.setDesired([...V4, ...V6]);
    const v4 = await routesOf(ns, 80, 4);
    expect(v4.map((l) => l.replace('', '').replace(/ linkdown/, ''))).toEqual(
      [...EXPECT_V4].sort(),
    );
    const v6 = await routesOf(ns, 80, 6);
    expect(v6.length).toBe(4);
    expect(v6.join('\n')).toMatch(/fd00:65::7 dev cali0123456789a/);
    expect(v6.join('\n')).toMatch(/blackhole fd00:65::\/122/);
    expect(v6.join('\n')).toMatch(/fd00:65::1:0\/122 via fd00:50::2 dev eth0/);
    expect(v6.join('\n')).toMatch(/unreachable fd00:65::3:0\/122/);
    const st = rm.status();
    expect(st.programmed).toBe(10);
    expect(st.inSync).toBe(true);
    const sent = st.messagesSent;
    await rm.setDesired([...V6, ...V4].reverse());
    await rm.resync();
    // the resync costs three dumps and nothing else
    expect(rm.status().messagesSent - sent).toBe(3);
    expect(await routesOf(ns, 80, 4)).toEqual(v4);
    expect(await routesOf(ns, 80, 6)).toEqual(v6);
  });

  it('repairs drift within one event, IPv4 and IPv6, and leaves routes of other protocols alone', async () => {
    const { ns } = await setup();
    const { rm } = await start(ns);
    await rm.setDesired([...V4, ...V6]);
    const v4 = await routesOf(ns, 80, 4);
    const v6 = await routesOf(ns, 80, 6);
    // a route of another protocol inside our block range, and one on a desired prefix's neighbour
    await ns.exec('ip', ['route', 'add', '10.65.0.64/26', 'via', '192.168.50.2', 'proto', 'static']);
    await ns.exec('ip', ['-6', 'route', 'add', 'fd00:65::2:0/122', 'via', 'fd00:50::2', 'proto', 'static']);
    const resyncs = rm.status().resyncs;
    // delete ours, change ours, and add a wrong one with our protocol
    await ns.exec('ip', ['route', 'del', '10.65.0.0/26', 'proto', '80']);
    await ns.exec('ip', ['route', 'replace', '10.65.1.0/26', 'via', '192.168.50.3', 'dev', 'eth0', 'proto', '80']);
    await ns.exec('ip', ['route', 'add', '10.99.0.0/24', 'via', '192.168.50.2', 'proto', '80']);
    // ours by protocol, on a desired prefix but at another metric / TOS: not what we want either
    await ns.exec('ip', ['route', 'add', '10.65.4.0/26', 'via', '192.168.50.2', 'proto', '80', 'metric', '7']);
    await ns.exec('ip', ['route', 'add', '10.98.0.0/24', 'tos', '0x10', 'via', '192.168.50.2', 'proto', '80']);
    await ns.exec('ip', ['-6', 'route', 'del', 'fd00:65::/122', 'proto', '80']);
    await ns.exec('ip', ['-6', 'route', 'add', 'fd00:99::/64', 'via', 'fd00:50::2', 'proto', '80']);
    await eventually(async () => JSON.stringify(await routesOf(ns, 80, 4)) === JSON.stringify(v4) && JSON.stringify(await routesOf(ns, 80, 6)) === JSON.stringify(v6), 5000, 'drift repaired');
    // repaired from events, not by a periodic resync (disabled in these tests)
    expect(rm.status().resyncs).toBe(resyncs);
    expect(await routesOf(ns, 'static', 4)).toEqual(['10.65.0.64/26 via 192.168.50.2 dev eth0']);
    expect((await routesOf(ns, 'static', 6)).join()).toMatch(/fd00:65::2:0\/122 via fd00:50::2 dev eth0/);
  });

  it('never replaces a route of another protocol on a desired prefix, and takes the place when it goes', async () => {
    const { ns } = await setup();
    await ns.exec('ip', ['route', 'add', '10.65.1.0/26', 'via', '192.168.50.3', 'proto', 'static']);
    const { rm } = await start(ns);
    await rm.setDesired(V4);
    expect(await routesOf(ns, 'static', 4)).toEqual(['10.65.1.0/26 via 192.168.50.3 dev eth0']);
    expect(rm.status().conflicts.map((c) => c.route)).toEqual(['10.65.1.0/26']);
    await ns.exec('ip', ['route', 'del', '10.65.1.0/26', 'proto', 'static']);
    await eventually(async () => (await routesOf(ns, 80, 4)).includes('10.65.1.0/26 via 192.168.50.2 dev eth0'), 5000, 'route after conflict');
    await rm.settled();
    expect(rm.status().conflicts).toEqual([]);
  });

  it('programs a workload route when its interface appears after the endpoint, IPv4 and IPv6', async () => {
    const ns = await newNs();
    const peer = await newNs();
    cleanups.push(() => ns.destroy(), () => peer.destroy());
    const { rm } = await start(ns);
    const routes: DesiredRoute[] = [
      { dst: '10.65.0.9/32', type: 'unicast', dev: 'calia1b2c3d4e5f' },
      { dst: 'fd00:65::9/128', type: 'unicast', dev: 'calia1b2c3d4e5f' },
    ];
    await rm.setDesired(routes);
    expect(rm.status().waitingForInterface).toBe(2);
    expect(await routesOf(ns, 80, 4)).toEqual([]);
    await vethPair(ns, 'calia1b2c3d4e5f', null, peer, 'eth0', null);
    await eventually(async () => (await routesOf(ns, 80, 4)).length === 1 && (await routesOf(ns, 80, 6)).length === 1, 5000, 'workload routes');
    expect((await routesOf(ns, 80, 4))[0]).toMatch(/^10\.65\.0\.9 dev calia1b2c3d4e5f scope link/);
    expect((await routesOf(ns, 80, 6))[0]).toMatch(/^fd00:65::9 dev calia1b2c3d4e5f/);
    await rm.settled();
    expect(rm.status().waitingForInterface).toBe(0);
    // the interface goes and comes back: the route follows
    await ns.exec('ip', ['link', 'del', 'calia1b2c3d4e5f']);
    await eventually(async () => (await routesOf(ns, 80, 4)).length === 0, 5000, 'routes gone with the link');
    await vethPair(ns, 'calia1b2c3d4e5f', null, peer, 'eth1', null);
    await eventually(async () => (await routesOf(ns, 80, 4)).length === 1 && (await routesOf(ns, 80, 6)).length === 1, 5000, 'workload routes back');
  });

  it('restart: a new manager removes nothing until it has the full desired set, then only the stale routes', async () => {
    const { ns } = await setup();
    const first = await start(ns);
    await first.rm.setDesired([...V4, ...V6]);
    await first.rm.stop();
    const before4 = await routesOf(ns, 80, 4);
    const before6 = await routesOf(ns, 80, 6);
    const { rm } = await start(ns);
    expect(rm.status().programmed).toBe(0);
    // events while waiting: a link flap and an unrelated route must not trigger removals
    await ns.exec('ip', ['route', 'add', '10.99.0.0/24', 'via', '192.168.50.2', 'proto', 'static']);
    await new Promise((r) => setTimeout(r, 300));
    await rm.settled();
    expect(await routesOf(ns, 80, 4)).toEqual(before4);
    expect(await routesOf(ns, 80, 6)).toEqual(before6);
    expect(rm.status().messagesSent).toBe(3); // the three start-up dumps
    // the full set, minus one v4 and one v6 route: exactly those two go
    await rm.setDesired([...V4.slice(1), ...V6.slice(1)]);
    expect(await routesOf(ns, 80, 4)).toEqual(before4.filter((l) => !l.startsWith('10.65.0.7 ')));
    expect(await routesOf(ns, 80, 6)).toEqual(before6.filter((l) => !l.startsWith('fd00:65::7 ')));
    expect(await routesOf(ns, 'static', 4)).toEqual(['10.99.0.0/24 via 192.168.50.2 dev eth0']);
  });

  it('reports invalid desired routes and programs the rest', async () => {
    const { ns } = await setup();
    const { rm } = await start(ns);
    await rm.setDesired([
      { dst: '10.65.0.300/32', type: 'unicast', dev: 'eth0' },
      { dst: '10.65.5.0/26', type: 'unicast', via: 'fd00::1' },
      { dst: '10.65.6.0/26', type: 'blackhole' },
      { dst: '10.65.6.1/26', type: 'unreachable' }, // the same prefix once canonical: the first wins
    ]);
    expect(await routesOf(ns, 80, 4)).toEqual(['blackhole 10.65.6.0/26']);
    expect(rm.status().errors.join('\n')).toMatch(/invalid destination CIDR/);
    expect(rm.status().errors.join('\n')).toMatch(/not an IPv4 address/);
    expect(rm.status().errors.join('\n')).toMatch(/two desired routes for 10\.65\.6\.0\/26: blackhole 10\.65\.6\.0\/26 and unreachable 10\.65\.6\.0\/26; keeping the first/);
  });

  it('periodic resync repairs drift whose event was missed, and the metrics follow', async () => {
    const { ns } = await setup();
    const host = new NetnsHost(ns.name);
    const rm = new RouteManager({ host, resyncIntervalMs: 300 });
    cleanups.push(async () => {
      await rm.stop();
      await host.close();
    });
    await rm.start();
    await rm.setDesired(V4);
    const before = await routesOf(ns, 80, 4);
    // lose the route events (as after a socket overflow), then drift
    (rm as any).events.membership([7, 11], false);
    await host.readSysctl('net/ipv4/ip_forward'); // a round trip: the broker has left the groups
    await ns.exec('ip', ['route', 'del', '10.65.0.0/26', 'proto', '80']);
    await eventually(async () => JSON.stringify(await routesOf(ns, 80, 4)) === JSON.stringify(before), 5000, 'resync repair');
    expect(rm.status().resyncs).toBeGreaterThanOrEqual(1);
    const metrics = await metricsRegistry.metrics();
    expect(metrics).toMatch(/petrel_routes_programmed \d+/);
    expect(metrics).toMatch(/petrel_route_resync_total [1-9]/);
    expect(metrics).toMatch(/petrel_route_sync_duration_seconds_count [1-9]/);
    expect(metrics).toMatch(/petrel_route_netlink_errors_total \d+/);
  });

  it('thousands of refused routes in one pass: reported and counted, the rest programmed, nothing lost', async () => {
    const { ns } = await setup();
    const { rm } = await start(ns);
    const bad: DesiredRoute[] = [];
    for (let i = 0; i < 3000; i++) bad.push({ dst: `10.70.${i >> 8}.${i & 255}/32`, type: 'unicast', via: '10.250.0.1' }); // gateway not on any link
    await rm.setDesired([...V4, ...bad]);
    const st = rm.status();
    expect(st.programmed).toBe(V4.length);
    expect(st.failed).toBe(3000);
    expect(st.failures.length).toBe(50);
    expect(st.failures[0].error).toBe('ENETUNREACH');
    expect(st.errors.join('\n')).toMatch(/3000 route operations failed in one pass/);
    expect((await routesOf(ns, 80, 4)).length).toBe(V4.length);
    // the refused ones are not retried on every event, only by a full resync
    await rm.settled(); // (the re-read after a large apply)
    const sent = rm.status().messagesSent;
    await rm.applyDelta([{ dst: '10.65.9.0/26', type: 'blackhole' }], []);
    expect(rm.status().messagesSent - sent).toBe(1);
  });
});
