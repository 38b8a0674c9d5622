// `npm run bench -- lab` (root): a 3-node lab (etcd datastore, full mesh).
//  1. WorkloadEndpoint written to etcd → its /32 route present in the other two nodes' FIBs
//     (p50/p99 over 200 endpoints; their addresses lie outside node-1's blocks, so node-1
//     advertises each /32 over BGP and the others program it).
//  2. Policy written to etcd → enforced (a TCP connect between pods on two nodes fails), and
//     deleted → restored (p50/p99 over 20 rounds).
//  3. Per-agent RSS at rest and CPU used during the endpoint churn.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Lab, nodeNs } from '../test/lab/lab.js';

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

function procStats(pid: number): { rssMiB: number; cpuS: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rss = Number(status.match(/VmRSS:\s+(\d+)/)?.[1] ?? 0) / 1024;
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime + stime
  return { rssMiB: Math.round(rss * 10) / 10, cpuS: ticks / 100 };
}

/** Follows route additions in a namespace: resolves `waitFor(prefix)` when the route appears. */
function routeWatcher(ns: string) {
  const seen = new Map<string, number>();
  const waiters = new Map<string, (t: number) => void>();
  const p = spawn('ip', ['netns', 'exec', ns, 'ip', 'monitor', 'route'], { stdio: ['ignore', 'pipe', 'ignore'] });
  let buf = '';
  p.stdout.on('data', (d) => {
    const now = performance.now();
    buf += d.toString();
    const lines = buf.split('\n');
    buf = lines.pop() ?? '';
    for (const l of lines) {
      if (l.startsWith('Deleted')) continue;
      const dst = l.split(' ')[0];
      if (!dst) continue;
      const key = dst.includes('/') ? dst : `${dst}/32`;
      seen.set(key, now);
      waiters.get(key)?.(now);
      waiters.delete(key);
    }
  });
  return {
    waitFor(prefix: string): Promise<number> {
      const t = seen.get(prefix);
      if (t !== undefined) return Promise.resolve(t);
      return new Promise((resolve) => waiters.set(prefix, resolve));
    },
    stop: () => p.kill(),
  };
}

export default async function main(args: string[]): Promise<void> {
  const count = Number(args[0] ?? 200);
  const lab = new Lab({ nodes: 3, podsPerNode: 1, dir: '.lab/bench' });
  console.log('lab bench: building 3 nodes (etcd, full mesh)...');
  await lab.up();
  try {
    for (let i = 1; i <= 3; i++) {
      await lab.waitFor(async () => (await lab.agentStatus(i)).bgp.peers.every((p: any) => p.state === 'Established'), 60_000, 'mesh');
    }
    await new Promise((r) => setTimeout(r, 2000));
    const pids = lab.state.agentPids;
    const rest = Object.fromEntries(Object.entries(pids).map(([n, pid]) => [n, procStats(pid)]));

    // 1. endpoint → remote FIB
    const watchers = [routeWatcher(nodeNs(2)), routeWatcher(nodeNs(3))];
    const latencies: number[] = [];
    const churnStart = Object.fromEntries(Object.entries(pids).map(([n, pid]) => [n, procStats(pid).cpuS]));
    const t0 = performance.now();
    for (let k = 0; k < count; k++) {
      const ip = `10.244.${200 + Math.floor(k / 250)}.${1 + (k % 250)}`;
      const name = `node--1-k8s-bench--${k}-eth0`;
      const wep = {
        kind: 'WorkloadEndpoint',
        apiVersion: 'projectcalico.org/v3',
        metadata: { name, namespace: 'default', labels: { app: `bench-${k}`, 'projectcalico.org/namespace': 'default' } },
        spec: {
          orchestrator: 'k8s',
          node: 'node-1',
          pod: `bench-${k}`,
          endpoint: 'eth0',
          ipNetworks: [`${ip}/32`],
          profiles: ['kns.default'],
          interfaceName: `calibench${k}`.slice(0, 15),
        },
      };
      const start = performance.now();
      await lab.etcdPut(`/calico/resources/v3/projectcalico.org/workloadendpoints/default/${name}`, wep);
      const [a, b] = await Promise.all(watchers.map((w) => w.waitFor(`${ip}/32`)));
      latencies.push(Math.max(a, b) - start);
    }
    const churnS = (performance.now() - t0) / 1000;
    const churnCpu = Object.fromEntries(Object.entries(pids).map(([n, pid]) => [n, procStats(pid).cpuS - churnStart[n]]));
    watchers.forEach((w) => w.stop());

    // 2. policy → enforcement
    const a = lab.state.pods.find((p) => p.node === 1)!;
    const b = lab.state.pods.find((p) => p.node === 2)!;
    const enforce: number[] = [];
    const restore: number[] = [];
    const key = '/calico/resources/v3/projectcalico.org/networkpolicies/default/bench-isolate';
    for (let r = 0; r < 20; r++) {
      const pol = {
        kind: 'NetworkPolicy',
        apiVersion: 'projectcalico.org/v3',
        metadata: { name: 'bench-isolate', namespace: 'default' },
        spec: { selector: `app == '${b.name}'`, types: ['Ingress'] },
      };
      let s = performance.now();
      await lab.etcdPut(key, pol);
      while (await lab.tcpOk(a, b.ip, 0.1));
      enforce.push(performance.now() - s);
      s = performance.now();
      await lab.etcdDel(key);
      while (!(await lab.tcpOk(a, b.ip, 0.1)));
      restore.push(performance.now() - s);
    }

    const f = (x: number) => `${x.toFixed(0)} ms`;
    console.log(`\nendpoint written to etcd -> /32 route in both other nodes' FIBs (${count} endpoints):`);
    console.log(`  p50 ${f(pct(latencies, 50))}   p99 ${f(pct(latencies, 99))}   max ${f(Math.max(...latencies))}`);
    console.log(`policy written to etcd -> enforced across nodes (20 rounds, probe granularity ~100 ms):`);
    console.log(`  enforce p50 ${f(pct(enforce, 50))}  p99 ${f(pct(enforce, 99))};  delete -> restored p50 ${f(pct(restore, 50))}  p99 ${f(pct(restore, 99))}`);
    console.log(`agents at rest (RSS) and during the endpoint churn (${churnS.toFixed(1)} s, CPU seconds and % of one core):`);
    for (const n of Object.keys(pids)) {
      console.log(`  ${n}: RSS ${rest[n].rssMiB} MiB at rest; churn CPU ${churnCpu[n].toFixed(2)} s (${((churnCpu[n] / churnS) * 100).toFixed(0)}%)`);
    }
  } finally {
    await lab.down();
  }
}
