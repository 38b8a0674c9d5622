import { describe, expect, it } from 'vitest';
import type { Resource } from '../../datastore/index.js';
import { computeExports, computeSpeakerConfig, parseAsn, parseDuration, parsePeerIP, type BgpCalcInput, type BgpCalcResult } from './bgp.js';

const res = (kind: string, name: string, spec: object, labels?: Record<string, string>): Resource => ({
  apiVersion: 'projectcalico.org/v3',
  kind,
  metadata: { name, ...(labels ? { labels } : {}) },
  spec: spec as any,
});
const node = (name: string, bgp: object, labels?: Record<string, string>) => res('Node', name, { bgp }, labels);
const peer = (name: string, spec: object) => res('BGPPeer', name, { keepOriginalNextHop: false, sourceAddress: 'UseNodeIP', ...spec });
const bgpConfig = (name: string, spec: object) => res('BGPConfiguration', name, spec);

const NODES = [
  node('a', { ipv4Address: '192.168.1.10/24', ipv6Address: 'fd00:1::10/64' }, { rack: 'r1' }),
  node('b', { ipv4Address: '192.168.1.11/24', ipv6Address: 'fd00:1::11/64' }, { rack: 'r1' }),
  node('c', { ipv4Address: '192.168.1.9/24' }, { rack: 'r2', 'route-reflector': 'true' }),
];

function calc(over: Partial<BgpCalcInput> = {}): BgpCalcResult {
  const r = computeSpeakerConfig({ nodeName: 'a', nodes: NODES, bgpConfigurations: [], bgpPeers: [], ...over });
  if ('error' in r) throw new Error(r.error);
  return r;
}

