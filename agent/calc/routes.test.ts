import { describe, expect, it } from 'vitest';
import type { Resource } from '../../datastore/index.js';
import { computeRoutes, type RouteCalcInput } from './routes.js';

const node = (name: string, spec: Record<string, any>): Resource => ({ apiVersion: 'projectcalico.org/v3', kind: 'Node', metadata: { name }, spec });
const pool = (name: string, cidr: string, extra: Record<string, any> = {}): Resource => ({
  apiVersion: 'projectcalico.org/v3',
  kind: 'IPPool',
  metadata: { name },
  spec: { cidr, ipipMode: 'Never', vxlanMode: 'Never', ...extra },
});
const aff = (nodeName: string, cidr: string, state = 'confirmed'): Resource => ({
  apiVersion: 'projectcalico.org/v3',
  kind: 'BlockAffinity',
  metadata: { name: `${nodeName}-${cidr.replace(/[/:.]/g, '-')}` },
  spec: { node: nodeName, cidr, state },
});
const wep = (name: string, iface: string, ips: string[]): Resource => ({
  apiVersion: 'projectcalico.org/v3',
  kind: 'WorkloadEndpoint',
  metadata: { name, namespace: 'default' },
  spec: { node: 'a', interfaceName: iface, ipNetworks: ips },
});

// a and b share 192.168.1.0/24; c is on 192.168.2.0/24
const NODES = [
  node('a', { bgp: { ipv4Address: '192.168.1.10/24', ipv6Address: 'fd00:1::10/64' }, ipv4VXLANTunnelAddr: '10.65.0.1', vxlanTunnelMACAddr: '66:00:00:00:00:0a', ipv6VXLANTunnelAddr: 'fd00:65::1', vxlanTunnelMACAddrV6: '66:00:00:00:01:0a' }),
  node('b', { bgp: { ipv4Address: '192.168.1.11/24', ipv6Address: 'fd00:1::11/64' }, ipv4VXLANTunnelAddr: '10.65.1.1', vxlanTunnelMACAddr: '66:00:00:00:00:0b', ipv6VXLANTunnelAddr: 'fd00:65::1:1', vxlanTunnelMACAddrV6: '66:00:00:00:01:0b' }),
  node('c', { bgp: { ipv4Address: '192.168.2.12/24', ipv6Address: 'fd00:2::12/64' }, ipv4VXLANTunnelAddr: '10.65.2.1', vxlanTunnelMACAddr: '66:00:00:00:00:0c', ipv6VXLANTunnelAddr: 'fd00:65::2:1', vxlanTunnelMACAddrV6: '66:00:00:00:01:0c' }),
];
const AFFS = [aff('a', '10.65.0.0/26'), aff('b', '10.65.1.0/26'), aff('c', '10.65.2.0/26'), aff('c', '10.65.3.0/26', 'pending')];

function base(over: Partial<RouteCalcInput> = {}): RouteCalcInput {
  return {
    nodeName: 'a',
    nodes: NODES,
    pools: [pool('p4', '10.65.0.0/16')],
    blockAffinities: AFFS,
    localEndpoints: [wep('pod1', 'cali1111111111a', ['10.65.0.7/32']), wep('pod2', 'cali2222222222b', ['10.65.0.8'])],
    bgpEnabled: false,
    hostMtu: 1500,
    ...over,
  };
}

const byDst = (routes: { dst: string }[]) => Object.fromEntries(routes.map((r) => [r.dst, r]));

