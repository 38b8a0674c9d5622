// Three hosts (netns) on an underlay: a and b share 192.168.1.0/24 (a bridge in the router),
// c sits on 192.168.2.0/24 behind the router. Pools are VXLAN CrossSubnet: a↔b go direct,
// a↔c through vxlan.calico. Each host runs the real managers fed by computeRoutes; pods (netns
// with Calico's 169.254.1.1 gateway trick) exchange UDP echoes over IPv4 and IPv6.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetNs, requireRoot, vethPair } from '../netns.js';
import { computeRoutes, type RouteCalcInput } from '../../agent/calc/routes.js';
import { InterfaceManager, IpipManager, NetnsHost, RouteManager, VxlanManager, detectHostMtu } from '../../routes/index.js';
import type { Resource } from '../../datastore/index.js';
import { echo, eventually, newNs, routesOf, startEcho } from './helpers.js';

requireRoot();

interface Host {
  name: 'a' | 'b' | 'c';
  ns: NetNs;
  pod: NetNs;
  iface: string;
  pod4: string;
  pod6: string;
  rm: RouteManager;
  im: InterfaceManager;
  vx: VxlanManager;
  nh: NetnsHost;
}

const HOSTS = {
  a: { ip4: '192.168.1.10/24', ip6: 'fd00:1::10/64', gw4: '192.168.1.1', gw6: 'fd00:1::1', vtep4: '10.65.0.1', vtep6: 'fd00:65::1', pod4: '10.65.0.7', pod6: 'fd00:65::7', block4: '10.65.0.0/26', block6: 'fd00:65::/122', n: 'a' },
  b: { ip4: '192.168.1.11/24', ip6: 'fd00:1::11/64', gw4: '192.168.1.1', gw6: 'fd00:1::1', vtep4: '10.65.1.1', vtep6: 'fd00:65::1:1', pod4: '10.65.1.7', pod6: 'fd00:65::1:7', block4: '10.65.1.0/26', block6: 'fd00:65::1:0/122', n: 'b' },
  c: { ip4: '192.168.2.12/24', ip6: 'fd00:2::12/64', gw4: '192.168.2.1', gw6: 'fd00:2::1', vtep4: '10.65.2.1', vtep6: 'fd00:65::2:1', pod4: '10.65.2.7', pod6: 'fd00:65::2:7', block4: '10.65.2.0/26', block6: 'fd00:65::2:0/122', n: 'c' },
} as const;

const all: NetNs[] = [];
const hosts: Host[] = [];
const cleanup: (() => Promise<void>)[] = [];

function input(nodeName: string): RouteCalcInput {
  const nodes: Resource[] = Object.entries(HOSTS).map(([name, h], i) => ({
    apiVersion: 'projectcalico.org/v3',
    kind: 'Node',
    metadata: { name },
    spec: {
      bgp: { ipv4Address: h.ip4, ipv6Address: h.ip6 },
      ipv4VXLANTunnelAddr: h.vtep4,
      vxlanTunnelMACAddr: `66:00:00:00:00:0${i + 1}`,
      ipv6VXLANTunnelAddr: h.vtep6,
      vxlanTunnelMACAddrV6: `66:00:00:00:01:0${i + 1}`,
    },
  }));
  const affs: Resource[] = Object.entries(HOSTS).flatMap(([name, h]) =>
    [h.block4, h.block6].map((cidr) => ({ apiVersion: 'projectcalico.org/v3', kind: 'BlockAffinity', metadata: { name: `${name}-${cidr}` }, spec: { node: name, cidr, state: 'confirmed' } })),
  );
  const h = HOSTS[nodeName as 'a'];
  return {
    nodeName,
    nodes,
    pools: [
      { apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: 'v4' }, spec: { cidr: '10.65.0.0/16', vxlanMode: 'CrossSubnet', ipipMode: 'Never' } },
      { apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: 'v6' }, spec: { cidr: 'fd00:65::/48', vxlanMode: 'CrossSubnet', ipipMode: 'Never' } },
    ],
    blockAffinities: affs,
    localEndpoints: [
      {
        apiVersion: 'projectcalico.org/v3',
        kind: 'WorkloadEndpoint',
        metadata: { name: `pod-${nodeName}`, namespace: 'default' },
        spec: { node: nodeName, interfaceName: `cali00000000${nodeName}01`, ipNetworks: [`${h.pod4}/32`, `${h.pod6}/128`] },
      },
    ],
    bgpEnabled: false,
  };
}


