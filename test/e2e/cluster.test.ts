// End-to-end: real agents in node namespaces, etcd, pods wired by petrel-cni, real traffic.
// One file so the labs (which share the plab- namespace prefix) never run concurrently.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireRoot, run } from '../netns.js';
import { Lab, nodeNs, type LabPod } from '../lab/lab.js';


requireRoot();

const proto = process.env.PETREL_ROUTE_PROTOCOL ?? '80';

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 30_000, every = 100): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, every));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

async function established(lab: Lab, i: number, expected: number): Promise<boolean> {
  const peers = (await lab.agentStatus(i)).bgp?.peers ?? [];
  return peers.filter((p: any) => p.state === 'Established').length === expected;
}

async function blocksOf(lab: Lab, i: number): Promise<string[]> {
  const out = await lab.ctl(['get', 'blockaffinities', '-o', 'json']);
  const items = JSON.parse(out);
  return (Array.isArray(items) ? items : items.items ?? [])
    .filter((b: any) => b.spec?.node === `node-${i}` && b.spec?.state === 'confirmed')
    .map((b: any) => b.spec.cidr as string);
}

function expectAllReachable(m: { from: string; to: string; tcp: boolean; udp: boolean }[]) {
  const broken = m.filter((x) => !x.tcp || !x.udp).map((x) => `${x.from}->${x.to} tcp=${x.tcp} udp=${x.udp}`);
  expect(broken).toEqual([]);
  expect(m.length).toBeGreaterThan(0);
}

const tcpOk = (lab: Lab, from: LabPod, to: LabPod) => lab.tcpOk(from, to.ip);

/** A Calico NetworkPolicy as calicoctl stores it in etcd. */
function isolatePolicy(name: string, target: string) {
  return {
    key: `/calico/resources/v3/projectcalico.org/networkpolicies/default/${name}`,
    value: {
      kind: 'NetworkPolicy',
      apiVersion: 'projectcalico.org/v3',
      metadata: { name, namespace: 'default', uid: `e2e-${name}`, creationTimestamp: new Date().toISOString() },
      spec: { tier: 'default', order: 100, selector: `app == '${target}'`, types: ['Ingress'] },
    },
  };
}

