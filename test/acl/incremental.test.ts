// Incremental apply against a real kernel (in a netns): one pod added changes only its own
// chains, the dispatch chains and the members of the sets that select it; other software's
// chains and sets survive every apply; drift is repaired on resync; garbage from
// iptables-save fails loudly and writes nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataplaneReadError, IptablesDataplane, type Exec } from '../../acl/index.js';
import { PolicyCalculator } from '../../agent/calc/policy.js';
import { workloadEndpointFromPod, profileFromNamespace } from '../../datastore/derive.js';
import type { DatastoreEvent, Resource } from '../../datastore/index.js';
import { NetNs, requireRoot } from '../netns.js';

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
    dp = new IptablesDataplane({ ipVersions: [4, 6], exec, refreshIntervalMs: 0, onRestore: (w, i) => restores.push([w, i]) });
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
  });
  let swapped = '';
  afterAll(async () => {
    dp?.stop();
    await ns?.destroy();
  });

  it('a set of ours with another maxelem is re-created through a temp set and swap', async () => {
    const first = restores.find(([w]) => w === 'ipset')![1];
    expect(first).toMatch(new RegExp(`^swap ${swapped.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} pet-4t:\\d+$`, 'm'));
    const list = (await ns.exec('ipset', ['list', swapped])).stdout;
    expect(list).toContain('maxelem 1048576');
    expect(list).not.toContain('192.168.99.0/24');
    expect(list).toContain('10.65.1.3');
    expect((await ns.exec('ipset', ['list', '-n'])).stdout).not.toMatch(/pet-4t:/);
  });

  it('the first apply programs everything and keeps the foreign chain', async () => {
    const s = await save();
    expect(s).toContain(':FOREIGN-CHAIN');
    expect(s).toMatch(/-A INPUT .*-j pet-INPUT/);
    expect(s).toMatch(/-A INPUT -j FOREIGN-CHAIN/);
    expect(s).toContain('-A FOREIGN-CHAIN -p tcp -m tcp --dport 7777 -j ACCEPT');
    expect(s).toContain(':pet-pi-knp.prod.db');
  });

  it('adding one pod touches only its chains, the dispatch chains and its set memberships', async () => {
    restores.length = 0;
    calc.onEvents([podEvent('prod', 'web-2', '10.65.1.5', { app: 'web' })]);
    await dp.apply(calc.desired);
    const ipset = restores.filter(([w]) => w === 'ipset').map(([, i]) => i).join('');
    const ipsetLines = ipset.trim().split('\n');
    // Only the "from app=web" selector set gains the new address; no create, no destroy.
    expect(ipsetLines).toHaveLength(1);
    expect(ipsetLines[0]).toMatch(/^add pet-4s:\S+ 10\.65\.1\.5$/);
    const filter4 = restores.find(([w]) => w === '4|filter')![1];
    const touched = new Set([...filter4.matchAll(/^(?::(\S+)|-[ADIX] (\S+))/gm)].map((m) => m[1] ?? m[2]));
    const newChains = [...touched].filter((c) => c!.startsWith('pet-tw-') || c!.startsWith('pet-fw-'));
    expect(newChains).toHaveLength(2);
    expect([...touched].sort()).toEqual([...newChains, 'pet-from-wl-dispatch', 'pet-to-wl-dispatch'].sort());
    // Dispatch chains get one inserted rule each, not a rewrite.
    expect(filter4.match(/^-I pet-(from|to)-wl-dispatch \d+ /gm)).toHaveLength(2);
    expect(filter4).not.toMatch(/^:pet-(from|to)-wl-dispatch/m);
    // No nat change at all.
    expect(restores.some(([w]) => w.endsWith('|nat'))).toBe(false);
    const s = await save();
    expect(s).toMatch(/-A INPUT -j FOREIGN-CHAIN/);
    expect(s).toContain('-A FOREIGN-CHAIN -p tcp -m tcp --dport 7777 -j ACCEPT');
  });

  it('an unchanged state applies nothing', async () => {
    restores.length = 0;
    calc.onEvents([podEvent('prod', 'web-2', '10.65.1.5', { app: 'web' })]);
    await dp.apply(calc.desired);
    expect(restores).toEqual([]);
  });

  it('deleting the pod removes its chains and memberships only; other sets survive', async () => {
    restores.length = 0;
    const key = `WorkloadEndpoint/prod/${NODE.replace(/-/g, '--')}-k8s-web--2-eth0`;
    calc.onEvents([{ type: 'delete', kind: 'WorkloadEndpoint', key }]);
    await dp.apply(calc.desired);
    const ipset = restores.filter(([w]) => w === 'ipset').map(([, i]) => i).join('').trim().split('\n');
    expect(ipset).toHaveLength(1);
    expect(ipset[0]).toMatch(/^del pet-4s:\S+ 10\.65\.1\.5$/);
    const filter4 = restores.find(([w]) => w === '4|filter')![1];
    expect(filter4.match(/^-X pet-(tw|fw)-cali\w+$/gm)).toHaveLength(2);
    const sets = (await ns.exec('ipset', ['list', '-n'])).stdout;
    expect(sets).toContain('foreign-set');
    const s = await save();
    expect(s).toMatch(/-A INPUT -j FOREIGN-CHAIN/);
  });

  it('resync repairs drift in our chains and leaves the foreign chain alone', async () => {
    await ns.exec('iptables', ['-D', 'pet-FORWARD', '1']);
    await ns.exec('iptables', ['-I', 'pet-tw-' + (await save()).match(/:pet-tw-(\S+)/)![1], '1', '-j', 'ACCEPT']);
    const input = (await save()).split('\n').filter((l) => l.startsWith('-A INPUT'));
    await ns.exec('iptables', ['-D', 'INPUT', String(input.findIndex((l) => l.includes('-j pet-INPUT')) + 1)]);
    expect(await save()).not.toMatch(/-j pet-INPUT/);
    await dp.resync();
    const s = await save();
    expect(s).toMatch(/-A INPUT .*-j pet-INPUT/);
    expect(s).toMatch(/-A pet-FORWARD .*-j MARK --set-xmark 0x0\/0x30000/);
    expect(s).not.toMatch(/-A pet-tw-\S+ -j ACCEPT$/m);
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
});
