// Real traffic through the policy dataplane: one lab (node netns + five pod netns), policy
// sets swapped between scenarios, every pod pair probed over TCP and UDP, each result compared
// with the scenario's truth table (Kubernetes e2e classics and Calico features).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireRoot } from '../netns.js';
import { PolicyLab, probeKey, type Probe } from './harness.js';

requireRoot();

const K8S = 'networking.k8s.io/v1';
const CAL = 'projectcalico.org/v3';

interface Peer {
  ns: string;
  name: string;
}
type Expect = (from: Peer, to: Peer, proto: 'tcp' | 'udp', port: number, family: 4 | 6) => boolean;

interface Scenario {
  name: string;
  policies: any[];
  /** probes beyond tcp/80 and udp/80 */
  extra?: Array<{ proto: 'tcp' | 'udp'; port: number }>;
  expect: Expect;
}

const pod = (s: string): Peer => ({ ns: s.split('/')[0]!, name: s.split('/')[1]! });
const is = (p: Peer, id: string) => `${p.ns}/${p.name}` === id;

const knp = (ns: string, name: string, spec: any) => ({ apiVersion: K8S, kind: 'NetworkPolicy', metadata: { name, namespace: ns }, spec });
const np = (ns: string, name: string, spec: any) => ({ apiVersion: CAL, kind: 'NetworkPolicy', metadata: { name, namespace: ns }, spec });
const gnp = (name: string, spec: any) => ({ apiVersion: CAL, kind: 'GlobalNetworkPolicy', metadata: { name }, spec });