describe('computeSpeakerConfig', () => {
  it('defaults: AS 64512, router id = node IPv4, port 179, full mesh per family, only the higher IP dials', () => {
    const r = calc();
    expect(r).toMatchObject({ asNumber: 64512, routerId: '192.168.1.10', listenPort: 179 });
    expect(r.peers).toEqual([
      { address: '192.168.1.11', asNumber: 64512, type: 'node-mesh', sourceAddress: '192.168.1.10', passive: true },
      // "192.168.1.9" sorts after "192.168.1.10" as text (Calico compares the strings)
      { address: '192.168.1.9', asNumber: 64512, type: 'node-mesh', sourceAddress: '192.168.1.10', passive: true },
      { address: 'fd00:1::11', asNumber: 64512, type: 'node-mesh', sourceAddress: 'fd00:1::10', passive: true },
    ]);
    const rb = calc({ nodeName: 'b' });
    expect(rb.peers.find((p) => p.address === '192.168.1.10')!.passive).toBeUndefined();
  });

  it('AS from the node, else BGPConfiguration default; listenPort with node.<name> override', () => {
    const nodes = [node('a', { ipv4Address: '192.168.1.10/24', asNumber: 65010 }), node('b', { ipv4Address: '192.168.1.11/24' })];
    const cfgs = [bgpConfig('default', { asNumber: 65000, listenPort: 1790 }), bgpConfig('node.a', { listenPort: 11179 })];
    const r = calc({ nodes, bgpConfigurations: cfgs });
    expect(r.asNumber).toBe(65010);
    expect(r.listenPort).toBe(11179);
    expect(r.peers[0]).toMatchObject({ address: '192.168.1.11', asNumber: 65000 });
    expect(calc({ nodes, nodeName: 'b', bgpConfigurations: cfgs }).listenPort).toBe(1790);
  });

  it('mesh disabled; global, node and nodeSelector BGPPeers with Calico fields', () => {
    const cfgs = [bgpConfig('default', { nodeToNodeMeshEnabled: false })];
    const peers = [
      peer('tor', { peerIP: '192.168.1.1', asNumber: 65100, keepOriginalNextHop: true, maxRestartTime: '2m', keepaliveTime: '10s', ttlSecurity: 1 }),
      peer('only-b', { node: 'b', peerIP: '192.168.1.2', asNumber: 65101 }),
      peer('rack1', { nodeSelector: "rack == 'r1'", peerIP: '[fd00:1::1]:1790', asNumber: '1.10', password: { secretKeyRef: { name: 'bgp', key: 'pw' } } }),
      peer('nosrc', { node: 'a', peerIP: '10.0.0.1', asNumber: 65102, sourceAddress: 'None' }),
    ];
    const r = calc({ bgpConfigurations: cfgs, bgpPeers: peers, resolveSecret: (ref) => (ref.name === 'bgp' && ref.key === 'pw' ? 's3cret' : undefined) });
    expect(r.peers).toEqual([
      { address: '10.0.0.1', asNumber: 65102, type: 'node-specific' },
      {
        address: '192.168.1.1',
        asNumber: 65100,
        type: 'global',
        sourceAddress: '192.168.1.10',
        keepOriginalNextHop: true,
        maxRestartTime: 120,
        keepaliveTime: 10,
        ttlSecurity: 1,
      },
      { address: 'fd00:1::1', asNumber: 65546, port: 1790, type: 'node-specific', sourceAddress: 'fd00:1::10', password: 's3cret' },
    ]);
    // node c is not in rack r1 and not b: only the global peer
    expect(calc({ nodeName: 'c', bgpConfigurations: cfgs, bgpPeers: peers, resolveSecret: () => 'x' }).peers.map((p) => p.address)).toEqual(['192.168.1.1']);
  });

  it('unresolvable secret skips the peer with a warning; bad selectors and peerIPs are warnings, not crashes', () => {
    const r = calc({
      bgpConfigurations: [bgpConfig('default', { nodeToNodeMeshEnabled: false })],
      bgpPeers: [
        peer('p1', { peerIP: '192.168.1.1', asNumber: 65100, password: { secretKeyRef: { name: 'x', key: 'y' } } }),
        peer('p2', { nodeSelector: 'rack ==', peerIP: '192.168.1.2', asNumber: 65100 }),
        peer('p3', { peerIP: '300.1.1.1', asNumber: 65100 }),
        peer('p4', { peerSelector: '&&', asNumber: 65100 }),
      ],
    });
    expect(r.peers).toEqual([]);
    expect(r.warnings).toHaveLength(4);
    expect(r.warnings.join('\n')).toMatch(/p1.*secret x\/y not found/);
  });

  it('route reflectors: peerSelector peers take their node AS and cluster ID; same-AS peers of an RR with another cluster ID are its clients', () => {
    const nodes = [
      node('rr1', { ipv4Address: '10.0.0.1/24', routeReflectorClusterID: '224.0.0.1' }, { 'route-reflector': 'true' }),
      node('rr2', { ipv4Address: '10.0.0.2/24', routeReflectorClusterID: '224.0.0.1' }, { 'route-reflector': 'true' }),
      node('w1', { ipv4Address: '10.0.0.11/24' }),
      node('w2', { ipv4Address: '10.0.0.12/24' }),
    ];
    const cfgs = [bgpConfig('default', { nodeToNodeMeshEnabled: false })];
    const peers = [
      peer('peer-with-rr', { nodeSelector: 'all()', peerSelector: "has(route-reflector)" }),
    ];
    const rr1 = calc({ nodeName: 'rr1', nodes, bgpConfigurations: cfgs, bgpPeers: peers });
    // Calico fills in the reverse of a peerSelector peering (confd's "symmetry between Calico
    // nodes"): the one documented BGPPeer gives the RRs sessions to every node; rr2 has the same
    // cluster ID, so it is a peer, not a client.
    expect(rr1.peers).toEqual([
      { address: '10.0.0.11', asNumber: 64512, type: 'rr-client', sourceAddress: '10.0.0.1', passive: true, routeReflectorClient: true, clusterId: '224.0.0.1' },
      { address: '10.0.0.12', asNumber: 64512, type: 'rr-client', sourceAddress: '10.0.0.1', passive: true, routeReflectorClient: true, clusterId: '224.0.0.1' },
      { address: '10.0.0.2', asNumber: 64512, type: 'node-specific', sourceAddress: '10.0.0.1', passive: true },
    ]);
    // A worker is not selected by the peerSelector: no reverse peering toward the other worker.
    const w1 = calc({ nodeName: 'w1', nodes, bgpConfigurations: cfgs, bgpPeers: peers });
    expect(w1.peers.map((p) => [p.address, p.type, p.passive ?? false])).toEqual([
      ['10.0.0.1', 'node-specific', false],
      ['10.0.0.2', 'node-specific', true], // "10.0.0.11" < "10.0.0.2" as text: 10.0.0.2 dials
    ]);
    // The usual Calico RR setup: RRs peer with every node.
    const all = [...peers, peer('rr-to-all', { nodeSelector: 'has(route-reflector)', peerSelector: 'all()' })];
    const rr1b = calc({ nodeName: 'rr1', nodes, bgpConfigurations: cfgs, bgpPeers: all });
    expect(rr1b.peers).toEqual([
      { address: '10.0.0.11', asNumber: 64512, type: 'rr-client', sourceAddress: '10.0.0.1', passive: true, routeReflectorClient: true, clusterId: '224.0.0.1' },
      { address: '10.0.0.12', asNumber: 64512, type: 'rr-client', sourceAddress: '10.0.0.1', passive: true, routeReflectorClient: true, clusterId: '224.0.0.1' },
      { address: '10.0.0.2', asNumber: 64512, type: 'node-specific', sourceAddress: '10.0.0.1', passive: true },
    ]);
    // An eBGP peer is never a client.
    const ext = calc({ nodeName: 'rr1', nodes, bgpConfigurations: cfgs, bgpPeers: [peer('x', { peerIP: '10.0.0.99', asNumber: 65001 })] });
    expect(ext.peers[0]!.type).toBe('global');
  });

  it('mesh password and max restart time; exportLearnedWithin = enabled exportable pools', () => {
    const r = calc({
      bgpConfigurations: [bgpConfig('default', { nodeMeshPassword: { secretKeyRef: { name: 'm', key: 'k' } }, nodeMeshMaxRestartTime: '90s' })],
      resolveSecret: () => 'meshpw',
      ipPools: [
        res('IPPool', 'p1', { cidr: '10.65.0.0/16' }),
        res('IPPool', 'p2', { cidr: '10.66.0.0/16', disabled: true }),
        res('IPPool', 'p3', { cidr: '10.67.0.0/16', disableBGPExport: true }),
      ],
    });
    expect(r.peers[0]).toMatchObject({ password: 'meshpw', maxRestartTime: 90 });
    expect(r.exportLearnedWithin).toEqual(['10.65.0.0/16']);
  });

  it('errors for unknown nodes and nodes without BGP addresses; IPv6-only node gets a stable router id', () => {
    expect(computeSpeakerConfig({ nodeName: 'zz', nodes: NODES, bgpConfigurations: [], bgpPeers: [] })).toEqual({ error: 'Node zz not found' });
    expect(computeSpeakerConfig({ nodeName: 'n', nodes: [res('Node', 'n', {})], bgpConfigurations: [], bgpPeers: [] })).toHaveProperty('error');
    const v6 = computeSpeakerConfig({ nodeName: 'n', nodes: [node('n', { ipv6Address: 'fd00::1/64' })], bgpConfigurations: [], bgpPeers: [] }) as BgpCalcResult;
    expect(v6.routerId).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect(v6.routerId).toBe((computeSpeakerConfig({ nodeName: 'n', nodes: [node('n', { ipv6Address: 'fd00::1/64' })], bgpConfigurations: [], bgpPeers: [] }) as BgpCalcResult).routerId);
  });

  it('parsers', () => {
    expect(parseDuration('1m30s')).toBe(90);
    expect(parseDuration('250ms')).toBe(0.25);
    expect(parseDuration('abc')).toBeUndefined();
    expect(parseAsn('1.10')).toBe(65546);
    expect(parseAsn(0)).toBeUndefined();
    expect(parsePeerIP('10.0.0.1:1790')).toEqual({ address: '10.0.0.1', port: 1790 });
    expect(parsePeerIP('[fd00::1]:179')).toEqual({ address: 'fd00::1', port: 179 });
    expect(parsePeerIP('fd00::1')).toEqual({ address: 'fd00::1' });
    expect(parsePeerIP('nonsense')).toBeUndefined();
  });
});

