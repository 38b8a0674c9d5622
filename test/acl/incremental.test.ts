// Incremental apply against a real kernel (in a netns): a pod added next to others like it
// changes ipset members only; a new combination of policies adds its body chains and one
// dispatch rule per side; other software's
// chains and sets survive every apply; drift is repaired on resync; garbage from
// iptables-save fails loudly and writes nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataplaneReadError, IptablesDataplane, type Exec } from '../../acl/index.js';
import { PolicyCalculator } from '../../agent/calc/policy.js';
import { workloadEndpointFromPod, profileFromNamespace } from '../../datastore/derive.js';
import type { DatastoreEvent, Resource } from '../../datastore/index.js';
import { NetNs, requireRoot } from '../netns.js';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';

requireRoot();

const NODE = 'ptac-node';

function podEvent(ns: string, name: string, ip: string, labels: Record<string, string>, ports: any[] = []): DatastoreEvent {
  const pod: Resource = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: ns, labels },
    spec: { nodeName: NODE, containers: [{ name: 'c', ports }] },
    status: { podIP: ip, podIPs: [{ ip }] },
  };
  const wep = workloadEndpointFromPod(pod)!;
  return { type: 'update', kind: 'WorkloadEndpoint', key: `WorkloadEndpoint/${ns}/${wep.metadata.name}`, resource: wep };
}

function nsEvent(name: string, labels: Record<string, string> = {}): DatastoreEvent {
  const p = profileFromNamespace({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } });
  return { type: 'update', kind: 'Profile', key: `Profile/${p.metadata.name}`, resource: p };
}