const scenarios: Scenario[] = [
  { name: 'no policy: everything reachable (namespace profiles allow)', policies: [], expect: () => true },
  {
    name: 'k8s default-deny ingress in prod',
    policies: [knp('prod', 'deny-in', { podSelector: {}, policyTypes: ['Ingress'] })],
    expect: (_f, t) => t.ns !== 'prod',
  },
  {
    name: 'k8s default-deny egress in dev',
    policies: [knp('dev', 'deny-out', { podSelector: {}, policyTypes: ['Egress'] })],
    expect: (f) => f.ns !== 'dev',
  },
  {
    name: 'k8s allow db from web in the same namespace (pod selector)',
    policies: [knp('prod', 'db-from-web', { podSelector: { matchLabels: { app: 'db' } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: 'web' } } }] }] })],
    // dev/web has app=web too, but a bare podSelector means the policy's namespace only.
    expect: (f, t) => !is(t, 'prod/db') || is(f, 'prod/web'),
  },
  {
    name: 'k8s namespaceSelector with matchExpressions (env In [prod])',
    policies: [
      knp('prod', 'db-from-prod-envs', {
        podSelector: { matchLabels: { app: 'db' } },
        ingress: [{ from: [{ namespaceSelector: { matchExpressions: [{ key: 'env', operator: 'In', values: ['prod'] }] } }] }],
      }),
    ],
    expect: (f, t) => !is(t, 'prod/db') || f.ns === 'prod' || f.ns === 'ops',
  },
  {
    name: 'k8s namespaceSelector AND podSelector in one peer',
    policies: [
      knp('prod', 'db-from-mon', {
        podSelector: { matchLabels: { app: 'db' } },
        ingress: [{ from: [{ namespaceSelector: { matchLabels: { env: 'prod' } }, podSelector: { matchLabels: { app: 'mon' } } }] }],
      }),
    ],
    expect: (f, t) => !is(t, 'prod/db') || is(f, 'ops/mon'),
  },
  {
    name: 'k8s two peers are OR-ed (namespace team=b, or pod app=web here)',
    policies: [
      knp('prod', 'db-from-two', {
        podSelector: { matchLabels: { app: 'db' } },
        ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: 'b' } } }, { podSelector: { matchLabels: { app: 'web' } } }] }],
      }),
    ],
    expect: (f, t) => !is(t, 'prod/db') || f.ns === 'dev' || is(f, 'prod/web'),
  },
  {
    name: 'k8s ipBlock with except',
    policies: [
      knp('prod', 'db-ipblock', {
        podSelector: { matchLabels: { app: 'db' } },
        ingress: [{ from: [{ ipBlock: { cidr: '10.65.0.0/24', except: ['10.65.0.13/32'] } }] }],
      }),
    ],
    // The block is IPv4 only: over IPv6 nothing reaches the isolated pod.
    expect: (f, t, _p, _n, fam) => !is(t, 'prod/db') || (fam === 4 && !is(f, 'dev/client')),
  },
  {
    name: 'k8s named port resolved per destination pod (http-alt = 8080 on prod/db, 9000 on dev/web)',
    policies: [
      knp('prod', 'named', { podSelector: {}, ingress: [{ ports: [{ port: 'http-alt' }] }] }),
      knp('dev', 'named', { podSelector: {}, ingress: [{ ports: [{ port: 'http-alt' }] }] }),
    ],
    extra: [
      { proto: 'tcp', port: 8080 },
      { proto: 'tcp', port: 9000 },
    ],
    expect: (_f, t, proto, port) => {
      if (t.ns !== 'prod' && t.ns !== 'dev') return true;
      if (is(t, 'prod/db')) return proto === 'tcp' && port === 8080;
      if (is(t, 'dev/web')) return proto === 'tcp' && port === 9000;
      return false; // selected pods without that named port
    },
  },
  {
    name: 'k8s endPort range (9000-9001)',
    policies: [knp('prod', 'range', { podSelector: { matchLabels: { app: 'db' } }, ingress: [{ ports: [{ protocol: 'TCP', port: 9000, endPort: 9001 }] }] })],
    extra: [
      { proto: 'tcp', port: 9000 },
      { proto: 'tcp', port: 9001 },
      { proto: 'tcp', port: 9002 },
    ],
    expect: (_f, t, proto, port) => !is(t, 'prod/db') || (proto === 'tcp' && (port === 9000 || port === 9001)),
  },
  {
    name: 'k8s multiple policies are additive',
    policies: [
      knp('prod', 'a-web-tcp', { podSelector: { matchLabels: { app: 'db' } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: 'web' } } }], ports: [{ protocol: 'TCP', port: 80 }] }] }),
      knp('prod', 'b-client-udp', {
        podSelector: { matchLabels: { app: 'db' } },
        ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: 'b' } }, podSelector: { matchLabels: { app: 'client' } } }], ports: [{ protocol: 'UDP', port: 80 }] }],
      }),
    ],
    expect: (f, t, proto) => !is(t, 'prod/db') || (is(f, 'prod/web') && proto === 'tcp') || (is(f, 'dev/client') && proto === 'udp'),
  },
  {
    name: 'k8s policyTypes [Ingress, Egress] with only ingress rules isolates egress too',
    policies: [
      knp('prod', 'both', {
        podSelector: { matchLabels: { app: 'web' } },
        policyTypes: ['Ingress', 'Egress'],
        ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: 'ops' } } }] }],
      }),
    ],
    expect: (f, t) => !is(f, 'prod/web') && (!is(t, 'prod/web') || f.ns === 'ops'),
  },
  {
    name: 'k8s policyTypes [Egress] only: egress allow-list, ingress untouched',
    policies: [
      knp('dev', 'client-egress', {
        podSelector: { matchLabels: { app: 'client' } },
        policyTypes: ['Egress'],
        egress: [{ to: [{ namespaceSelector: { matchLabels: { env: 'prod' } }, podSelector: { matchLabels: { app: 'db' } } }], ports: [{ protocol: 'TCP', port: 80 }] }],
      }),
    ],
    expect: (f, t, proto) => !is(f, 'dev/client') || (is(t, 'prod/db') && proto === 'tcp'),
  },
  {
    name: 'k8s policyTypes omitted with egress rules: Ingress and Egress both isolated',
    policies: [knp('dev', 'implicit', { podSelector: { matchLabels: { app: 'web' } }, egress: [{ to: [{ podSelector: {} }] }] })],
    // egress only within dev; ingress to dev/web: nothing allowed.
    expect: (f, t) => !is(t, 'dev/web') && (!is(f, 'dev/web') || t.ns === 'dev'),
  },
  {
    name: 'calico order and Pass: Pass (order 10) skips the deny (order 100) to the namespace profile',
    policies: [
      gnp('pass-dev', { order: 10, selector: "projectcalico.org/namespace == 'prod'", types: ['Ingress'], ingress: [{ action: 'Pass', source: { namespaceSelector: "team == 'b'" } }] }),
      np('prod', 'deny-all', { order: 100, selector: 'all()', types: ['Ingress'], ingress: [{ action: 'Deny' }] }),
    ],
    expect: (f, t) => t.ns !== 'prod' || f.ns === 'dev',
  },
  {
    name: 'calico Deny (order 1) before Allow (order 2)',
    policies: [
      np('prod', 'deny-client', { order: 1, selector: 'all()', ingress: [{ action: 'Deny', source: { selector: "app == 'client'", namespaceSelector: 'all()' } }] }),
      np('prod', 'allow-all', { order: 2, selector: 'all()', ingress: [{ action: 'Allow' }] }),
    ],
    expect: (f, t) => t.ns !== 'prod' || !is(f, 'dev/client'),
  },
  {
    name: 'calico Allow (order 1) before Deny (order 2): the allow wins',
    policies: [
      np('prod', 'allow-all', { order: 1, selector: 'all()', ingress: [{ action: 'Allow' }] }),
      np('prod', 'deny-client', { order: 2, selector: 'all()', ingress: [{ action: 'Deny', source: { selector: "app == 'client'", namespaceSelector: 'all()' } }] }),
    ],
    expect: () => true,
  },
  {
    name: 'calico GlobalNetworkPolicy with namespaceSelector (env == prod: prod and ops)',
    policies: [
      gnp('protect-prod', {
        namespaceSelector: "env == 'prod'",
        types: ['Ingress'],
        ingress: [{ action: 'Deny', source: { namespaceSelector: "team == 'b'" } }, { action: 'Allow' }],
      }),
    ],
    expect: (f, t) => !(t.ns === 'prod' || t.ns === 'ops') || f.ns !== 'dev',
  },
  {
    name: 'calico notNets',
    policies: [np('prod', 'not-dev-ips', { selector: "app == 'db'", ingress: [{ action: 'Allow', source: { notNets: ['10.65.0.13/32', '10.65.0.14/32'] } }] })],
    // IPv4 exceptions do not match IPv6 sources.
    expect: (f, t, _p, _n, fam) => !is(t, 'prod/db') || f.ns !== 'dev' || fam === 6,
  },
  {
    name: 'calico serviceAccounts selector (trusted == yes)',
    policies: [
      gnp('sa-selector', { selector: "app == 'db'", ingress: [{ action: 'Allow', source: { serviceAccounts: { selector: "trusted == 'yes'" } } }] }),
    ],
    expect: (f, t) => !is(t, 'prod/db') || is(f, 'prod/web') || is(f, 'ops/mon'),
  },
  {
    name: 'calico serviceAccounts names',
    policies: [gnp('sa-names', { selector: "app == 'db'", ingress: [{ action: 'Allow', source: { serviceAccounts: { names: ['monitor'] } } }] })],
    expect: (f, t) => !is(t, 'prod/db') || is(f, 'ops/mon'),
  },
  {
    name: 'calico protocol UDP / notProtocol with named protocol numbers',
    policies: [
      np('prod', 'udp-only', { selector: "app == 'db'", ingress: [{ action: 'Allow', protocol: 17 }] }),
      np('prod', 'not-tcp', { selector: "app == 'web'", ingress: [{ action: 'Allow', notProtocol: 'TCP' }] }),
    ],
    expect: (_f, t, proto) => t.ns !== 'prod' || proto === 'udp',
  },
  {
    name: 'calico egress Log then Deny to TCP ports and nets, everything else allowed by profile',
    policies: [
      gnp('client-out', {
        selector: "app == 'client'",
        types: ['Egress'],
        egress: [
          { action: 'Log', protocol: 'TCP', destination: { nets: ['10.65.0.0/24'], ports: [80, '8000:8100'] } },
          { action: 'Deny', protocol: 'TCP', destination: { nets: ['10.65.0.0/24'], ports: [80, '8000:8100'] } },
          { action: 'Pass' },
        ],
      }),
    ],
    extra: [{ proto: 'tcp', port: 8080 }],
    expect: (f, _t, proto, _n, fam) => !is(f, 'dev/client') || proto === 'udp' || fam === 6,
  },
  {
    name: 'calico GlobalNetworkSet matched by a selector (deny from role == bad)',
    policies: [
      { apiVersion: CAL, kind: 'GlobalNetworkSet', metadata: { name: 'bad-ips', labels: { role: 'bad' } }, spec: { nets: ['10.65.0.13/32'] } },
      gnp('deny-bad', { selector: "projectcalico.org/namespace == 'prod'", ingress: [{ action: 'Deny', source: { selector: "role == 'bad'" } }, { action: 'Allow' }] }),
    ],
    expect: (f, t, _p, _n, fam) => t.ns !== 'prod' || !is(f, 'dev/client') || fam === 6,
  },
  {
    name: 'calico destination notPorts and ports on ingress',
    policies: [np('prod', 'not-80', { selector: "app == 'db'", ingress: [{ action: 'Allow', protocol: 'TCP', destination: { ports: ['8000:9001'], notPorts: [9000] } }] })],
    extra: [
      { proto: 'tcp', port: 8080 },
      { proto: 'tcp', port: 9000 },
      { proto: 'tcp', port: 9001 },
    ],
    expect: (_f, t, proto, port) => !is(t, 'prod/db') || (proto === 'tcp' && (port === 8080 || port === 9001)),
  },
];

