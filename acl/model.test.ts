import { describe, expect, it } from 'vitest';
import { convertCalicoPolicy, convertK8sPolicy, PolicyError, comparePolicies } from './model.js';
import { chainName, renderRule, Names, defaultRenderConfig, type SetRef } from './render.js';
import { parseSelector } from './selector.js';

const k8s = (spec: any, ns = 'prod') => convertK8sPolicy({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'p', namespace: ns }, spec });
const cal = (spec: any, ns?: string) =>
  convertCalicoPolicy(
    { apiVersion: 'projectcalico.org/v3', kind: ns ? 'NetworkPolicy' : 'GlobalNetworkPolicy', metadata: ns ? { name: 'p', namespace: ns } : { name: 'p' }, spec },
    !ns,
  );

describe('Kubernetes NetworkPolicy conversion', () => {
  it('selects k8s pods of its namespace; default types Ingress only', () => {
    const p = k8s({ podSelector: { matchLabels: { app: 'db' } } });
    expect(p.id).toBe('knp/prod/p');
    expect(p.order).toBe(1000);
    expect(p.selector).toBe('(projectcalico.org/namespace == "prod" && projectcalico.org/orchestrator == "k8s" && app == "db")');
    expect(p.ingress).toEqual([]);
    expect(p.egress).toBeUndefined();
  });
  it('egress rules make Egress a type too; explicit policyTypes win', () => {
    expect(k8s({ podSelector: {}, egress: [{}] }).egress).toHaveLength(1);
    expect(k8s({ podSelector: {}, egress: [{}] }).ingress).toEqual([]);
    const e = k8s({ podSelector: {}, policyTypes: ['Egress'], ingress: [{}] });
    expect(e.ingress).toBeUndefined();
    expect(e.egress).toEqual([]);
  });
  it('peers: podSelector is namespaced, namespaceSelector is prefixed, both AND, ipBlock with except', () => {
    const p = k8s({
      podSelector: {},
      ingress: [
        {
          from: [
            { podSelector: { matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['x', 'a'] }] } },
            { namespaceSelector: {} },
            { namespaceSelector: { matchLabels: { env: 'prod' } }, podSelector: { matchLabels: { app: 'web' } } },
            { ipBlock: { cidr: '10.0.0.0/8', except: ['10.1.0.0/16'] } },
          ],
        },
      ],
    });
    const r = p.ingress!;
    expect(r.map((x) => x.src.selector)).toEqual([
      '(projectcalico.org/namespace == "prod" && projectcalico.org/orchestrator == "k8s" && tier not in {"a", "x"})',
      '(has(projectcalico.org/namespace) && projectcalico.org/orchestrator == "k8s")',
      '(pcns.env == "prod" && projectcalico.org/orchestrator == "k8s" && app == "web")',
      undefined,
    ]);
    expect(r[3]!.src.nets).toEqual(['10.0.0.0/8']);
    expect(r[3]!.src.notNets).toEqual(['10.1.0.0/16']);
    expect(r.every((x) => x.action === 'Allow')).toBe(true);
  });
  it('ports: TCP default, endPort ranges, named ports, one rule per protocol', () => {
    const p = k8s({ podSelector: {}, ingress: [{ ports: [{ port: 80 }, { port: 'http' }, { protocol: 'UDP', port: 5000, endPort: 5010 }, { protocol: 'SCTP' }] }] });
    const r = p.ingress!;
    expect(r.map((x) => [x.protocol, x.dst.ports])).toEqual([
      ['tcp', [{ from: 80, to: 80 }, { name: 'http' }]],
      ['udp', [{ from: 5000, to: 5010 }]],
      ['sctp', []],
    ]);
  });
  it('rejects bad input naming the field', () => {
    expect(() => k8s({ podSelector: {}, ingress: [{ ports: [{ port: 9000, endPort: 80 }] }] })).toThrow(/spec.ingress\[0\].ports\[0\].endPort/);
    expect(() => k8s({ podSelector: { matchExpressions: [{ key: 'a', operator: 'Near' }] } })).toThrow(PolicyError);
    expect(() => k8s({ podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/33' } }] }] })).toThrow(/ipBlock.cidr/);
  });
});

describe('Calico policy conversion', () => {
  it('namespaced: applies-to and rule selectors limited to the namespace', () => {
    const p = cal({ selector: "app == 'db'", ingress: [{ action: 'Allow', source: { selector: "app == 'web'" } }, { action: 'Deny', source: { notSelector: "app == 'x'" } }] }, 'prod');
    expect(p.selector).toBe('(projectcalico.org/namespace == "prod" && app == "db")');
    expect(p.ingress![0]!.src.selector).toBe('(projectcalico.org/namespace == "prod" && app == "web")');
    // A notSelector alone still limits the rule to the namespace (Calico).
    expect(p.ingress![1]!.src.selector).toBe('projectcalico.org/namespace == "prod"');
    expect(p.ingress![1]!.src.notSelector).toBe('app == "x"');
  });
  it('namespaceSelector: pcns. prefix, all() = any namespace, global() = not namespaced', () => {
    const p = cal({
      ingress: [
        { action: 'Allow', source: { namespaceSelector: "team == 'a'", selector: 'has(x)' } },
        { action: 'Allow', source: { namespaceSelector: 'all()' } },
        { action: 'Allow', source: { namespaceSelector: 'global()' } },
      ],
    }, 'prod');
    expect(p.ingress!.map((r) => r.src.selector)).toEqual(['(pcns.team == "a" && has(x))', 'has(projectcalico.org/namespace)', '!has(projectcalico.org/namespace)']);
  });
  it('serviceAccounts: names and selector', () => {
    const p = cal({ ingress: [{ action: 'Allow', source: { serviceAccounts: { names: ['b', 'a'], selector: "role == 'x'" } } }] });
    expect(p.ingress![0]!.src.selector).toBe('(pcsa.role == "x" && projectcalico.org/serviceaccount in {"a", "b"})');
  });
  it('GlobalNetworkPolicy namespaceSelector narrows what it applies to', () => {
    expect(cal({ namespaceSelector: "env == 'prod'", selector: "app == 'x'" }).selector).toBe('(pcns.env == "prod" && app == "x")');
  });
  it('types default: Ingress, plus Egress with egress rules; Egress alone with only egress rules', () => {
    expect(cal({}).ingress).toEqual([]);
    expect(cal({}).egress).toBeUndefined();
    const e = cal({ egress: [{ action: 'Allow' }] });
    expect(e.ingress).toBeUndefined();
    expect(e.egress).toHaveLength(1);
  });
  it('protocols by name and number, ports and ranges, ICMP', () => {
    const p = cal({
      ingress: [
        { action: 'Allow', protocol: 6, destination: { ports: [80, '1000:2000', 'http'] } },
        { action: 'Allow', protocol: 'ICMPv6', icmp: { type: 128, code: 0 } },
        { action: 'Deny', notProtocol: 'UDPLite' },
      ],
    });
    expect(p.ingress![0]!.protocol).toBe('tcp');
    expect(p.ingress![0]!.dst.ports).toEqual([{ from: 80, to: 80 }, { from: 1000, to: 2000 }, { name: 'http' }]);
    expect(p.ingress![1]!.protocol).toBe('ipv6-icmp');
    expect(p.ingress![2]!.notProtocol).toBe('udplite');
  });
  it('rejects bad input naming the field', () => {
    expect(() => cal({ selector: "a = 'b'" })).toThrow(/spec.selector.*position 2/);
    expect(() => cal({ ingress: [{ action: 'Permit' }] })).toThrow(/spec.ingress\[0\].action/);
    expect(() => cal({ ingress: [{ action: 'Allow', destination: { ports: [80] } }] })).toThrow(/ports need protocol/);
    expect(() => cal({ ingress: [{ action: 'Allow', protocol: 'TCP', destination: { ports: ['90:80'] } }] })).toThrow(/empty/);
    expect(() => cal({ ingress: [{ action: 'Allow', source: { nets: ['10.0.0.300/32'] } }] })).toThrow(/source.nets\[0\]/);
    expect(() => cal({ ingress: [{ action: 'Allow', protocol: 'TCP', icmp: { type: 8 } }] })).toThrow(/icmp/);
  });
  it('orders by order (absent last), then name', () => {
    const a = cal({ order: 10 }, 'x');
    const b = { ...cal({}, 'x'), name: 'a' };
    const c = { ...cal({ order: 5 }, 'x'), name: 'z' };
    expect([a, b, c].sort(comparePolicies).map((p) => p.order)).toEqual([5, 10, undefined]);
  });
});

describe('rendering', () => {
  it('hashes chain names over 28 characters', () => {
    expect(chainName('pet-pi-', 'np.default.short')).toBe('pet-pi-np.default.short');
    const long = chainName('pet-pi-', 'np.some-namespace.a-very-long-policy-name');
    expect(long.length).toBe(28);
    expect(long.startsWith('pet-pi-_')).toBe(true);
  });
  it('splits more than 15 ports into multiport alternatives and skips other families', () => {
    const sets: SetRef[] = [];
    const ctx = { names: new Names('pet-'), family: 4 as const, config: defaultRenderConfig(), logPrefix: 'x', set: (r: SetRef) => (sets.push(r), 'S') };
    const ports = Array.from({ length: 20 }, (_, i) => ({ from: 1000 + i, to: 1000 + i }));
    const rules = renderRule({ action: 'Deny', protocol: 'tcp', src: { nets: [], notNets: [], ports: [], notPorts: [] }, dst: { nets: [], notNets: [], ports, notPorts: [] } }, ctx);
    expect(rules).toHaveLength(2);
    expect(rules[0]).toContain('--dports 1000,1001,1002,1003,1004,1005,1006,1007,1008,1009,1010,1011,1012,1013,1014 ');
    const v6only = renderRule({ action: 'Allow', src: { nets: ['fd00::/64'], notNets: [], ports: [], notPorts: [] }, dst: { nets: [], notNets: [], ports: [], notPorts: [] } }, ctx);
    expect(v6only).toEqual([]);
    const both = renderRule({ action: 'Allow', src: { nets: ['10.0.0.0/8', 'fd00::/64'], notNets: ['10.1.0.0/16'], ports: [], notPorts: [] }, dst: { nets: [], notNets: [], ports: [], notPorts: [] } }, ctx);
    expect(both[0]).toBe('-s 10.0.0.0/8 -m set ! --match-set S src -j MARK --set-xmark 0x10000/0x10000');
  });
  it('selector canonical form is the ipset identity', () => {
    expect(parseSelector("b == 'x' && a in {'2','1'}").toString()).toBe('(b == "x" && a in {"1", "2"})');
  });
});
