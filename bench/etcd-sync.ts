// `npm run bench -- etcd-sync [nodes] [weps] [updates]`: start-up sync of the etcdv3 backend
// from an etcd holding 5,000 Node and 50,000 WorkloadEndpoint resources (Calico's layout, as
// calicoctl writes them), against `etcdctl get --prefix /calico/resources/v3` (ETCDCTL_API=3,
// output to /dev/null) of the same keys in the same run. Prints both times, the ratio (target
// ≤ 2×), the agent's RSS after sync, and the steady-state update rate (events/s) it sustains.
import { spawn, spawnSync } from 'node:child_process';
import { openSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Etcd3 } from 'etcd3';
import { startEtcd } from '../test/etcd.js';

const here = dirname(fileURLToPath(import.meta.url));
const PREFIX = '/calico/resources/v3/projectcalico.org/';

function nodeValue(i: number): string {
  const name = `node-${i}`;
  return JSON.stringify({
    kind: 'Node',
    apiVersion: 'projectcalico.org/v3',
    metadata: { name, uid: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, creationTimestamp: '2026-11-20T10:00:00Z', labels: { 'kubernetes.io/hostname': name, 'kubernetes.io/os': 'linux' } },
    spec: { bgp: { ipv4Address: `10.${(i >> 8) & 255}.${i & 255}.1/16` }, orchRefs: [{ nodeName: name, orchestrator: 'k8s' }] },
    status: {},
  });
}

function wepValue(i: number, nodes: number, gen = 0): { key: string; value: string } {
  const node = `node-${i % nodes}`;
  const pod = `app-${i}`;
  const ns = `ns-${i % 50}`;
  const name = `${node.replace(/-/g, '--')}-k8s-${pod.replace(/-/g, '--')}-eth0`;
  const ip = `10.${64 + ((i >> 16) & 63)}.${(i >> 8) & 255}.${i & 255}`;
  return {
    key: `${PREFIX}workloadendpoints/${ns}/${name}`,
    value: JSON.stringify({
      kind: 'WorkloadEndpoint',
      apiVersion: 'projectcalico.org/v3',
      metadata: {
        name,
        namespace: ns,
        uid: `11111111-0000-4000-8000-${String(i).padStart(12, '0')}`,
        creationTimestamp: '2026-11-20T10:00:00Z',
        labels: { app: `app-${i % 100}`, gen: String(gen), 'projectcalico.org/namespace': ns, 'projectcalico.org/orchestrator': 'k8s', 'projectcalico.org/serviceaccount': 'default' },
      },
      spec: {
        orchestrator: 'k8s',
        node,
        containerID: `c${i.toString(16).padStart(15, '0')}`,
        pod,
        endpoint: 'eth0',
        serviceAccountName: 'default',
        ipNetworks: [`${ip}/32`],
        profiles: [`kns.${ns}`, `ksa.${ns}.default`],
        interfaceName: `cali${i.toString(16).padStart(11, '0')}`,
        mac: 'ee:ee:ee:ee:ee:ee',
      },
    }),
  };
}