describe('computeExports', () => {
  const pools = [
    res('IPPool', 'p4', { cidr: '10.65.0.0/16' }),
    res('IPPool', 'p6', { cidr: 'fd00:65::/48' }),
    res('IPPool', 'off', { cidr: '10.70.0.0/16', disabled: true }),
    res('IPPool', 'noexp', { cidr: '10.71.0.0/16', disableBGPExport: true }),
  ];
  const aff = (node: string, cidr: string, state = 'confirmed') => res('BlockAffinity', `${node}-${cidr}`, { node, cidr, state, deleted: false });
  const wep = (node: string, ips: string[]) => res('WorkloadEndpoint', `w-${ips[0]}`, { node, ipNetworks: ips });

  it('confirmed affine blocks, /32s outside them, nothing outside exportable pools', () => {
    const r = computeExports({
      nodeName: 'a',
      ipPools: pools,
      blockAffinities: [
        aff('a', '10.65.1.0/26'),
        aff('a', '10.65.2.0/26', 'pending'),
        aff('b', '10.65.3.0/26'),
        aff('a', 'fd00:65::100/122'),
        aff('a', '10.70.0.0/26'),
        aff('a', '10.71.0.0/26'),
      ],
      workloadEndpoints: [
        wep('a', ['10.65.1.5/32']), // inside our block: covered
        wep('a', ['10.65.3.7/32', 'fd00:65::1:7/128']), // borrowed from b's block
        wep('b', ['10.65.9.9/32']), // other node
        wep('a', ['10.99.0.1/32']), // outside every pool
        wep('a', ['10.71.0.99/32']), // pool with disableBGPExport
      ],
    });
    expect(r.map((e) => e.prefix)).toEqual(['10.65.1.0/26', '10.65.3.7/32', 'fd00:65::100/122', 'fd00:65::1:7/128']);
  });

  it('Kubernetes podCIDRs when there are no affinities; service CIDRs from BGPConfiguration and the caller; communities', () => {
    const r = computeExports({
      nodeName: 'a',
      ipPools: pools,
      kubernetesNodes: [{ apiVersion: 'v1', kind: 'Node', metadata: { name: 'a' }, spec: { podCIDRs: ['10.65.8.0/24', 'fd00:65:0:8::/64'] } }],
      bgpConfigurations: [
        bgpConfig('default', {
          serviceClusterIPs: [{ cidr: '10.96.0.0/12' }],
          serviceExternalIPs: [{ cidr: '192.168.200.0/24' }],
          communities: [{ name: 'svc', value: '65000:300' }],
          prefixAdvertisements: [{ cidr: '10.96.0.0/12', communities: ['svc', '65000:301'] }],
        }),
      ],
      servicePrefixes: ['192.168.201.10'],
    });
    expect(r).toEqual([
      { prefix: '10.65.8.0/24' },
      { prefix: '10.96.0.0/12', communities: ['65000:300', '65000:301'] },
      { prefix: '192.168.200.0/24' },
      { prefix: '192.168.201.10/32' },
      { prefix: 'fd00:65:0:8::/64' },
    ]);
  });
});
