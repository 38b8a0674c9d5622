import { describe, expect, it } from 'vitest';
import { PolicyCalculator } from '../agent/calc/policy.js';
import type { DatastoreEvent, Resource } from '../datastore/index.js';
import { profileFromNamespace, workloadEndpointFromPod } from '../datastore/derive.js';
import { LabelIndex } from './labelindex.js';
import { parseSelector } from './selector.js';

const NODE = 'n1';
function pod(ns: string, name: string, ip: string, labels: Record<string, string>, node = NODE): DatastoreEvent {
  const p: Resource = { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: ns, labels }, spec: { nodeName: node, containers: [] }, status: { podIP: ip } };
  const w = workloadEndpointFromPod(p)!;
  return { type: 'update', kind: 'WorkloadEndpoint', key: `WorkloadEndpoint/${ns}/${w.metadata.name}`, resource: w };
}
function ns(name: string, labels: Record<string, string> = {}): DatastoreEvent {
  const p = profileFromNamespace({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } });
  return { type: 'update', kind: 'Profile', key: `Profile/${p.metadata.name}`, resource: p };
}
function gnp(name: string, spec: any): DatastoreEvent {
  return { type: 'update', kind: 'GlobalNetworkPolicy', key: `GlobalNetworkPolicy/${name}`, resource: { apiVersion: 'projectcalico.org/v3', kind: 'GlobalNetworkPolicy', metadata: { name }, spec } };
}
function members(calc: PolicyCalculator): Map<string, string[]> {
  return new Map([...calc.desired.ipsets].map(([n, s]) => [n, [...s.members].sort()]));
}

describe('LabelIndex', () => {
  it('reports matches incrementally and evaluates only candidate selectors', () => {
    const log: string[] = [];
    const idx = new LabelIndex((s, i, m) => log.push(`${m ? '+' : '-'}${s}:${i}`));
    idx.updateSelector('A', parseSelector("app == 'web'"));
    idx.updateSelector('B', parseSelector("tier != 'db'"));
    idx.updateItem('p1', { app: 'web' });
    idx.updateItem('p2', { app: 'db', tier: 'db' });
    expect(log.sort()).toEqual(['+A:p1', '+B:p1']);
    log.length = 0;
    idx.updateItem('p1', { app: 'api' });
    expect(log).toEqual(['-A:p1']);
    log.length = 0;
    idx.updateItem('p2', { app: 'web', tier: 'web' });
    expect(log.sort()).toEqual(['+A:p2', '+B:p2']);
    log.length = 0;
    idx.deleteSelector('A');
    expect(log).toEqual(['-A:p2']);
    idx.deleteItem('p1');
    expect([...idx.members('B')]).toEqual(['p2']);
  });
});

