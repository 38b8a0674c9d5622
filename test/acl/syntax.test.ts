// Every rule shape the renderer can produce is accepted by iptables-restore / ip6tables-restore
// and ipset, and reads back without drift: one policy set using every feature, applied in a
// netns for IPv4 and IPv6, then re-read (a second apply must find nothing to change).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IptablesDataplane, type Exec } from '../../acl/index.js';
import { PolicyCalculator } from '../../agent/calc/policy.js';
import { profileFromNamespace, workloadEndpointFromPod } from '../../datastore/derive.js';
import type { DatastoreEvent, Resource } from '../../datastore/index.js';
import { NetNs, requireRoot } from '../netns.js';

requireRoot();

const NODE = 'ptac-node';
const cal = (kind: string, name: string, spec: any, namespace?: string): DatastoreEvent => ({
  type: 'update',
  kind: kind as any,
  key: namespace ? `${kind}/${namespace}/${name}` : `${kind}/${name}`,
  resource: { apiVersion: 'projectcalico.org/v3', kind, metadata: namespace ? { name, namespace } : { name }, spec } as Resource,
});

function events(): DatastoreEvent[] {
  const pod = (name: string, ips: string[], labels: Record<string, string>, ports: any[] = []): DatastoreEvent => {
    const w = workloadEndpointFromPod({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: 'prod', labels },
      spec: { nodeName: NODE, serviceAccountName: 'sa1', containers: [{ name: 'c', ports }] },
      status: { podIPs: ips.map((ip) => ({ ip })) },
    })!;
    return { type: 'update', kind: 'WorkloadEndpoint', key: `WorkloadEndpoint/prod/${w.metadata.name}`, resource: w };
  };
  const nsp = profileFromNamespace({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'prod', labels: { env: 'prod' } } });
  return [
    { type: 'update', kind: 'Profile', key: `Profile/${nsp.metadata.name}`, resource: nsp },
    pod('a', ['10.66.0.2', 'fd00:66::2'], { app: 'a' }, [{ name: 'http', containerPort: 8080 }, { name: 'dns', containerPort: 53, protocol: 'UDP' }]),
    pod('b', ['10.66.0.3', 'fd00:66::3'], { app: 'b' }),
    cal('IPPool', 'v4', { cidr: '10.66.0.0/16', natOutgoing: true }),
    cal('IPPool', 'v6', { cidr: 'fd00:66::/48', natOutgoing: true }),
    cal('IPPool', 'v4b', { cidr: '10.67.0.0/16' }),
    cal('GlobalNetworkSet', 'gns', { nets: ['192.168.50.0/24', 'fd00:50::/64'] }),
    cal('HostEndpoint', 'h', { node: NODE, interfaceName: 'eth9', expectedIPs: ['192.168.1.1'] }),
    cal('FelixConfiguration', 'default', { iptablesFilterDenyAction: 'Reject', logPrefix: 'petrel-test', failsafeInboundHostPorts: [{ protocol: 'TCP', port: 22, net: '10.0.0.0/8' }, { protocol: 'UDP', port: 68 }] }),
    cal(
      'GlobalNetworkPolicy',
      'everything',
      {
        order: 5,
        selector: 'all()',
        types: ['Ingress', 'Egress'],
        ingress: [
          { action: 'Log', protocol: 'TCP', source: { nets: ['10.0.0.0/8', 'fd00::/8'] } },
          { action: 'Allow', protocol: 'ICMP', icmp: { type: 8, code: 0 } },
          { action: 'Allow', protocol: 'ICMPv6', icmp: { type: 128 } },
          { action: 'Deny', protocol: 'ICMP', notICMP: { type: 0 } },
          { action: 'Allow', protocol: 'SCTP', destination: { ports: [9000, '9100:9200'] } },
          { action: 'Allow', protocol: 'UDPLite', destination: { notPorts: [1, '2:3'] } },
          { action: 'Deny', notProtocol: 'UDP', source: { notNets: ['10.1.0.0/16', '10.2.0.0/16', 'fd00:1::/64'] } },
          { action: 'Allow', protocol: 'TCP', source: { selector: "app == 'b'", ports: ['http'] }, destination: { ports: ['http', 443], notPorts: ['dns'] } },
          { action: 'Allow', protocol: 'UDP', destination: { ports: ['dns'], selector: "app == 'a'" } },
          { action: 'Allow', protocol: 'TCP', destination: { ports: Array.from({ length: 20 }, (_, i) => 2000 + i * 3) } },
          { action: 'Pass', source: { serviceAccounts: { names: ['sa1'], selector: "x == 'y'" }, namespaceSelector: 'global()' } },
          { action: 'Allow', ipVersion: 6, source: { notSelector: "app == 'a'" } },
          { action: 'Deny', ipVersion: 4, destination: { nets: ['192.168.50.0/24'], notNets: ['192.168.50.7/32'] } },
          { action: 'Allow', protocol: 58 },
        ],
        egress: [{ action: 'Deny', destination: { selector: 'has(projectcalico.org/namespace) && !has(x)' } }, { action: 'Allow' }],
      },
    ),
    { type: 'in-sync' },
  ];
}