describe('3 nodes on one subnet, full mesh', () => {
  const lab = new Lab({ nodes: 3, podsPerNode: 2, restartTime: 60, dir: '.lab/e2e-mesh' });
  beforeAll(async () => {
    await lab.up();
    for (let i = 1; i <= 3; i++) await waitFor(`node-${i} mesh established`, () => established(lab, i, 2));
  }, 180_000);
  afterAll(async () => {
    await lab.down();
  });

  it('every pod reaches every pod on every node over TCP and UDP', async () => {
    await waitFor('full reachability', async () => (await lab.probeMatrix()).every((x) => x.tcp && x.udp), 30_000, 500);
    expectAllReachable(await lab.probeMatrix());
  });

  it("each node's FIB holds the other nodes' blocks, learned over BGP, with Petrel's protocol", async () => {
    for (let i = 1; i <= 3; i++) {
      const routes = await lab.routes(i, proto);
      for (let j = 1; j <= 3; j++) {
        if (j === i) continue;
        for (const block of await blocksOf(lab, j)) {
          expect(routes.some((r) => r.startsWith(`${block} via ${lab.ipOf(j)} dev eth0`)), `node-${i} route to ${block}: ${routes.join(' | ')}`).toBe(true);
        }
      }
      const status = await lab.agentStatus(i);
      const received = status.bgp.peers.reduce((n: number, p: any) => n + p.prefixesReceived, 0);
      expect(received).toBeGreaterThanOrEqual(2);
    }
  });

  it('a NetworkPolicy written to etcd blocks traffic across nodes within 1 s, and its deletion restores it', async () => {
    const [a, b] = [lab.state.pods.find((p) => p.node === 1)!, lab.state.pods.find((p) => p.node === 2)!];
    expect(await tcpOk(lab, a, b)).toBe(true);
    const policy = isolatePolicy('isolate-target', b.name);
    const t0 = Date.now();
    await lab.etcdPut(policy.key, policy.value);
    await waitFor('policy enforced', async () => !(await tcpOk(lab, a, b)), 5000, 20);
    // The last successful connect was before enforcement; the failing one took up to 0.3 s.
    expect(Date.now() - t0).toBeLessThan(1000 + 300);
    const t1 = Date.now();
    await lab.etcdDel(policy.key);
    await waitFor('policy removed', () => tcpOk(lab, a, b), 5000, 20);
    expect(Date.now() - t1).toBeLessThan(1000 + 300);
  });

  it('an agent killed with -9 and restarted loses no packet between pods on two nodes', async () => {
    const a = lab.state.pods.find((p) => p.node === 1)!;
    const b = lab.state.pods.find((p) => p.node === 2)!;
    // 20 pings a second for 14 s across the restart of node-2's agent.
    const ping = run('ip', ['netns', 'exec', a.netns, 'ping', '-i', '0.05', '-c', '280', '-W', '1', b.ip], { timeoutMs: 40_000 }).catch(
      (e: Error) => ({ stdout: e.message, stderr: '' }),
    );
    await new Promise((r) => setTimeout(r, 2000));
    lab.killAgent(2);
    await new Promise((r) => setTimeout(r, 1500));
    await lab.startAgent(2);
    await lab.waitReady(2, 60_000);
    const out = (await ping).stdout;
    const m = out.match(/(\d+) packets transmitted, (\d+) received/);
    expect(m, out).not.toBeNull();
    expect(Number(m![2])).toBe(Number(m![1]));
    await waitFor('mesh re-established on node-2', () => established(lab, 2, 2));
  }, 120_000);

  it('etcd down for 30 s: nothing removed, readiness 503 naming the datastore, converged after, later changes take effect', async () => {
    const before = await Promise.all([1, 2, 3].map((i) => lab.routes(i, proto)));
    const rulesBefore = await Promise.all([1, 2, 3].map((i) => run('ip', ['netns', 'exec', nodeNs(i), 'iptables-save']).then((r) => r.stdout)));
    lab.stopEtcd();
    await waitFor('readiness 503', async () => {
      const r = await lab.readiness(1);
      return r.code === 503 && JSON.stringify(r.body).includes('datastore');
    }, 20_000, 250);
    const end = Date.now() + 30_000;
    while (Date.now() < end) {
      expectAllReachable(await lab.probeMatrix());
      await new Promise((r) => setTimeout(r, 3000));
    }
    for (let i = 1; i <= 3; i++) expect(await lab.routes(i, proto)).toEqual(before[i - 1]);
    for (let i = 1; i <= 3; i++) {
      const now = (await run('ip', ['netns', 'exec', nodeNs(i), 'iptables-save'])).stdout;
      const count = (s: string) => s.split('\n').filter((l) => l.startsWith('-A ')).length;
      expect(count(now)).toBe(count(rulesBefore[i - 1]));
    }
    await lab.startEtcd();
    for (let i = 1; i <= 3; i++) await lab.waitReady(i, 60_000);
    // A change made once etcd is back takes effect everywhere.
    const [a, b] = [lab.state.pods.find((p) => p.node === 3)!, lab.state.pods.find((p) => p.node === 1)!];
    const policy = isolatePolicy('after-outage', b.name);
    await lab.etcdPut(policy.key, policy.value);
    await waitFor('post-outage policy enforced', async () => !(await tcpOk(lab, a, b)), 10_000, 100);
    await lab.etcdDel(policy.key);
    await waitFor('post-outage policy removed', () => tcpOk(lab, a, b), 10_000, 100);
  }, 180_000);

  it('a deleted pod leaves no route, ipset membership or advertisement on any node', async () => {
    const victim = lab.state.pods.find((p) => p.node === 3 && p.index === 2)!;
    const ipsetHas = async (i: number) => (await run('ip', ['netns', 'exec', nodeNs(i), 'ipset', 'list'])).stdout.includes(victim.ip);
    await lab.ctlApply(`apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: allow-from-lab-pods}
spec:
  selector: has(app)
  types: [Ingress]
  ingress:
  - action: Allow
    source: {selector: has(app)}
`);
    await waitFor('victim in ipsets', async () => (await Promise.all([1, 2, 3].map(ipsetHas))).every(Boolean), 10_000, 200);
    await lab.delPod(victim);
    await waitFor('victim gone everywhere', async () => {
      for (let i = 1; i <= 3; i++) {
        if (await ipsetHas(i)) return false;
        if ((await lab.routes(i)).some((r) => r.startsWith(`${victim.ip} `))) return false;
        const st = await lab.agentStatus(i);
        if (JSON.stringify(st.bgp?.exports ?? []).includes(`${victim.ip}/32`)) return false;
      }
      return true;
    }, 10_000, 200);
    await lab.ctl(['delete', 'globalnetworkpolicy', 'allow-from-lab-pods']);
  });
});