describe('PolicyCalculator (no kernel)', () => {
  const base = (): PolicyCalculator => {
    const calc = new PolicyCalculator({ nodeName: NODE, ipVersions: [4] });
    calc.onEvents([
      ns('prod', { team: 'a' }),
      ns('dev', { team: 'b' }),
      pod('prod', 'web', '10.0.0.1', { app: 'web' }),
      pod('prod', 'db', '10.0.0.2', { app: 'db' }),
      pod('dev', 'x', '10.0.0.3', { app: 'web' }),
      pod('dev', 'remote', '10.0.9.9', { app: 'web' }, 'other-node'),
      gnp('g', {
        selector: "app == 'db'",
        ingress: [
          { action: 'Allow', source: { selector: "app == 'web'" } },
          { action: 'Allow', source: { namespaceSelector: "team == 'b'" } },
        ],
      }),
      { type: 'in-sync' },
    ]);
    calc.desired.takeChanges();
    return calc;
  };

  it('selector sets hold local and remote endpoints; only local ones get chains', () => {
    const calc = base();
    const sets = [...members(calc).values()];
    expect(sets).toContainEqual(['10.0.0.1', '10.0.0.3', '10.0.9.9']);
    expect(sets).toContainEqual(['10.0.0.3', '10.0.9.9']);
    // Local workloads are dispatched through their bodies' interface sets; the remote one is not.
    const ifaceOf = (e: DatastoreEvent) => ((e as { resource: Resource }).resource.spec as { interfaceName: string }).interfaceName;
    const local = [pod('prod', 'web', '10.0.0.1', {}), pod('prod', 'db', '10.0.0.2', {}), pod('dev', 'x', '10.0.0.3', {})].map(ifaceOf);
    const dispatched = [...members(calc)].filter(([n]) => n.startsWith('pet-4i:')).flatMap(([, m]) => m);
    expect(dispatched.sort()).toEqual(local.flatMap((i) => [`0.0.0.0/0,${i}`, `0.0.0.0/0,${i}`]).sort());
    expect(dispatched.join()).not.toContain(ifaceOf(pod('dev', 'remote', '10.0.9.9', {}, 'other-node')));
  });

  it('a pod like an existing one changes set members only; a new combination adds body chains and dispatch rules', () => {
    const calc = base();
    calc.onEvents([pod('prod', 'web-2', '10.0.0.4', { app: 'web' })]);
    let ch = calc.desired.takeChanges();
    expect(ch.chains.size).toBe(0);
    expect(ch.sets.size).toBe(0);
    const added = [...ch.deltas].flatMap(([n, d]) => [...d].map(([m, add]) => `${add ? '+' : '-'}${n.slice(0, 7)} ${m}`));
    const iface = ((pod('prod', 'web-2', '10.0.0.4', {}) as { resource: Resource }).resource.spec as { interfaceName: string }).interfaceName;
    expect(added.sort()).toEqual([`+pet-4i: 0.0.0.0/0,${iface}`, `+pet-4i: 0.0.0.0/0,${iface}`, '+pet-4s: 10.0.0.4'].sort());
    // Deleting it again: members only.
    calc.onEvents([{ type: 'delete', kind: 'WorkloadEndpoint', key: (pod('prod', 'web-2', '10.0.0.4', {}) as { key: string }).key }]);
    ch = calc.desired.takeChanges();
    expect(ch.chains.size).toBe(0);
    expect([...ch.deltas.values()].flatMap((d) => [...d.values()])).toEqual([false, false, false]);
    // A pod in a namespace of its own has a profile no one else has: new bodies, new sets, dispatch rules.
    calc.onEvents([ns('solo'), pod('solo', 'p', '10.0.0.5', { app: 'web' })]);
    ch = calc.desired.takeChanges();
    const chains = [...ch.chains].map((k) => k.split('|')[2]!);
    expect(chains.filter((c) => /^pet-(tw|fw)b-/.test(c))).toHaveLength(2);
    expect(chains).toEqual(expect.arrayContaining(['pet-from-wl-dispatch', 'pet-to-wl-dispatch']));
    const from = calc.desired.chains.get('4|filter|pet-from-wl-dispatch')!;
    expect(from).toHaveLength(4); // 3 egress bodies (prod, dev, solo) + unknown interface
    expect(from[from.length - 1]).toMatch(/Unknown interface.* -j DROP$/);
    for (const r of from.slice(0, -1)) expect(r).toMatch(/^-m set --match-set pet-4i:\S+ src,src -g pet-fwb-\S+$/);
    expect(calc.desired.chains.get('4|filter|pet-to-wl-dispatch')![0]).toMatch(/^-m set --match-set pet-4i:\S+ dst,dst -g pet-twb-\S+$/);
  });

  it("a pod's label change touches only the sets whose selectors it affects", () => {
    const calc = base();
    calc.onEvents([pod('prod', 'web', '10.0.0.1', { app: 'api' })]);
    const ch = calc.desired.takeChanges();
    expect(ch.sets.size).toBe(0);
    expect([...ch.deltas.values()].map((d) => [...d])).toEqual([[['10.0.0.1', false]]]);
    expect(ch.chains.size).toBe(0);
  });

  it('a namespace label change moves all its pods in namespaceSelector sets', () => {
    const calc = base();
    calc.onEvents([ns('prod', { team: 'b' })]);
    const ch = calc.desired.takeChanges();
    const d = [...ch.deltas.values()].flatMap((m) => [...m]);
    expect(d.sort()).toEqual([
      ['10.0.0.1', true],
      ['10.0.0.2', true],
    ]);
  });

  it('a policy that stops matching any local endpoint loses its chain and its sets', () => {
    const calc = base();
    calc.onEvents([pod('prod', 'db', '10.0.0.2', { app: 'cache' })]);
    const selectorSets = () => [...calc.desired.ipsets.keys()].filter((n) => !n.startsWith('pet-4i:'));
    expect([...calc.desired.chains.keys()].some((k) => k.includes('pet-pi-gnp.g'))).toBe(false);
    expect(selectorSets()).toHaveLength(0);
    calc.onEvents([pod('prod', 'db', '10.0.0.2', { app: 'db' })]);
    expect([...calc.desired.chains.keys()].some((k) => k.includes('pet-pi-gnp.g'))).toBe(true);
    expect(selectorSets()).toHaveLength(2);
  });

  it('a bad update keeps the last good policy and reports the error', () => {
    const calc = base();
    const before = JSON.stringify([...calc.desired.chains]);
    calc.onEvents([gnp('g', { selector: "app == 'db' &&", ingress: [] })]);
    expect(JSON.stringify([...calc.desired.chains])).toBe(before);
    expect(calc.status().errors).toEqual([{ resource: 'GlobalNetworkPolicy/g', message: expect.stringContaining('spec.selector') }]);
    calc.onEvents([gnp('g', { selector: "app == 'db'", ingress: [] })]);
    expect(calc.status().errors).toEqual([]);
  });

  it('FelixConfiguration: default overridden by node.<name>', () => {
    const calc = base();
    const fc = (name: string, spec: any): DatastoreEvent => ({
      type: 'update',
      kind: 'FelixConfiguration',
      key: `FelixConfiguration/${name}`,
      resource: { apiVersion: 'projectcalico.org/v3', kind: 'FelixConfiguration', metadata: { name }, spec },
    });
    calc.onEvents([fc('default', { defaultEndpointToHostAction: 'Accept', failsafeInboundHostPorts: [{ protocol: 'TCP', port: 2222 }] })]);
    expect(calc.desired.chains.get('4|filter|pet-wl-to-host')![1]).toMatch(/-j ACCEPT$/);
    expect(calc.desired.chains.get('4|filter|pet-failsafe-in')).toEqual(['-p tcp -m tcp --dport 2222 -j MARK --set-xmark 0x10000/0x10000']);
    calc.onEvents([fc(`node.${NODE}`, { defaultEndpointToHostAction: 'Return', chainInsertMode: 'Append' })]);
    expect(calc.desired.chains.get('4|filter|pet-wl-to-host')![1]).toMatch(/-j RETURN$/);
    expect(calc.desired.insertMode).toBe('Append');
  });

  it('host endpoints get from/to-host chains with failsafe first', () => {
    const calc = base();
    calc.onEvents([
      {
        type: 'update',
        kind: 'HostEndpoint',
        key: 'HostEndpoint/h1',
        resource: { apiVersion: 'projectcalico.org/v3', kind: 'HostEndpoint', metadata: { name: 'h1', labels: { role: 'node' } }, spec: { node: NODE, interfaceName: 'eth0', expectedIPs: ['192.168.1.1'] } },
      },
    ]);
    const fh = calc.desired.chains.get('4|filter|pet-fh-eth0')!;
    expect(fh).toContain('-j pet-failsafe-in');
    expect(fh[fh.length - 1]).toMatch(/Drop if no profiles matched/);
    expect(calc.desired.chains.get('4|filter|pet-from-host-endpoint')).toEqual(['-i eth0 -g pet-fh-eth0']);
    expect(calc.desired.chains.get('4|filter|pet-INPUT')).toContain('-j pet-from-host-endpoint');
  });

  it('a body with more than 64 interfaces spreads them over several sets, each with its dispatch rule', () => {
    const calc = base();
    const evs: DatastoreEvent[] = [];
    for (let k = 0; k < 130; k++) evs.push(pod('prod', `w${k}`, `10.1.0.${k}`, { app: 'web' }));
    calc.onEvents(evs);
    const from = calc.desired.chains.get('4|filter|pet-from-wl-dispatch')!;
    // The 131 web workloads in prod and prod/db (its policy is ingress only) share one egress body: 64 + 64 + 4.
    const byTarget = new Map<string, string[]>();
    for (const r of from.slice(0, -1)) byTarget.set(r.split(' ').pop()!, [...(byTarget.get(r.split(' ').pop()!) ?? []), r.split(' ')[3]!]);
    const web = [...byTarget.values()].sort((a, b) => b.length - a.length)[0]!;
    expect(web.map((n) => calc.desired.ipsets.get(n)!.members.size)).toEqual([64, 64, 4]);
    // Deleting workloads frees slots that later workloads reuse; the sets stay while the body lives.
    calc.onEvents([{ type: 'delete', kind: 'WorkloadEndpoint', key: (pod('prod', 'w0', '10.1.0.0', {}) as { key: string }).key }]);
    calc.desired.takeChanges();
    calc.onEvents([pod('prod', 'w999', '10.1.3.1', { app: 'web' })]);
    expect(calc.desired.takeChanges().chains.size).toBe(0);
  });
});

