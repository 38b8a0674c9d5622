// RouteManager against a real kernel, each test in its own network namespace.
import { afterEach, describe, expect, it } from 'vitest';
import { requireRoot, vethPair, type NetNs } from '../netns.js';
import type { DesiredRoute, NetnsHost, RouteManager } from '../../routes/index.js';
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
    expect(v4.map((l) => l.replace(' proto 80', '').replace(/ linkdown/, ''))).toEqual(
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
});