async function putAll(client: Etcd3, kvs: Iterable<{ key: string; value: string }>): Promise<void> {
  const batch: { key: string; value: string }[][] = [[]];
  for (const kv of kvs) {
    if (batch[batch.length - 1]!.length >= 128) batch.push([]); // etcd's default --max-txn-ops
    batch[batch.length - 1]!.push(kv);
  }
  let next = 0;
  const worker = async () => {
    while (next < batch.length) {
      const b = batch[next++]!;
      await client.kv.txn({ compare: [], success: b.map((kv) => ({ request_put: { key: Buffer.from(kv.key), value: Buffer.from(kv.value) } })), failure: [] });
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
}

/** V8 flags of the agent as deployed (Dockerfile ENTRYPOINT). */
const AGENT_NODE_FLAGS = '--max-semi-space-size=2';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const mib = (b: number) => `${(b / 1048576).toFixed(0)} MiB`;

export default async function run(args: string[]): Promise<void> {
  const nodes = Number(args[0] ?? 5000);
  const weps = Number(args[1] ?? 50000);
  const updates = Number(args[2] ?? 20000);
  const etcd = await startEtcd({ extraArgs: ['--quota-backend-bytes', String(4 * 1024 ** 3)] });
  const client = new Etcd3({ hosts: etcd.endpoint });
  try {
    let t = performance.now();
    const all: { key: string; value: string }[] = [];
    for (let i = 0; i < nodes; i++) all.push({ key: `${PREFIX}nodes/node-${i}`, value: nodeValue(i) });
    for (let i = 0; i < weps; i++) all.push(wepValue(i, nodes));
    await putAll(client, all);
    const bytes = all.reduce((n, kv) => n + kv.key.length + kv.value.length, 0);
    console.log(`loaded ${nodes} Node + ${weps} WorkloadEndpoint resources (${mib(bytes)}) in ${((performance.now() - t) / 1000).toFixed(1)} s`);

    // Baseline: etcdctl reading the same keys, output discarded.
    const env = { ...process.env, ...etcd.etcdctlEnv };
    const base: number[] = [];
    for (let i = 0; i < 3; i++) {
      const out = openSync('/dev/null', 'w');
      t = performance.now();
      const r = spawnSync('etcdctl', ['get', '--prefix', '/calico/resources/v3', '--command-timeout=60s'], { env, stdio: ['ignore', out, 'inherit'] });
      base.push(performance.now() - t);
      if (r.status !== 0) throw new Error(`etcdctl failed: ${r.status}`);
    }

    // Petrel: the etcd backend in its own process, from start to in-sync (3 runs, median), with
    // the V8 flags the agent runs with (the image's entrypoint: `node --max-semi-space-size=2`);
    // PETREL_BENCH_NODE_FLAGS replaces them ('' = V8's defaults).
    const nodeFlags = (process.env.PETREL_BENCH_NODE_FLAGS ?? AGENT_NODE_FLAGS).split(' ').filter(Boolean);
    console.log(`agent process: node ${[...nodeFlags, '--expose-gc'].join(' ')}`);
    const mine: { ms: number; rss: number; heap: number; resources: number }[] = [];
    let rate = { count: 0, ms: 0 };
    for (let i = 0; i < 3; i++) {
      const child = spawn(process.execPath, ['--expose-gc', ...nodeFlags, join(here, '_etcd-sync-agent.js'), etcd.endpoint], { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, LOG_LEVEL: 'warn' } });
      let buf = '';
      const lines: string[] = [];
      child.stdout.setEncoding('utf8');
      child.stdout.on('data', (d: string) => {
        buf += d;
        let k;
        while ((k = buf.indexOf('\n')) >= 0) {
          lines.push(buf.slice(0, k));
          buf = buf.slice(k + 1);
        }
      });
      const waitLine = async (p: string) => {
        for (;;) {
          const l = lines.find((x) => x.startsWith(p));
          if (l) return JSON.parse(l.slice(p.length + 1));
          if (child.exitCode !== null) throw new Error(`agent exited (${child.exitCode}) before ${p}`);
          await new Promise((r) => setTimeout(r, 10));
        }
      };
      mine.push(await waitLine('SYNCED'));
      if (i === 2 && updates > 0) {
        // steady state: label changes to WorkloadEndpoints. (a) live, as fast as the writer goes;
        // (b) backlog: the agent is stopped (SIGSTOP) while they are written, then resumed, so its
        // own processing rate shows, not the writer's.
        child.stdin.write(`${updates}\n`);
        t = performance.now();
        await putAll(client, (function* () {
          for (let u = 0; u < updates; u++) yield wepValue(u % weps, nodes, 1 + Math.floor(u / weps));
        })());
        const writeMs = performance.now() - t;
        rate = await waitLine('UPDATES');
        console.log(`live: writer pushed ${updates} updates in ${(writeMs / 1000).toFixed(2)} s (${Math.round(updates / (writeMs / 1000))}/s); agent handled them at ${Math.round(rate.count / (rate.ms / 1000))} events/s`);
        lines.length = 0;
        child.kill('SIGSTOP');
        await putAll(client, (function* () {
          for (let u = 0; u < updates; u++) yield wepValue(u % weps, nodes, 1000 + Math.floor(u / weps));
        })());
        child.kill('SIGCONT');
        child.stdin.write(`${updates}\n`);
        rate = await waitLine('UPDATES');
      } else child.kill();
      await new Promise((r) => (child.exitCode !== null ? r(undefined) : child.once('exit', r)));
    }
    const b = median(base);
    const m = median(mine.map((x) => x.ms));
    const rssAfter = median(mine.map((x) => x.rss));
    console.log(`etcdctl get --prefix /calico/resources/v3 (baseline): ${base.map((x) => x.toFixed(0)).join(', ')} ms → median ${b.toFixed(0)} ms`);
    console.log(`petrel etcdv3 backend, start to in-sync: ${mine.map((x) => x.ms.toFixed(0)).join(', ')} ms → median ${m.toFixed(0)} ms (${mine[0]!.resources} resources)`);
    console.log(`ratio petrel/etcdctl: ${(m / b).toFixed(2)}× (target ≤ 2×)`);
    console.log(`agent RSS after sync: ${mib(rssAfter)} (heap used ${mib(median(mine.map((x) => x.heap)))})`);
    if (rate.count) console.log(`steady-state update rate (backlog after SIGSTOP/SIGCONT): ${rate.count} updates handled in ${(rate.ms / 1000).toFixed(2)} s = ${Math.round(rate.count / (rate.ms / 1000))} events/s`);
  } finally {
    client.close();
    await etcd.stop();
  }
}