describe('rendered rules are valid iptables/ip6tables/ipset input', () => {
  let ns: NetNs;
  const exec: Exec = (cmd, args, input) =>
    ns.exec(cmd, args, { input }).then(
      (x) => ({ code: 0, ...x }),
      (e: Error) => ({ code: 1, stdout: '', stderr: e.message }),
    );
  beforeAll(async () => {
    ns = await NetNs.create('ptac');
  });
  afterAll(async () => {
    await ns?.destroy();
  });

  it('applies every feature for both families and re-reads without drift', async () => {
    const calc = new PolicyCalculator({ nodeName: NODE, ipVersions: [4, 6] });
    calc.onEvents(events());
    expect(calc.status().errors).toEqual([]);
    const restores: string[] = [];
    const dp = new IptablesDataplane({ ipVersions: [4, 6], exec, refreshIntervalMs: 0, onRestore: (w) => restores.push(w) });
    await dp.apply(calc.desired);
    const v4 = (await ns.exec('iptables-save', ['-t', 'filter'])).stdout;
    const v6 = (await ns.exec('ip6tables-save', ['-t', 'filter'])).stdout;
    const nat4 = (await ns.exec('iptables-save', ['-t', 'nat'])).stdout;
    const nat6 = (await ns.exec('ip6tables-save', ['-t', 'nat'])).stdout;
    expect(v4).toMatch(/--icmp-type 8\/0/);
    expect(v6).toMatch(/--icmpv6-type 128/);
    expect(v6).not.toMatch(/--icmp-type/);
    expect(v4).toMatch(/REJECT --reject-with icmp-port-unreachable/);
    expect(v6).toMatch(/REJECT --reject-with icmp6-port-unreachable/);
    expect(v4).toMatch(/LOG --log-prefix "petrel-test/);
    expect(v4).toMatch(/-A pet-fh-eth9 .*-j pet-failsafe-in/);
    expect(v4).toMatch(/-A pet-failsafe-in -s 10.0.0.0\/8 -p tcp .*--dport 22/);
    expect(nat4).toMatch(/MASQUERADE/);
    expect(nat6).toMatch(/MASQUERADE/);
    const sets = (await ns.exec('ipset', ['save'])).stdout;
    expect(sets).toMatch(/family inet6/);
    expect(sets).toMatch(/add pet-6n:\S+ fd00:66::2,tcp:8080/);
    expect(sets).toMatch(/add pet-4n:\S+ 10.66.0.2,udp:53/);
    // Nothing to change on a fresh read.
    restores.length = 0;
    await dp.resync();
    expect(restores).toEqual([]);
  });
});