beforeAll(async () => {
  const router = await newNs();
  all.push(router);
  await router.exec('ip', ['link', 'add', 'br0', 'type', 'bridge']);
  await router.exec('ip', ['addr', 'add', '192.168.1.1/24', 'dev', 'br0']);
  await router.exec('ip', ['-6', 'addr', 'add', 'fd00:1::1/64', 'dev', 'br0', 'nodad']);
  await router.exec('ip', ['link', 'set', 'br0', 'up']);
  await router.exec('sysctl', ['-qw', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']);
  for (const name of ['a', 'b', 'c'] as const) {
    const h = HOSTS[name];
    const ns = await newNs();
    const pod = await newNs();
    all.push(ns, pod);
    if (name === 'c') {
      await vethPair(ns, 'eth0', [h.ip4, h.ip6], router, 'c0', ['192.168.2.1/24', 'fd00:2::1/64']);
    } else {
      await vethPair(ns, 'eth0', [h.ip4, h.ip6], router, `${name}0`, null);
      await router.exec('ip', ['link', 'set', `${name}0`, 'master', 'br0']);
    }
    await ns.exec('ip', ['route', 'add', 'default', 'via', h.gw4]);
    await ns.exec('ip', ['-6', 'route', 'add', 'default', 'via', h.gw6]);
    // the pod: the CNI plugin's part, done by hand
    const iface = `cali00000000${name}01`;
    await vethPair(ns, iface, null, pod, 'eth0', [`${h.pod4}/32`, `${h.pod6}/128`]);
    await pod.exec('ip', ['route', 'add', '169.254.1.1', 'dev', 'eth0', 'scope', 'link']);
    await pod.exec('ip', ['route', 'add', 'default', 'via', '169.254.1.1', 'dev', 'eth0']);
    const ll = (await ns.exec('ip', ['-6', '-o', 'addr', 'show', 'dev', iface, 'scope', 'link'])).stdout.match(/inet6 (fe80::[0-9a-f:]+)/)![1];
    await pod.exec('ip', ['-6', 'route', 'add', 'default', 'via', ll, 'dev', 'eth0']);
    await startEcho(pod);

    const nh = new NetnsHost(ns.name);
    const rm = new RouteManager({ host: nh, resyncIntervalMs: 0 });
    await rm.start();
    const im = new InterfaceManager({ host: nh, routeManager: rm });
    await im.start();
    const vx = new VxlanManager({ host: nh, routeManager: rm });
    cleanup.push(async () => {
      await vx.stop();
      await rm.stop();
      await nh.close();
    });
    hosts.push({ name, ns, pod, iface, pod4: h.pod4, pod6: h.pod6, rm, im, vx, nh });
  }
  for (const h of hosts) {
    const out = computeRoutes({ ...input(h.name), hostMtu: detectHostMtu(h.rm.allLinks()) });
    expect(out.errors).toEqual([]);
    await h.vx.apply({ v4: out.vxlan, v6: out.vxlanV6 });
    await h.rm.setDesired(out.routes);
  }
}, 60_000);

afterAll(async () => {
  for (const c of cleanup.splice(0).reverse()) await c().catch(() => undefined);
  for (const ns of all.splice(0).reverse()) await ns.destroy();
});

describe('two-subnet cluster over VXLAN CrossSubnet', () => {
  it('same-subnet peers get direct routes, other subnets go through vxlan.calico onlink (v4 and v6)', async () => {
    const a = hosts[0];
    await eventually(async () => (await routesOf(a.ns, 80, 4)).length === 4, 5000, 'routes on a');
    const v4 = await routesOf(a.ns, 80, 4);
    expect(v4).toEqual(
      [
        '10.65.0.7 dev cali00000000a01 scope link',
        '10.65.1.0/26 via 192.168.1.11 dev eth0',
        '10.65.2.0/26 via 10.65.2.1 dev vxlan.calico onlink',
        'blackhole 10.65.0.0/26',
      ].sort(),
    );
    const v6 = (await routesOf(a.ns, 80, 6)).join('\n');
    expect(v6).toMatch(/fd00:65::1:0\/122 via fd00:1::11 dev eth0/);
    expect(v6).toMatch(/fd00:65::2:0\/122 via fd00:65::2:1 dev vxlan-v6\.calico .*onlink/);
    // what the kernel holds matches exactly: a full resync sends nothing but its three dumps
    await a.rm.settled();
    const sent = a.rm.status().messagesSent;
    await a.rm.resync();
    expect(a.rm.status().messagesSent - sent).toBe(3);
    expect(a.rm.status().inSync).toBe(true);
    const link = (await a.ns.exec('ip', ['-d', 'link', 'show', 'vxlan.calico'])).stdout;
    expect(link).toMatch(/mtu 1450 /);
    expect(link).toMatch(/vxlan id 4096 local 192\.168\.1\.10 dev eth0 .*dstport 4789/);
    expect(link).toMatch(/nolearning/);
    expect((await a.ns.exec('ip', ['-d', 'link', 'show', 'vxlan-v6.calico'])).stdout).toMatch(/mtu 1430 /);
    expect((await a.ns.exec('ip', ['neigh', 'show', 'dev', 'vxlan.calico'])).stdout).toMatch(/10\.65\.2\.1 lladdr 66:00:00:00:00:03 PERMANENT/);
    expect((await a.ns.exec('bridge', ['fdb', 'show', 'dev', 'vxlan.calico'])).stdout).toMatch(/66:00:00:00:00:03 dst 192\.168\.2\.12 self permanent/);
  });

  it('configures workload interfaces as Calico does', async () => {
    const a = hosts[0];
    const read = async (p: string) => (await a.ns.exec('cat', [`/proc/sys/${p}`])).stdout.trim();
    expect(await read(`net/ipv4/conf/${a.iface}/proxy_arp`)).toBe('1');
    expect(await read(`net/ipv4/neigh/${a.iface}/proxy_delay`)).toBe('0');
    expect(await read(`net/ipv4/conf/${a.iface}/forwarding`)).toBe('1');
    expect(await read(`net/ipv4/conf/${a.iface}/rp_filter`)).toBe('2');
    expect(await read(`net/ipv4/conf/${a.iface}/route_localnet`)).toBe('1');
    expect(await read(`net/ipv6/conf/${a.iface}/proxy_ndp`)).toBe('1');
    expect(await read(`net/ipv6/conf/${a.iface}/accept_ra`)).toBe('0');
    expect(a.im.status().configured).toBe(1);
  });

  it('pods exchange traffic: direct to the same subnet, through VXLAN across subnets, IPv4 and IPv6', async () => {
    const [a, b, c] = hosts;
    for (const [from, to] of [
      [a, b.pod4],
      [a, c.pod4],
      [c, a.pod4],
      [c, b.pod4],
      [a, b.pod6],
      [a, c.pod6],
      [c, b.pod6],
    ] as const) {
      await eventually(() => echo(from.pod, to), 8000, `UDP echo ${from.name}-pod → ${to}`);
    }
    // the probe can fail: nobody answers at an unused address of c's block
    expect(await echo(a.pod, '10.65.2.99')).toBe(false);
    // the cross-subnet packets really went through the tunnel
    const stats = (await a.ns.exec('ip', ['-s', 'link', 'show', 'vxlan.calico'])).stdout;
    const tx = Number(stats.split('TX:')[1].split('\n')[1].trim().split(/\s+/)[1]);
    expect(tx).toBeGreaterThan(0);
  });

  it('restores a deleted VXLAN device and its routes', async () => {
    const a = hosts[0];
    await a.ns.exec('ip', ['link', 'del', 'vxlan.calico']);
    await eventually(async () => (await routesOf(a.ns, 80, 4)).includes('10.65.2.0/26 via 10.65.2.1 dev vxlan.calico onlink'), 8000, 'vxlan route back');
    await eventually(() => echo(a.pod, hosts[2].pod4), 8000, 'echo through the new device');
  });

  it('a node that leaves loses its neighbour and FDB entries; they come back with it', async () => {
    const a = hosts[0];
    const out = computeRoutes({ ...input('a'), hostMtu: 1500 });
    const index = async () => (await a.ns.exec('ip', ['-o', 'link', 'show', 'vxlan.calico'])).stdout.split(':')[0];
    const before = await index();
    const without = { ...out.vxlan!, peers: out.vxlan!.peers.filter((p) => p.node !== 'c') };
    await a.vx.apply({ v4: without, v6: out.vxlanV6 });
    expect((await a.ns.exec('ip', ['neigh', 'show', 'dev', 'vxlan.calico'])).stdout).not.toMatch(/10\.65\.2\.1/);
    expect((await a.ns.exec('bridge', ['fdb', 'show', 'dev', 'vxlan.calico'])).stdout).not.toMatch(/66:00:00:00:00:03/);
    expect((await a.ns.exec('ip', ['neigh', 'show', 'dev', 'vxlan.calico'])).stdout).toMatch(/10\.65\.1\.1 lladdr 66:00:00:00:00:02 PERMANENT/);
    await a.vx.apply({ v4: out.vxlan, v6: out.vxlanV6 });
    expect((await a.ns.exec('bridge', ['fdb', 'show', 'dev', 'vxlan.calico'])).stdout).toMatch(/66:00:00:00:00:03 dst 192\.168\.2\.12/);
    await eventually(() => echo(a.pod, hosts[2].pod4), 8000, 'echo after the peer came back');
    // the device itself was left as it was (same parameters: not recreated)
    expect(await index()).toBe(before);
  });

  it('IPIP: a missing ipip module is a clear error; the tunl0 routes wait and everything else keeps working', async () => {
    const a = hosts[0];
    const ipip = new IpipManager({ host: a.nh });
    const st = await ipip.apply({ device: 'tunl0', mtu: 1480, pools: ['ipip-pool'] });
    ipip.stop();
    expect(st.needed).toBe(true);
    expect(st.available).toBe(false);
    expect(st.error).toMatch(/IPIP pool ipip-pool needs the ipip kernel module, not available: /);
    const out = computeRoutes(input('a'));
    await a.rm.setDesired([...out.routes, { dst: '10.66.0.0/26', type: 'unicast', via: '192.168.2.12', dev: 'tunl0', onlink: true }]);
    expect(a.rm.status().waitingForInterface).toBe(1);
    expect(a.rm.status().programmed).toBe(out.routes.length);
    expect(await echo(a.pod, hosts[2].pod4)).toBe(true);
  });
});