describe('incremental apply in a real netns', () => {
  let ns: NetNs;
  const restores: Array<[string, string]> = [];
  let calc: PolicyCalculator;
  let dp: IptablesDataplane;
  const exec: Exec = async (cmd, args, input) => {
    const r = await ns.exec(cmd, args, { input }).then(
      (x) => ({ code: 0, ...x }),
      (e: Error) => ({ code: 1, stdout: '', stderr: e.message }),
    );
    return r;
  };
  const save = async () => (await ns.exec('iptables-save', ['-t', 'filter'])).stdout;

  beforeAll(async () => {
    ns = await NetNs.create('ptac');
    // Other software's state: a chain with a jump from INPUT, and an ipset.
    await ns.exec('iptables', ['-N', 'FOREIGN-CHAIN']);
    await ns.exec('iptables', ['-A', 'FOREIGN-CHAIN', '-p', 'tcp', '--dport', '7777', '-j', 'ACCEPT']);
    await ns.exec('iptables', ['-I', 'INPUT', '1', '-j', 'FOREIGN-CHAIN']);
    await ns.exec('ipset', ['create', 'foreign-set', 'hash:ip']);
    await ns.exec('ipset', ['add', 'foreign-set', '192.168.77.1']);
    calc = new PolicyCalculator({ nodeName: NODE, ipVersions: [4, 6] });
    dp = new IptablesDataplane({
      ipVersions: [4, 6],
      exec,
      refreshIntervalMs: 0,
      onRestore: (w, i) => restores.push([w, i]),
      ipsetSession: (argv) => ns.spawn(argv[0]!, argv.slice(1)) as ChildProcessWithoutNullStreams,
    });
    calc.onEvents([
      nsEvent('prod'),
      podEvent('prod', 'db', '10.65.1.2', { app: 'db' }, [{ name: 'pg', containerPort: 5432 }]),
      podEvent('prod', 'web-1', '10.65.1.3', { app: 'web' }),
      podEvent('prod', 'other', '10.65.1.4', { app: 'other' }),
      {
        type: 'update',
        kind: 'KubernetesNetworkPolicy',
        key: 'KubernetesNetworkPolicy/prod/db',
        resource: {
          apiVersion: 'networking.k8s.io/v1',
          kind: 'NetworkPolicy',
          metadata: { name: 'db', namespace: 'prod' },
          spec: { podSelector: { matchLabels: { app: 'db' } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: 'web' } } }], ports: [{ port: 'pg' }] }] },
        },
      },
      { type: 'in-sync' },
    ]);
    // A set of ours left with another size (an older version, another maxelem): swapped in place.
    swapped = [...calc.desired.ipsets.keys()].find((n) => n.startsWith('pet-4s:'))!;
    await ns.exec('ipset', ['create', swapped, 'hash:net', 'maxelem', '1000']);
    await ns.exec('ipset', ['add', swapped, '192.168.99.0/24']);
    await dp.apply(calc.desired);
    first.push(...restores);
  });
  let swapped = '';
  const first: Array<[string, string]> = [];
  afterAll(async () => {
    dp?.stop();
    await ns?.destroy();
  });

  it('a set of ours with another maxelem is re-created through a temp set and swap', async () => {
    const ipsetInputs = restores.filter(([w]) => w === 'ipset').map(([, i]) => i).join('');
    expect(ipsetInputs).toMatch(new RegExp(`^swap ${swapped.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} pet-4t:\\d+$`, 'm'));
    const list = (await ns.exec('ipset', ['list', swapped])).stdout;
    expect(list).toContain('maxelem 1048576');
    expect(list).not.toContain('192.168.99.0/24');
    expect(list).toContain('10.65.1.3');
    expect((await ns.exec('ipset', ['list', '-n'])).stdout).not.toMatch(/pet-4t:/);
  });

  it('the first apply, with nothing of ours hooked in yet, hooks our chains in last, after the sets exist and are filled', () => {
    const order = first.map(([w]) => w);
    // New sets created on their own first (rules may name them once they exist)...
    expect(order[0]).toBe('ipset');
    expect(first[0]![1]).toMatch(/^create /);
    expect(first[0]![1]).not.toMatch(/^add /m);
    // ...then members and chains side by side, then the jumps from the built-in chains in a
    // restore of their own, last for each table.
    const hooking = first.filter(([w, i]) => w.includes('|') && /^-[AI] (INPUT|FORWARD|OUTPUT|PREROUTING|POSTROUTING) /m.test(i));
    expect(hooking.map(([w]) => w).sort()).toEqual(['4|filter', '4|nat', '6|filter', '6|nat']);
    for (const [w, input] of hooking) {
      expect(input).not.toMatch(/^:pet-/m); // no chain bodies with the hooks
      const chains = order.indexOf(w);
      expect(first[chains]![1]).toMatch(/^:pet-/m);
      expect(chains).toBeLessThan(first.findIndex((r) => r[1] === input));
    }
    const lastFill = first.map(([w, i]) => w === 'ipset' && /^add /m.test(i)).lastIndexOf(true);
    expect(lastFill).toBeGreaterThan(0);
    expect(lastFill).toBeLessThan(first.findIndex((r) => hooking.includes(r)));
  });

  it('the first apply programs everything and keeps the foreign chain', async () => {
    const s = await save();
    expect(s).toContain(':FOREIGN-CHAIN');
    expect(s).toMatch(/-A INPUT .*-j pet-INPUT/);
    expect(s).toMatch(/-A INPUT -j FOREIGN-CHAIN/);
    expect(s).toContain('-A FOREIGN-CHAIN -p tcp -m tcp --dport 7777 -j ACCEPT');
    expect(s).toContain(':pet-pi-knp.prod.db');
  });

  it('adding a pod like an existing one is one batch in the ipset session: its address and its interface, no rule written', async () => {
    restores.length = 0;
    calc.onEvents([podEvent('prod', 'web-2', '10.65.1.5', { app: 'web' })]);
    await dp.apply(calc.desired);
    expect(restores.map(([w]) => w)).toEqual(['ipset-session']);
    const lines = restores[0]![1].trim().split('\n').sort();
    // The "from app=web" selector set gains the address; the bodies' interface sets (ingress
    // and egress, IPv4 and IPv6) gain the interface. No create, no destroy.
    expect(lines).toHaveLength(5);
    expect(lines.filter((l) => /^add pet-4s:\S+ 10\.65\.1\.5$/.test(l))).toHaveLength(1);
    expect(lines.filter((l) => /^add pet-4i:\S+ 0\.0\.0\.0\/0,cali\w+$/.test(l))).toHaveLength(2);
    expect(lines.filter((l) => /^add pet-6i:\S+ ::\/0,cali\w+$/.test(l))).toHaveLength(2);
    // In the kernel.
    const saved = (await ns.exec('ipset', ['save'])).stdout;
    expect(saved).toMatch(/^add pet-4s:\S+ 10\.65\.1\.5$/m);
    expect(saved.match(/^add pet-[46]i:\S+ (0\.0\.0\.0|::)\/0,cali\w+$/gm)!.length).toBeGreaterThanOrEqual(4 * 3);
    const s = await save();
    expect(s).toMatch(/-A INPUT -j FOREIGN-CHAIN/);
    expect(s).toContain('-A FOREIGN-CHAIN -p tcp -m tcp --dport 7777 -j ACCEPT');
  });

  it('a pod with a new combination of policies gets body chains and one dispatch rule per side, its sets created first', async () => {
    restores.length = 0;
    calc.onEvents([nsEvent('solo'), podEvent('solo', 'p', '10.65.1.9', { app: 'web' })]);
    await dp.apply(calc.desired);
    const kinds = restores.map(([w]) => w);
    // Sets (with the interface in them) before the rules naming them.
    expect(kinds[0]).toBe('ipset');
    expect(restores[0]![1]).toMatch(/^create pet-4i:\S+ hash:net,iface family inet /m);
    const filter4 = restores.find(([w]) => w === '4|filter')![1];
    const touched = new Set([...filter4.matchAll(/^(?::(\S+)|-[ADIX] (\S+))/gm)].map((m) => m[1] ?? m[2]));
    const bodies = [...touched].filter((c) => /^pet-(tw|fw)b-/.test(c!));
    expect(bodies).toHaveLength(2);
    expect([...touched].sort()).toEqual([...bodies, 'pet-from-wl-dispatch', 'pet-to-wl-dispatch', 'pet-pri-kns.solo', 'pet-pro-kns.solo'].sort());
    // Dispatch chains get one inserted rule each, not a rewrite.
    expect(filter4.match(/^-I pet-(from|to)-wl-dispatch \d+ /gm)).toHaveLength(2);
    expect(filter4).not.toMatch(/^:pet-(from|to)-wl-dispatch/m);
    expect(restores.some(([w]) => w.endsWith('|nat'))).toBe(false);
    const s = await save();
    expect(s).toMatch(/-A pet-from-wl-dispatch -m comment --comment "pet:\S+" -m set --match-set pet-4i:\S+ src,src -g pet-fwb-/);
  });

  it('an unchanged state applies nothing', async () => {
    restores.length = 0;
    calc.onEvents([podEvent('prod', 'web-2', '10.65.1.5', { app: 'web' })]);
    await dp.apply(calc.desired);
    expect(restores).toEqual([]);
  });

  it('deleting the pod removes its memberships only, in one ipset session batch; other sets survive', async () => {
    restores.length = 0;
    const key = `WorkloadEndpoint/prod/${NODE.replace(/-/g, '--')}-k8s-web--2-eth0`;
    calc.onEvents([{ type: 'delete', kind: 'WorkloadEndpoint', key }]);
    await dp.apply(calc.desired);
    expect(restores.map(([w]) => w)).toEqual(['ipset-session']);
    expect((await ns.exec('ipset', ['save'])).stdout).not.toContain('10.65.1.5');
    const ipset = restores[0]![1].trim().split('\n');
    expect(ipset).toHaveLength(5);
    expect(ipset.every((l) => l.startsWith('del '))).toBe(true);
    expect(ipset.filter((l) => /^del pet-4s:\S+ 10\.65\.1\.5$/.test(l))).toHaveLength(1);
    const sets = (await ns.exec('ipset', ['list', '-n'])).stdout;
    expect(sets).toContain('foreign-set');
    const s = await save();
    expect(s).toMatch(/-A INPUT -j FOREIGN-CHAIN/);
  });

  it('deleting the last pod of a combination removes its bodies and dispatch rules, then its sets', async () => {
    restores.length = 0;
    const key = `WorkloadEndpoint/solo/${NODE.replace(/-/g, '--')}-k8s-p-eth0`;
    calc.onEvents([{ type: 'delete', kind: 'WorkloadEndpoint', key }]);
    await dp.apply(calc.desired);
    const kinds = restores.map(([w]) => w);
    expect(kinds.indexOf('4|filter')).toBeGreaterThanOrEqual(0);
    // The sets go after the rules that named them.
    const destroy = restores.findIndex(([w, i]) => w === 'ipset' && /^destroy pet-4i:/m.test(i));
    expect(destroy).toBeGreaterThan(kinds.indexOf('4|filter'));
    const filter4 = restores.find(([w]) => w === '4|filter')![1];
    expect(filter4.match(/^-X pet-(tw|fw)b-\S+$/gm)).toHaveLength(2);
    expect(filter4.match(/^-D pet-(from|to)-wl-dispatch \d+$/gm)).toHaveLength(2);
    expect((await ns.exec('ipset', ['list', '-n'])).stdout).toContain('foreign-set');
  });

  it('resync repairs drift in our chains and leaves the foreign chain alone', async () => {
    await ns.exec('iptables', ['-D', 'pet-FORWARD', '1']);
    await ns.exec('iptables', ['-I', 'pet-twb-' + (await save()).match(/:pet-twb-(\S+)/)![1], '1', '-j', 'ACCEPT']);
    const input = (await save()).split('\n').filter((l) => l.startsWith('-A INPUT'));
    await ns.exec('iptables', ['-D', 'INPUT', String(input.findIndex((l) => l.includes('-j pet-INPUT')) + 1)]);
    expect(await save()).not.toMatch(/-j pet-INPUT/);
    await dp.resync();
    const s = await save();
    expect(s).toMatch(/-A INPUT .*-j pet-INPUT/);
    expect(s).toMatch(/-A pet-FORWARD .*-j MARK --set-xmark 0x0\/0x30000/);
    expect(s).not.toMatch(/-A pet-twb-\S+ -j ACCEPT$/m);
    expect(s).toMatch(/-A INPUT -j FOREIGN-CHAIN/);
    // A second resync finds nothing to do.
    restores.length = 0;
    await dp.resync();
    expect(restores).toEqual([]);
  });

  it('garbage from iptables-save fails loudly and writes nothing', async () => {
    const writes: string[] = [];
    const bad: Exec = async (cmd, args, input) => {
      if (cmd.includes('save') && cmd !== 'ipset') return { code: 0, stdout: "# Table `filter' is incompatible, use 'nft' tool.\n", stderr: '' };
      if (cmd.includes('restore')) writes.push(cmd);
      return exec(cmd, args, input);
    };
    const dp2 = new IptablesDataplane({ ipVersions: [4], exec: bad, backend: 'nft', refreshIntervalMs: 0 });
    await expect(dp2.apply(calc.desired)).rejects.toBeInstanceOf(DataplaneReadError);
    expect(writes).toEqual([]);
    const bad2: Exec = async (cmd, args, input) => {
      if (cmd.includes('save') && cmd !== 'ipset') return { code: 0, stdout: '*filter\n:INPUT ACCEPT [0:0]\nthis is not iptables output\nCOMMIT\n', stderr: '' };
      if (cmd.includes('restore')) writes.push(cmd);
      return exec(cmd, args, input);
    };
    const dp3 = new IptablesDataplane({ ipVersions: [4], exec: bad2, backend: 'nft', refreshIntervalMs: 0 });
    await expect(dp3.apply(calc.desired)).rejects.toBeInstanceOf(DataplaneReadError);
    expect(writes).toEqual([]);
    // The real state is untouched.
    expect(await save()).toMatch(/-A INPUT .*-j pet-INPUT/);
  });

  it('more workloads of one kind than a kernel hash:net,iface bucket holds (64) go on in a second set and dispatch rule', async () => {
    const evs: DatastoreEvent[] = [];
    for (let k = 0; k < 70; k++) evs.push(podEvent('prod', `many-${k}`, `10.66.0.${k + 1}`, { app: 'other' }));
    calc.onEvents(evs);
    await dp.apply(calc.desired);
    const s = await save();
    const body = s.match(/-A pet-from-wl-dispatch .*-g (pet-fwb-\S+)/g)!;
    const sets = (await ns.exec('ipset', ['list', '-n'])).stdout.split('\n').filter((n) => n.startsWith('pet-4i:'));
    const sizes = await Promise.all(sets.map(async (n) => (await ns.exec('ipset', ['list', n])).stdout.match(/Number of entries: (\d+)/)![1]));
    // Over 70 workloads share the egress body (all but db have no egress policy): no set
    // beyond 64, and that body is reached through two sets.
    expect(Math.max(...sizes.map(Number))).toBe(64);
    const targets = body.map((r) => r.split(' ').pop());
    expect(targets.filter((t) => targets.indexOf(t) !== targets.lastIndexOf(t))).toHaveLength(2);
    // The last workload is in the kernel's sets.
    const iface = ((podEvent('prod', 'many-69', '10.66.0.70', {}) as { resource: Resource }).resource.spec as { interfaceName: string }).interfaceName;
    expect((await ns.exec('ipset', ['save'])).stdout).toContain(`,${iface}`);
  });
});