describe('computeRoutes', () => {
  it('local workloads get /32 scope link routes; local confirmed blocks a blackhole (or unreachable)', () => {
    const out = computeRoutes(base());
    const r = byDst(out.routes);
    expect(r['10.65.0.7/32']).toEqual({ dst: '10.65.0.7/32', type: 'unicast', dev: 'cali1111111111a', scope: 'link' });
    expect(r['10.65.0.8/32']).toMatchObject({ dev: 'cali2222222222b' });
    expect(r['10.65.0.0/26']).toEqual({ dst: '10.65.0.0/26', type: 'blackhole' });
    expect(computeRoutes(base({ localBlockRouteType: 'unreachable' })).routes.find((x) => x.dst === '10.65.0.0/26')?.type).toBe('unreachable');
    // a pending affinity is not a block of c's yet
    expect(r['10.65.3.0/26']).toBeUndefined();
  });

  it('no encapsulation, BGP disabled: same-subnet peers direct via the node address; others reported, not routed', () => {
    const out = computeRoutes(base());
    const r = byDst(out.routes);
    expect(r['10.65.1.0/26']).toEqual({ dst: '10.65.1.0/26', type: 'unicast', via: '192.168.1.11' });
    expect(r['10.65.2.0/26']).toBeUndefined();
    expect(out.errors.join('\n')).toMatch(/10\.65\.2\.0\/26: node c \(192\.168\.2\.12\) is not on this node's subnet/);
    expect(out.vxlan).toBeUndefined();
    expect(out.ipipNeeded).toBe(false);
  });

  it('VXLAN CrossSubnet: same subnet direct, other subnets through vxlan.calico onlink; device plan with peers and MTU', () => {
    const out = computeRoutes(base({ pools: [pool('p4', '10.65.0.0/16', { vxlanMode: 'CrossSubnet' })] }));
    const r = byDst(out.routes);
    expect(r['10.65.1.0/26']).toEqual({ dst: '10.65.1.0/26', type: 'unicast', via: '192.168.1.11' });
    expect(r['10.65.2.0/26']).toEqual({ dst: '10.65.2.0/26', type: 'unicast', via: '10.65.2.1', dev: 'vxlan.calico', onlink: true });
    expect(out.vxlan).toEqual({
      device: 'vxlan.calico',
      family: 4,
      vni: 4096,
      port: 4789,
      mtu: 1450,
      vtepIp: '10.65.0.1',
      mac: '66:00:00:00:00:0a',
      localIp: '192.168.1.10',
      peers: [
        { node: 'b', vtepIp: '10.65.1.1', mac: '66:00:00:00:00:0b', nodeIp: '192.168.1.11' },
        { node: 'c', vtepIp: '10.65.2.1', mac: '66:00:00:00:00:0c', nodeIp: '192.168.2.12' },
      ],
    });
    expect(out.podMtu).toBe(1450);
    expect(out.errors).toEqual([]);
  });

  it('VXLAN Always: every peer through the tunnel; configured MTU, VNI and port win', () => {
    const out = computeRoutes(
      base({ pools: [pool('p4', '10.65.0.0/16', { vxlanMode: 'Always' })], felixConfig: { vxlanMTU: 1400, vxlanVNI: 10, vxlanPort: 8472 } }),
    );
    const r = byDst(out.routes);
    expect(r['10.65.1.0/26']).toMatchObject({ via: '10.65.1.1', dev: 'vxlan.calico', onlink: true });
    expect(out.vxlan).toMatchObject({ mtu: 1400, vni: 10, port: 8472 });
  });

  it('VXLAN with BGP on: the datastore route wins over a BGP-learned one for the same block', () => {
    const out = computeRoutes(
      base({
        bgpEnabled: true,
        pools: [pool('p4', '10.65.0.0/16', { vxlanMode: 'CrossSubnet' })],
        bgpRoutes: [
          { prefix: '10.65.2.0/26', nextHop: '192.168.2.12' },
          { prefix: '10.65.0.0/26', nextHop: '192.168.1.11' }, // our own block, learned back
          { prefix: '172.20.0.0/16', nextHop: '192.168.1.1' }, // external (ToR)
        ],
      }),
    );
    const r = byDst(out.routes);
    expect(r['10.65.2.0/26']).toMatchObject({ via: '10.65.2.1', dev: 'vxlan.calico', onlink: true });
    expect(r['10.65.0.0/26']).toEqual({ dst: '10.65.0.0/26', type: 'blackhole' });
    expect(r['172.20.0.0/16']).toEqual({ dst: '172.20.0.0/16', type: 'unicast', via: '192.168.1.1' });
  });

  it('IPIP CrossSubnet over BGP: same subnet direct, others via tunl0 onlink; computed without the device', () => {
    const out = computeRoutes(
      base({
        bgpEnabled: true,
        pools: [pool('p4', '10.65.0.0/16', { ipipMode: 'CrossSubnet' })],
        bgpRoutes: [
          { prefix: '10.65.1.0/26', nextHop: '192.168.1.11' },
          { prefix: '10.65.2.0/26', nextHop: '192.168.2.12' },
          { prefix: '10.65.9.9/32', nextHop: '192.168.2.12' },
        ],
      }),
    );
    const r = byDst(out.routes);
    expect(r['10.65.1.0/26']).toEqual({ dst: '10.65.1.0/26', type: 'unicast', via: '192.168.1.11' });
    expect(r['10.65.2.0/26']).toEqual({ dst: '10.65.2.0/26', type: 'unicast', via: '192.168.2.12', dev: 'tunl0', onlink: true });
    expect(r['10.65.9.9/32']).toMatchObject({ via: '192.168.2.12', dev: 'tunl0', onlink: true });
    expect(out.ipipNeeded).toBe(true);
    expect(out.ipip).toEqual({ device: 'tunl0', mtu: 1480, tunnelAddr: undefined, pools: ['p4'] });
    expect(out.podMtu).toBe(1480);
  });

  it('IPIP Always: even same-subnet peers through tunl0; BGP on means no datastore routes for non-VXLAN pools', () => {
    const out = computeRoutes(
      base({ bgpEnabled: true, pools: [pool('p4', '10.65.0.0/16', { ipipMode: 'Always' })], bgpRoutes: [{ prefix: '10.65.1.0/26', nextHop: '192.168.1.11' }] }),
    );
    const r = byDst(out.routes);
    expect(r['10.65.1.0/26']).toEqual({ dst: '10.65.1.0/26', type: 'unicast', via: '192.168.1.11', dev: 'tunl0', onlink: true });
    expect(r['10.65.2.0/26']).toBeUndefined(); // not learned over BGP yet
  });

  it('no BGP and no affinities: routes from Kubernetes Nodes podCIDRs (host-gw), addresses from InternalIP', () => {
    const k8s = (name: string, cidr: string, ip: string): Resource => ({
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name },
      spec: { podCIDRs: [cidr] },
      status: { addresses: [{ type: 'InternalIP', address: ip }] },
    });
    const out = computeRoutes(
      base({ blockAffinities: [], kubernetesNodes: [k8s('a', '10.244.0.0/24', '192.168.1.10'), k8s('b', '10.244.1.0/24', '192.168.1.11'), k8s('d', '10.244.3.0/24', '192.168.1.13')] }),
    );
    const r = byDst(out.routes);
    expect(r['10.244.0.0/24']).toEqual({ dst: '10.244.0.0/24', type: 'blackhole' });
    expect(r['10.244.1.0/24']).toEqual({ dst: '10.244.1.0/24', type: 'unicast', via: '192.168.1.11' });
    // d has no Calico Node: its address comes from the Kubernetes Node
    expect(r['10.244.3.0/24']).toEqual({ dst: '10.244.3.0/24', type: 'unicast', via: '192.168.1.13' });
  });

  it('IPv6: /128 workload routes, blackholed local blocks, vxlan-v6.calico with MTU −70', () => {
    const out = computeRoutes(
      base({
        pools: [pool('p6', 'fd00:65::/48', { vxlanMode: 'CrossSubnet' })],
        blockAffinities: [aff('a', 'fd00:65::/122'), aff('b', 'fd00:65::1:0/122'), aff('c', 'fd00:65::2:0/122')],
        localEndpoints: [wep('pod1', 'cali1111111111a', ['fd00:65::7/128'])],
      }),
    );
    const r = byDst(out.routes);
    expect(r['fd00:65::7/128']).toEqual({ dst: 'fd00:65::7/128', type: 'unicast', dev: 'cali1111111111a' });
    expect(r['fd00:65::/122']).toEqual({ dst: 'fd00:65::/122', type: 'blackhole' });
    expect(r['fd00:65::1:0/122']).toEqual({ dst: 'fd00:65::1:0/122', type: 'unicast', via: 'fd00:1::11' });
    expect(r['fd00:65::2:0/122']).toEqual({ dst: 'fd00:65::2:0/122', type: 'unicast', via: 'fd00:65::2:1', dev: 'vxlan-v6.calico', onlink: true });
    expect(out.vxlanV6).toMatchObject({ device: 'vxlan-v6.calico', mtu: 1430, vtepIp: 'fd00:65::1', localIp: 'fd00:1::10', vni: 4096 });
    expect(out.vxlan).toBeUndefined();
  });

  it('bad input is reported by name and the rest still computed', () => {
    const out = computeRoutes(
      base({
        localEndpoints: [wep('bad', 'cali1111111111a', ['10.65.0.300/32']), wep('good', 'cali2222222222b', ['10.65.0.8/32'])],
        bgpEnabled: true,
        bgpRoutes: [{ prefix: 'nonsense', nextHop: '192.168.1.11' }],
        pools: [pool('p4', '10.65.0.0/16', { vxlanMode: 'Always' })],
        nodes: [...NODES.slice(0, 2), node('c', { bgp: { ipv4Address: '192.168.2.12/24' } })],
      }),
    );
    expect(out.errors.join('\n')).toMatch(/WorkloadEndpoint default\/bad: invalid ipNetworks entry "10\.65\.0\.300\/32"/);
    expect(out.errors.join('\n')).toMatch(/BGP route "nonsense"/);
    expect(out.errors.join('\n')).toMatch(/node c has no ipv4VXLANTunnelAddr/);
    expect(out.routes.map((r) => r.dst)).toEqual(['10.65.0.0/26', '10.65.0.8/32', '10.65.1.0/26']);
  });

  it('is deterministic and sorted', () => {
    const a = computeRoutes(base({ pools: [pool('p4', '10.65.0.0/16', { vxlanMode: 'Always' })] }));
    const b = computeRoutes(base({ pools: [pool('p4', '10.65.0.0/16', { vxlanMode: 'Always' })], blockAffinities: [...AFFS].reverse(), nodes: [...NODES].reverse() }));
    expect(b).toEqual(a);
  });

  it('IPIP with BGP disabled: remote blocks from the datastore through tunl0 across subnets, direct on the same subnet', () => {
    const out = computeRoutes(base({ pools: [pool('p4', '10.65.0.0/16', { ipipMode: 'CrossSubnet' })] }));
    const r = byDst(out.routes);
    expect(r['10.65.1.0/26']).toEqual({ dst: '10.65.1.0/26', type: 'unicast', via: '192.168.1.11' });
    expect(r['10.65.2.0/26']).toEqual({ dst: '10.65.2.0/26', type: 'unicast', via: '192.168.2.12', dev: 'tunl0', onlink: true });
    expect(out.ipipNeeded).toBe(true);
    // FelixConfiguration ipipEnabled: false turns IPIP off (and the cross-subnet block is then unroutable)
    const off = computeRoutes(base({ pools: [pool('p4', '10.65.0.0/16', { ipipMode: 'CrossSubnet' })], felixConfig: { ipipEnabled: false } }));
    expect(off.ipipNeeded).toBe(false);
    expect(byDst(off.routes)['10.65.2.0/26']).toBeUndefined();
  });

  it('a disabled pool keeps routing its existing blocks, without encapsulation', () => {
    const out = computeRoutes(base({ pools: [pool('p4', '10.65.0.0/16', { vxlanMode: 'Always', disabled: true })] }));
    expect(out.vxlan).toBeUndefined();
    expect(byDst(out.routes)['10.65.1.0/26']).toEqual({ dst: '10.65.1.0/26', type: 'unicast', via: '192.168.1.11' });
  });
});