describe('PolicyCalculator: incremental = from scratch', () => {
  // Everything desired, canonically: chains and hooks with their rules, ipsets with type,
  // family and sorted members.
  const snapshot = (calc: PolicyCalculator) => ({
    chains: [...calc.desired.chains].sort(([a], [b]) => (a < b ? -1 : 1)),
    hooks: [...calc.desired.hooks].sort(([a], [b]) => (a < b ? -1 : 1)),
    ipsets: [...calc.desired.ipsets.values()].map((s) => [s.name, s.type, s.family, [...s.members].sort()]).sort(([a], [b]) => ((a as string) < (b as string) ? -1 : 1)),
  });
  const podOf = (ns: string, name: string, ips: string[], labels: Record<string, string>, node = NODE, ports: any[] = []): DatastoreEvent => {
    const p: Resource = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: ns, labels },
      spec: { nodeName: node, containers: [{ name: 'c', ports }] },
      status: { podIP: ips[0], podIPs: ips.map((ip) => ({ ip })) },
    };
    const w = workloadEndpointFromPod(p)!;
    return { type: 'update', kind: 'WorkloadEndpoint', key: `WorkloadEndpoint/${ns}/${w.metadata.name}`, resource: w };
  };
  const knp = (ns: string, name: string, spec: any): DatastoreEvent => ({
    type: 'update',
    kind: 'KubernetesNetworkPolicy',
    key: `KubernetesNetworkPolicy/${ns}/${name}`,
    resource: { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name, namespace: ns }, spec },
  });
  const cnp = (ns: string, name: string, spec: any): DatastoreEvent => ({
    type: 'update',
    kind: 'NetworkPolicy',
    key: `NetworkPolicy/${ns}/${name}`,
    resource: { apiVersion: 'projectcalico.org/v3', kind: 'NetworkPolicy', metadata: { name, namespace: ns }, spec },
  });
  const gns = (name: string, labels: Record<string, string>, nets: string[]): DatastoreEvent => ({
    type: 'update',
    kind: 'GlobalNetworkSet',
    key: `GlobalNetworkSet/${name}`,
    resource: { apiVersion: 'projectcalico.org/v3', kind: 'GlobalNetworkSet', metadata: { name, labels }, spec: { nets } },
  });
  const del = (e: DatastoreEvent): DatastoreEvent => ({ type: 'delete', kind: (e as { kind: string }).kind, key: (e as { key: string }).key }) as DatastoreEvent;
  const APPS = ['web', 'api', 'db', 'cache'];
  const TIERS = ['front', 'back'];
  const podN = (i: number, over: Partial<{ app: string; node: string; ip6: boolean; ns: string }> = {}) =>
    podOf(
      over.ns ?? ['a', 'b', 'c'][i % 3]!,
      `p${i}`,
      over.ip6 === false ? [`10.0.1.${i}`] : [`10.0.1.${i}`, `fd00::1:${i.toString(16)}`],
      { app: over.app ?? APPS[i % 4]!, tier: TIERS[i % 2]! },
      over.node ?? (i % 5 === 4 ? 'other' : NODE),
      i % 3 === 0 ? [{ name: 'http', containerPort: 8000 + (i % 2) }] : [],
    );
  const policies = (): DatastoreEvent[] => [
    gnp('deny-db', { order: 10, selector: "app == 'db'", ingress: [{ action: 'Deny', source: { selector: "tier == 'front' && app != 'api'" } }, { action: 'Pass' }], egress: [{ action: 'Allow' }] }),
    gnp('ports', {
      order: 20,
      selector: "has(app) && tier in {'front', 'back'}",
      ingress: [{ action: 'Allow', protocol: 'TCP', source: { selector: "app starts with 'ca'", notNets: ['10.0.1.7/32'] }, destination: { ports: [443, '8000:8100', 'http'] } }],
      egress: [{ action: 'Allow', destination: { selector: "role == 'ext'" } }, { action: 'Allow', destination: { nets: ['192.168.0.0/16', 'fd00:9::/64', '172.16.0.0/12'] } }],
    }),
    cnp('a', 'same-ns', { order: 5, selector: "app == 'web'", types: ['Ingress'], ingress: [{ action: 'Allow', source: { selector: "app == 'api'" } }, { action: 'Log' }] }),
    knp('b', 'k1', {
      podSelector: { matchLabels: { app: 'api' } },
      policyTypes: ['Ingress', 'Egress'],
      ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: 'x' } } }, { podSelector: { matchExpressions: [{ key: 'tier', operator: 'In', values: ['back'] }] } }], ports: [{ protocol: 'TCP', port: 'http' }, { protocol: 'UDP', port: 53 }] }],
      egress: [{ to: [{ ipBlock: { cidr: '10.0.0.0/8', except: ['10.0.1.0/28'] } }] }],
    }),
    knp('c', 'k2', { podSelector: {}, policyTypes: ['Ingress'], ingress: [] }),
  ];
  const initial = (): DatastoreEvent[] => [
    ns('a', { team: 'x' }),
    ns('b', { team: 'y' }),
    ns('c'),
    gns('ext1', { role: 'ext' }, ['192.0.2.0/24', '2001:db8::/48']),
    gns('ext2', { role: 'other' }, ['198.51.100.0/24']),
    ...Array.from({ length: 30 }, (_, i) => podN(i)),
    ...policies(),
    { type: 'in-sync' },
  ];

  it('after label changes, deletes, re-adds, moves, policy and profile changes', () => {
    const calc = new PolicyCalculator({ nodeName: NODE, ipVersions: [4, 6] });
    const live = new Map<string, DatastoreEvent>();
    const feed = (evs: DatastoreEvent[]) => {
      calc.onEvents(evs);
      for (const e of evs) {
        if (e.type === 'update') live.set(e.key, e);
        else if (e.type === 'delete') live.delete(e.key);
      }
    };
    const fresh = () => {
      const c = new PolicyCalculator({ nodeName: NODE, ipVersions: [4, 6] });
      c.onEvents([...live.values(), { type: 'in-sync' }]);
      return snapshot(c);
    };
    feed(initial());
    expect(snapshot(calc)).toEqual(fresh());
    const P = policies();
    const steps: DatastoreEvent[][] = [
      // relabels (into and out of selectors), an address change, a local pod moving away and back
      [podN(1, { app: 'db' }), podN(2, { app: 'cache' }), podN(6, { ip6: false }), podN(3, { node: 'other' }), podN(4, { node: NODE })],
      // deletes, and a pod in a new namespace
      [del(podN(5)), del(podN(10)), del(podN(11)), ns('d', { team: 'x' }), podN(40, { ns: 'd' })],
      // policy order and selector changes, a delete, a rule change
      [
        gnp('deny-db', { order: 30, selector: "app == 'db'", ingress: [{ action: 'Deny', source: { selector: "tier == 'front' && app != 'api'" } }, { action: 'Pass' }], egress: [{ action: 'Allow' }] }),
        cnp('a', 'same-ns', { order: 5, selector: "app in {'web', 'db'}", types: ['Ingress', 'Egress'], ingress: [{ action: 'Allow', source: { selector: "app == 'api'" } }], egress: [{ action: 'Deny' }] }),
        del(P[4]!),
      ],
      // namespace labels change, a namespace profile goes, network sets change
      [ns('b', { team: 'x' }), del(ns('c')), gns('ext2', { role: 'ext' }, ['198.51.100.0/24']), gns('ext1', { role: 'ext' }, ['192.0.2.0/25'])],
      // re-adds, the profile back, a policy back, a network set gone, more relabels
      [podN(5), podN(10), ns('c'), P[4]!, del(gns('ext1', {}, [])), podN(12, { app: 'db' }), podN(13, { app: 'api' }), podN(7, { node: 'other' })],
      // everything of one kind at once
      [...Array.from({ length: 30 }, (_, i) => podN(i, { app: APPS[(i + 1) % 4]! })), del(P[0]!), del(P[1]!)],
      [P[0]!, P[1]!, ...Array.from({ length: 30 }, (_, i) => del(podN(i))).filter((_, i) => i % 4 === 0)],
    ];
    for (const s of steps) {
      feed(s);
      expect(snapshot(calc)).toEqual(fresh());
    }
  });
});
