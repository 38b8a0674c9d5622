// `npm run bench -- cni [pods] [allocations]`: the petrel CNI plugin against Debian's bridge +
// host-local plugins, measured in the same run on fresh namespaces.
//  1. Sequential ADD of N pods (default 200), then DEL of each: p50/p99 per call, with etcd
//     (etcd runs inside the bench's node namespace, so the plugin reaches it on loopback).
//  2. The same N pods with bridge + host-local (no datastore work) on fresh namespaces.
//  3. 1,000 IPAM allocations from 3 concurrent nodes against etcd: allocations/s, conflicts retried.
//  Peak RSS of one plugin process (GNU time) and of the bench process.
// Everything runs inside namespaces the bench creates (prefix ptcn), removed at the end.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ipam } from '../cni/ipam/ipam.js';
import { EtcdIpamStore } from '../cni/ipam/etcd.js';
import { EtcdJson } from '../cni/etcd.js';
import { NetNs } from '../test/netns.js';
import { createNode, execPlugin, installPlugin, netnsPath, PREFIX } from '../test/cni/harness.js';
import { freePort, startEtcd } from '../test/etcd.js';

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}
const f = (x: number) => x.toFixed(1);

async function etcdInNode(node: NetNs): Promise<{ endpoint: string; stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'ptcn-bench-etcd-'));
  const cp = await freePort();
  const pp = await freePort();
  const ep = `http://127.0.0.1:${cp}`;
  const proc: ChildProcess = node.spawn('/usr/bin/etcd', [
    '--name', 'b', '--data-dir', join(dir, 'd'), '--listen-client-urls', ep, '--advertise-client-urls', ep,
    '--listen-peer-urls', `http://127.0.0.1:${pp}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${pp}`,
    '--initial-cluster', `b=http://127.0.0.1:${pp}`, '--log-level', 'error', '--logger', 'zap',
  ]);
  for (let i = 0; i < 100; i++) {
    try {
      await node.exec('etcdctl', ['--endpoints', ep, 'endpoint', 'health']);
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    endpoint: ep,
    async stop() {
      proc.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function peakRss(bin: string, stdin: string, env: Record<string, string>, node: NetNs): Promise<number> {
  return new Promise((resolve) => {
    const p = spawn('ip', ['netns', 'exec', node.name, '/usr/bin/time', '-f', 'RSS=%M', bin], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    p.on('close', () => resolve(Number(err.match(/RSS=(\d+)/)?.[1] ?? 0)));
    p.stdin.end(stdin);
  });
}

export default async function bench(args: string[]): Promise<void> {
  const N = Number(args[0] ?? 200);
  const ALLOCS = Number(args[1] ?? 1000);
  if (process.getuid?.() !== 0) throw new Error('bench cni needs root (network namespaces)');
  const inst = installPlugin();
  const node = await createNode('10.220.255.1');
  const cleanup: (() => Promise<void>)[] = [async () => inst.cleanup(), () => node.destroy()];
  try {
    const etcd = await etcdInNode(node);
    cleanup.push(() => etcd.stop());
    execFileSync('ip', ['netns', 'exec', node.name, 'etcdctl', '--endpoints', etcd.endpoint, 'put', '/calico/resources/v3/projectcalico.org/ippools/bench',
      JSON.stringify({ apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: 'bench' }, spec: { cidr: '10.220.0.0/16', blockSize: 26 } })]);
    const petrelConf = JSON.stringify({ cniVersion: '1.0.0', name: 'k8s-pod-network', type: 'petrel', datastore_type: 'etcdv3', etcd_endpoints: etcd.endpoint, nodename: 'bench-node', ipam: { type: 'petrel-ipam' } });
    const hostLocalDir = mkdtempSync(join(tmpdir(), 'ptcn-bench-hl-'));
    cleanup.push(async () => rmSync(hostLocalDir, { recursive: true, force: true }));
    const bridgeConf = JSON.stringify({ cniVersion: '1.0.0', name: 'bench-bridge', type: 'bridge', bridge: 'ptcnbr0', isGateway: true, ipMasq: false, ipam: { type: 'host-local', subnet: '10.221.0.0/16', dataDir: hostLocalDir } });

    // Interleaved (petrel, then bridge, then a bare `node -e 0`, pod after pod) so that both
    // plugins see the same machine load; each on fresh namespaces. The plugins run through
    // `ip netns exec <node>` (the node is a namespace, not the host); that wrapper is timed too.
    type Side = { label: string; bin: string; conf: string; pods: NetNs[]; add: number[]; del: number[] };
    const sides: Side[] = [
      { label: 'petrel', bin: join(inst.binDir, 'petrel'), conf: petrelConf, pods: [], add: [], del: [] },
      { label: 'bridge', bin: '/usr/lib/cni/bridge', conf: bridgeConf, pods: [], add: [], del: [] },
    ];
    const bare: number[] = [];
    const wrap: number[] = [];
    try {
      for (const sd of sides) for (let i = 0; i < N; i++) sd.pods.push(await NetNs.create(PREFIX));
      const args = (sd: Side, i: number) => ({
        containerId: `${sd.label}-${i}`,
        netns: netnsPath(sd.pods[i]),
        ifname: 'eth0',
        args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=${sd.label}-${i}`,
        cniPath: inst.cniPath,
        node,
      });
      for (let i = 0; i < N; i++) {
        for (const sd of sides) {
          const r = await execPlugin(sd.bin, sd.conf, { command: 'ADD', ...args(sd, i) });
          if (r.code !== 0) throw new Error(`${sd.label} ADD ${i} failed: ${r.stdout} ${r.stderr}`);
          sd.add.push(r.ms);
        }
        let t = performance.now();
        await node.exec(process.execPath, ['-e', '0']);
        bare.push(performance.now() - t);
        t = performance.now();
        await node.exec('true', []);
        wrap.push(performance.now() - t);
      }
      for (let i = 0; i < N; i++) {
        for (const sd of sides) {
          const r = await execPlugin(sd.bin, sd.conf, { command: 'DEL', ...args(sd, i) });
          if (r.code !== 0) throw new Error(`${sd.label} DEL ${i} failed: ${r.stdout}`);
          sd.del.push(r.ms);
        }
      }
    } finally {
      const all = sides.flatMap((sd) => sd.pods);
      for (let i = 0; i < all.length; i += 25) await Promise.all(all.slice(i, i + 25).map((p) => p.destroy()));
    }
    const [petrel, debian] = sides;

    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'rss-1', CNI_IFNAME: 'eth0', CNI_PATH: inst.cniPath, CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=rss' };
    const rssPod = await NetNs.create(PREFIX);
    const rssPetrel = await peakRss(join(inst.binDir, 'petrel'), petrelConf, { ...env, CNI_NETNS: netnsPath(rssPod) }, node);
    await execPlugin(join(inst.binDir, 'petrel'), petrelConf, { command: 'DEL', containerId: 'rss-1', netns: netnsPath(rssPod), ifname: 'eth0', args: env.CNI_ARGS, cniPath: inst.cniPath, node });
    const rssBridge = await peakRss('/usr/lib/cni/bridge', bridgeConf, { ...env, CNI_CONTAINERID: 'rss-2', CNI_NETNS: netnsPath(rssPod) }, node);
    await rssPod.destroy();

    console.log(`\nCNI ADD/DEL latency, ${N} pods sequentially, one node, interleaved (ms; every call includes ~${f(pct(wrap, 50))} ms of 'ip netns exec'; a bare 'node -e 0' there, interleaved: p50 ${f(pct(bare, 50))} ms)`);
    console.log('plugin                         ADD p50   ADD p99   DEL p50   DEL p99');
    const row = (name: string, r: { add: number[]; del: number[] }) =>
      console.log(`${name.padEnd(30)} ${f(pct(r.add, 50)).padStart(7)}   ${f(pct(r.add, 99)).padStart(7)}   ${f(pct(r.del, 50)).padStart(7)}   ${f(pct(r.del, 99)).padStart(7)}`);
    row('petrel + petrel-ipam (etcd)', petrel);
    row('debian bridge + host-local', debian);
    console.log(`ratio petrel/debian: ADD p50 ${f(pct(petrel.add, 50) / pct(debian.add, 50))}x, DEL p50 ${f(pct(petrel.del, 50) / pct(debian.del, 50))}x`);
    console.log(`target p50 ADD <= 100 ms: ${pct(petrel.add, 50) <= 100 ? 'met' : 'NOT met'} (${f(pct(petrel.add, 50))} ms; a bare node start is ${f(pct(bare, 50))} ms of it: petrel's own work ${f(pct(petrel.add, 50) - pct(bare, 50))} ms)`);
    console.log(`peak RSS of one ADD process: petrel ${(rssPetrel / 1024).toFixed(1)} MiB, bridge ${(rssBridge / 1024).toFixed(1)} MiB`);
  } finally {
    for (const c of cleanup.reverse()) await c().catch(() => undefined);
  }

  // 3. IPAM throughput: 3 nodes allocating concurrently against one etcd.
  const etcd = await startEtcd();
  try {
    const setup = new EtcdJson({ endpoints: [etcd.endpoint] });
    await setup.put('/calico/resources/v3/projectcalico.org/ippools/tp', JSON.stringify({ apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: 'tp' }, spec: { cidr: '10.222.0.0/16', blockSize: 26 } }));
    setup.close();
    const WORKERS = 4;
    const ipams = [0, 1, 2].map(() => new Ipam(new EtcdIpamStore(new EtcdJson({ endpoints: [etcd.endpoint] }))));
    let next = 0;
    const t0 = performance.now();
    const ips: string[] = [];
    await Promise.all(
      ipams.flatMap((ipam, n) =>
        Array.from({ length: WORKERS }, async () => {
          while (next < ALLOCS) {
            const i = next++;
            ips.push(...(await ipam.assign({ handleId: `tp.${i}`, host: `node-${n}`, attrs: { node: `node-${n}` }, num4: 1, num6: 0 })));
          }
        }),
      ),
    );
    const secs = (performance.now() - t0) / 1000;
    const conflicts = ipams.reduce((a, i) => a + i.stats.conflicts, 0);
    console.log(`\nIPAM: ${ALLOCS} allocations from 3 concurrent nodes (${WORKERS} in flight each) against etcd: ${(ALLOCS / secs).toFixed(0)} allocations/s, ${conflicts} conflicts retried, ${new Set(ips).size === ips.length ? 'all unique' : 'DUPLICATES'}`);
    console.log(`bench process RSS: ${(process.memoryUsage().rss / 1048576).toFixed(1)} MiB`);
    for (const i of ipams) await i.store.close();
  } finally {
    await etcd.stop();
  }
  if (!existsSync('/usr/lib/cni/bridge')) console.log('note: /usr/lib/cni/bridge missing; install containernetworking-plugins');
}