describe('4 nodes in two subnets, VXLAN CrossSubnet', () => {
  const lab = new Lab({ nodes: 4, podsPerNode: 1, subnets: [1, 1, 2, 2], vxlanMode: 'CrossSubnet', dir: '.lab/e2e-vxlan' });
  beforeAll(async () => {
    await lab.up();
  }, 180_000);
  afterAll(async () => {
    await lab.down();
  });

  it('cross-subnet traffic goes through vxlan.calico, same-subnet traffic goes direct', async () => {
    await waitFor('vxlan routes', async () => {
      const routes = await lab.routes(1, proto);
      const b2 = await blocksOf(lab, 2);
      const b3 = await blocksOf(lab, 3);
      return (
        b2.length > 0 &&
        b3.length > 0 &&
        b2.every((b) => routes.some((r) => r.startsWith(`${b} via ${lab.ipOf(2)} dev eth0`))) &&
        b3.every((b) => routes.some((r) => r.startsWith(`${b} via 10.244.255.3 dev vxlan.calico`) && r.includes('onlink')))
      );
    }, 60_000, 500);
    await waitFor('full reachability', async () => (await lab.probeMatrix()).every((x) => x.tcp && x.udp), 30_000, 500);
    expectAllReachable(await lab.probeMatrix());
    // Packets to the other subnet really are VXLAN on the underlay.
    const cap = run('ip', ['netns', 'exec', nodeNs(1), 'timeout', '4', 'tcpdump', '-c', '1', '-ni', 'eth0', 'udp port 4789'], { timeoutMs: 10_000 }).catch(
      (e: Error) => ({ stdout: e.message, stderr: '' }),
    );
    await new Promise((r) => setTimeout(r, 800));
    const p1 = lab.state.pods.find((p) => p.node === 1)!;
    const p3 = lab.state.pods.find((p) => p.node === 3)!;
    await lab.ping(p1, p3.ip);
    const out = await cap;
    expect(`${out.stdout}${out.stderr}`).toMatch(/VXLAN|4789/);
  });
});

describe('route reflector topology (mesh off)', () => {
  const lab = new Lab({ nodes: 3, podsPerNode: 1, routeReflector: 1, dir: '.lab/e2e-rr' });
  beforeAll(async () => {
    await lab.up();
  }, 180_000);
  afterAll(async () => {
    await lab.down();
  });

  it('clients peer only with the reflector and every pod reaches every pod', async () => {
    await waitFor('rr sessions', async () => (await established(lab, 1, 2)) && (await established(lab, 2, 1)) && (await established(lab, 3, 1)), 60_000, 500);
    const st2 = await lab.agentStatus(2);
    expect(st2.bgp.peers.map((p: any) => p.address)).toEqual([lab.ipOf(1)]);
    await waitFor('full reachability', async () => (await lab.probeMatrix()).every((x) => x.tcp && x.udp), 30_000, 500);
    expectAllReachable(await lab.probeMatrix());
  }, 120_000);
});