describe('policy dataplane: real traffic between pods', () => {
  let lab: PolicyLab;
  beforeAll(async () => {
    lab = await PolicyLab.create({
      nodeName: 'ptac-node',
      namespaces: [
        { name: 'prod', labels: { env: 'prod', team: 'a' } },
        { name: 'dev', labels: { env: 'dev', team: 'b' } },
        { name: 'ops', labels: { env: 'prod', team: 'ops' } },
      ],
      serviceAccounts: [
        { ns: 'prod', name: 'web-sa', labels: { trusted: 'yes' } },
        { ns: 'ops', name: 'monitor', labels: { trusted: 'yes' } },
        { ns: 'dev', name: 'builder', labels: { trusted: 'no' } },
      ],
      pods: [
        { ns: 'prod', name: 'web', labels: { app: 'web' }, serviceAccount: 'web-sa' },
        { ns: 'prod', name: 'db', labels: { app: 'db' }, ports: [{ name: 'http-alt', containerPort: 8080 }] },
        { ns: 'dev', name: 'client', labels: { app: 'client' }, serviceAccount: 'builder' },
        { ns: 'dev', name: 'web', labels: { app: 'web' }, ports: [{ name: 'http-alt', containerPort: 9000 }] },
        { ns: 'ops', name: 'mon', labels: { app: 'mon' }, serviceAccount: 'monitor' },
      ],
      tcpPorts: [80, 8080, 9000, 9001, 9002],
      udpPorts: [80],
    });
    await lab.startDataplane();
  }, 120_000);
  afterAll(async () => {
    await lab?.destroy();
  });

  it('has at least 20 scenarios', () => {
    expect(scenarios.length).toBeGreaterThanOrEqual(20);
  });

  for (const sc of scenarios) {
    it(sc.name, async () => {
      await lab.setPolicies(sc.policies);
      expect(lab.lastApply()?.errors ?? []).toEqual([]);
      const ids = [...lab.pods.keys()];
      const ports: Array<{ proto: 'tcp' | 'udp'; port: number; family: 4 | 6 }> = [
        { proto: 'tcp', port: 80, family: 4 },
        { proto: 'udp', port: 80, family: 4 },
        { proto: 'tcp', port: 80, family: 6 },
        { proto: 'udp', port: 80, family: 6 },
        ...(sc.extra ?? []).map((e) => ({ ...e, family: 4 as const })),
      ];
      const probes: Probe[] = [];
      for (const from of ids) for (const to of ids) if (from !== to) for (const p of ports) probes.push({ from, to, ...p });
      const got = await lab.probe(probes);
      const diffs: string[] = [];
      for (const p of probes) {
        const want = sc.expect(pod(p.from), pod(p.to), p.proto, p.port, p.family ?? 4);
        if (got.get(probeKey(p)) !== want) diffs.push(`${probeKey(p)}: expected ${want ? 'allowed' : 'denied'}, got ${want ? 'denied' : 'allowed'}`);
      }
      expect(diffs).toEqual([]);
    }, 60_000);
  }
});
