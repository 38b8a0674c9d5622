import { describe, expect, it } from 'vitest';
import { computeServiceAdvertisement } from './services.js';

const bgpConfig = (spec: Record<string, unknown>) => ({
  apiVersion: 'projectcalico.org/v3',
  kind: 'BGPConfiguration',
  metadata: { name: 'default' },
  spec,
});
const svc = (name: string, spec: Record<string, unknown>, status: unknown = {}) => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: 'shop' },
  spec,
  status,
});
const slice = (svcName: string, endpoints: unknown[]) => ({
  apiVersion: 'discovery.k8s.io/v1',
  kind: 'EndpointSlice',
  metadata: { name: `${svcName}-abc`, namespace: 'shop', labels: { 'kubernetes.io/service-name': svcName } },
  addressType: 'IPv4',
  endpoints,
});
const cfg = bgpConfig({
  serviceClusterIPs: [{ cidr: '10.96.0.0/12' }],
  serviceExternalIPs: [{ cidr: '192.168.100.0/24' }],
  serviceLoadBalancerIPs: [{ cidr: '172.20.0.0/24' }],
});

describe('service advertisement', () => {
  it('advertises the configured ranges from every node, nothing else without config', () => {
    expect(
      computeServiceAdvertisement({ nodeName: 'n1', bgpConfigurations: [cfg], services: [], endpointSlices: [] }).prefixes,
    ).toEqual(['10.96.0.0/12', '172.20.0.0/24', '192.168.100.0/24']);
    expect(computeServiceAdvertisement({ nodeName: 'n1', bgpConfigurations: [], services: [], endpointSlices: [] }).prefixes).toEqual([]);
  });

  it('advertises /32s of a Local service only from nodes with a ready local endpoint', () => {
    const services = [
      svc('web', { type: 'LoadBalancer', clusterIP: '10.96.0.10', externalTrafficPolicy: 'Local', externalIPs: ['192.168.100.5', '8.8.8.8'] }, {
        loadBalancer: { ingress: [{ ip: '172.20.0.7' }] },
      }),
      svc('api', { clusterIP: '10.96.0.11', externalTrafficPolicy: 'Cluster', externalIPs: ['192.168.100.6'] }),
    ];
    const slices = [
      slice('web', [
        { addresses: ['10.244.0.5'], nodeName: 'n1', conditions: { ready: true } },
        { addresses: ['10.244.1.5'], nodeName: 'n2', conditions: { ready: false } },
      ]),
      slice('api', [{ addresses: ['10.244.0.6'], nodeName: 'n1', conditions: { ready: true } }]),
    ];
    const n1 = computeServiceAdvertisement({ nodeName: 'n1', bgpConfigurations: [cfg], services, endpointSlices: slices });
    // 8.8.8.8 is outside serviceExternalIPs: never advertised.
    expect(n1.prefixes).toEqual(['10.96.0.0/12', '10.96.0.10/32', '172.20.0.0/24', '172.20.0.7/32', '192.168.100.0/24', '192.168.100.5/32']);
    expect(n1.local.map((l) => l.service)).toEqual(['shop/web', 'shop/web', 'shop/web']);
    // n2's only endpoint is not ready: no /32s there; n3 has none.
    for (const node of ['n2', 'n3']) {
      const r = computeServiceAdvertisement({ nodeName: node, bgpConfigurations: [cfg], services, endpointSlices: slices });
      expect(r.prefixes).toEqual(['10.96.0.0/12', '172.20.0.0/24', '192.168.100.0/24']);
    }
  });

  it('advertises the cluster IP /32 of an internalTrafficPolicy Local service from endpoint nodes, and withdraws when the last goes', () => {
    const services = [svc('db', { clusterIP: '10.96.0.20', internalTrafficPolicy: 'Local' })];
    const with1 = computeServiceAdvertisement({
      nodeName: 'n1',
      bgpConfigurations: [cfg],
      services,
      endpointSlices: [slice('db', [{ addresses: ['10.244.0.9'], nodeName: 'n1', conditions: { ready: true } }])],
    });
    expect(with1.prefixes).toContain('10.96.0.20/32');
    const gone = computeServiceAdvertisement({ nodeName: 'n1', bgpConfigurations: [cfg], services, endpointSlices: [slice('db', [])] });
    expect(gone.prefixes).not.toContain('10.96.0.20/32');
  });

  it('reports an invalid range instead of advertising it', () => {
    const r = computeServiceAdvertisement({
      nodeName: 'n1',
      bgpConfigurations: [bgpConfig({ serviceClusterIPs: [{ cidr: '10.96.0.0/99' }] })],
      services: [],
      endpointSlices: [],
    });
    expect(r.prefixes).toEqual([]);
    expect(r.errors[0]).toContain('10.96.0.0/99');
  });
});
