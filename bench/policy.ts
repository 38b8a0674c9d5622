// npm run bench -- policy [--endpoints 10000] [--policies 500] [--ops 1000] [--families 4,6] [--backend auto|nft|legacy] [--trace]
//
// In fresh network namespaces: full sync of N endpoints and M policies (half Kubernetes, half
// Calico, selectors over ~50 label values) through PolicyCalculator + IptablesDataplane,
// against the baseline: one `ipset restore` + one `iptables-restore` per table of the final
// ruleset (taken from the first namespace with ipset save / iptables-save) into an empty
// namespace, in the same run. Then single-pod adds/deletes: time from datastore event to
// rules applied (p50/p99). Prints RSS.
import { execFileSync, spawn } from 'node:child_process';
import { detectBackend, IptablesDataplane, type Exec, type Family } from '../acl/index.js';
import { defaultExec } from '../acl/iptables.js';
import { PolicyCalculator } from '../agent/calc/policy.js';
import { profileFromNamespace, workloadEndpointFromPod } from '../datastore/derive.js';
import type { DatastoreEvent, Resource } from '../datastore/index.js';

function arg(args: string[], name: string, def: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : def;
}

function nsExec(ns: string): Exec {
  return (cmd, args, input) => defaultExec('ip', ['netns', 'exec', ns, cmd, ...args], input);
}

const APPS = Array.from({ length: 50 }, (_, i) => `app${i}`);
const TIERS = ['web', 'api', 'db', 'cache', 'batch'];
export const ENVS = ['prod', 'staging', 'dev'];
export const NAMESPACES = Array.from({ length: 20 }, (_, i) => `ns${i}`);

export function podEvent(i: number, node: string): DatastoreEvent {
  const ns = NAMESPACES[i % NAMESPACES.length]!;
  const ip = `10.${64 + Math.floor(i / 65536)}.${Math.floor(i / 256) % 256}.${i % 256}`;
  const pod: Resource = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: `pod-${i}`, namespace: ns, labels: { app: APPS[i % 50]!, tier: TIERS[i % 5]!, env: ENVS[i % 3]! } },
    spec: { nodeName: node, containers: [{ name: 'c', ports: i % 4 === 0 ? [{ name: 'http', containerPort: 8080 + (i % 3) }] : [] }] },
    status: { podIP: ip, podIPs: [{ ip }] },
  };
  const wep = workloadEndpointFromPod(pod)!;
  return { type: 'update', kind: 'WorkloadEndpoint', key: `WorkloadEndpoint/${ns}/${wep.metadata.name}`, resource: wep };
}

export function policyEvents(n: number): DatastoreEvent[] {
  const out: DatastoreEvent[] = [];
  for (let i = 0; i < n; i++) {
    const ns = NAMESPACES[i % NAMESPACES.length]!;
    const a = APPS[i % 50]!;
    const b = APPS[(i * 7 + 3) % 50]!;
    if (i % 2 === 0) {
      const r: Resource = {
        apiVersion: 'networking.k8s.io/v1',
        kind: 'NetworkPolicy',
        metadata: { name: `k8s-${i}`, namespace: ns },
        spec: {
          podSelector: { matchLabels: { app: a } },
          policyTypes: i % 6 === 0 ? ['Ingress', 'Egress'] : ['Ingress'],
          ingress: [
            {
              from: [{ podSelector: { matchLabels: { app: b } } }, { namespaceSelector: { matchExpressions: [{ key: 'env', operator: 'In', values: [ENVS[i % 3]!] }] } }],
              ports: [{ protocol: 'TCP', port: 80 }, { protocol: 'TCP', port: 'http' }, { protocol: 'UDP', port: 5000, endPort: 5010 }],
            },
          ],
          egress: i % 6 === 0 ? [{ to: [{ ipBlock: { cidr: '10.0.0.0/8', except: ['10.99.0.0/16'] } }] }] : [],
        },
      };
      out.push({ type: 'update', kind: 'KubernetesNetworkPolicy', key: `KubernetesNetworkPolicy/${ns}/k8s-${i}`, resource: r });
    } else {
      const global = i % 10 === 1;
      const r: Resource = {
        apiVersion: 'projectcalico.org/v3',
        kind: global ? 'GlobalNetworkPolicy' : 'NetworkPolicy',
        metadata: global ? { name: `cal-${i}` } : { name: `cal-${i}`, namespace: ns },
        spec: {
          order: i,
          selector: `app == '${a}' && tier in {'${TIERS[i % 5]}', '${TIERS[(i + 1) % 5]}'}`,
          types: ['Ingress', 'Egress'],
          ingress: [
            { action: 'Deny', source: { selector: `env == 'dev' && app == '${b}'` } },
            { action: 'Allow', protocol: 'TCP', source: { selector: `tier == '${TIERS[(i + 2) % 5]}'` }, destination: { ports: [443, '8000:8100', 'http'] } },
          ],
          egress: [{ action: 'Allow', destination: { selector: `app starts with 'app${i % 5}'` } }, { action: 'Pass' }],
        },
      };
      out.push({
        type: 'update',
        kind: global ? 'GlobalNetworkPolicy' : 'NetworkPolicy',
        key: global ? `GlobalNetworkPolicy/cal-${i}` : `NetworkPolicy/${ns}/cal-${i}`,
        resource: r,
      });
    }
  }
  return out;
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

export default async function bench(args: string[]): Promise<void> {
  const N = Number(arg(args, 'endpoints', '10000'));
  const M = Number(arg(args, 'policies', '500'));
  const OPS = Number(arg(args, 'ops', '1000'));
  const families = arg(args, 'families', '4,6').split(',').map(Number) as Family[];
  const backendArg = arg(args, 'backend', 'auto');
  const node = 'bench-node';
  const inner = process.env.PTAC_BENCH_INNER;
  if (!inner) {
    // Re-run inside namespace A, as the agent runs on a node: its iptables/ipset commands are
    // then plain execs (no `ip netns exec` per apply). The baseline goes to namespace B.
    const nsA = `ptac-bench-a-${process.pid}`;
    const nsB = `ptac-bench-b-${process.pid}`;
    execFileSync('ip', ['netns', 'add', nsA]);
    execFileSync('ip', ['netns', 'add', nsB]);
    try {
      await new Promise<void>((resolve, reject) => {
        const p = spawn('ip', ['netns', 'exec', nsA, process.execPath, ...process.execArgv, process.argv[1]!, 'policy', ...args], {
          stdio: 'inherit',
          env: { ...process.env, PTAC_BENCH_INNER: `${nsA},${nsB}` },
        });
        p.on('error', reject);
        p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`benchmark exited ${code}`))));
      });
    } finally {
      for (const n of [nsA, nsB]) {
        try {
          execFileSync('ip', ['netns', 'del', n]);
        } catch {
          /* gone */
        }
      }
    }
    return;
  }
  const [, nsB] = inner.split(',') as [string, string];
  {
    const events: DatastoreEvent[] = [];
    for (const ns of NAMESPACES) {
      const p = profileFromNamespace({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, labels: { env: ENVS[Number(ns.slice(2)) % 3]! } } });
      events.push({ type: 'update', kind: 'Profile', key: `Profile/${p.metadata.name}`, resource: p });
    }
    for (let i = 0; i < N; i++) events.push(podEvent(i, node));
    events.push(...policyEvents(M));
    events.push({ type: 'in-sync' });

    // ---- Petrel: full sync
    const calc = new PolicyCalculator({ nodeName: node, ipVersions: families });
    const restoreTimes: Record<string, number> = {};
    const backend = backendArg === 'legacy' || backendArg === 'nft' ? backendArg : await detectBackend(defaultExec);
    let ruleWrites = 0;
    // --trace: when each command of the full sync ran, to see what overlaps what.
    const trace: string[] = [];
    let traceT0 = 0;
    const traced: Exec = !args.includes('--trace')
      ? defaultExec
      : async (cmd, a, input) => {
          const s0 = performance.now() - traceT0;
          const r = await defaultExec(cmd, a, input);
          if (traceT0) trace.push(`  ${s0.toFixed(0).padStart(5)} -> ${(performance.now() - traceT0).toFixed(0).padStart(5)} ms  ${cmd} ${a.join(' ')} (${input?.length ?? 0} bytes in)`);
          return r;
        };
    const dp = new IptablesDataplane({ ipVersions: families, exec: traced, backend, refreshIntervalMs: 0, onRestore: (what) => void (what.includes('|') && ruleWrites++) });
    const t0 = performance.now();
    calc.onEvents(events);
    const t1 = performance.now();
    traceT0 = t1;
    await dp.apply(calc.desired);
    const t2 = performance.now();
    traceT0 = 0;
    const stats = calc.desired.stats();
    const rssFull = process.memoryUsage().rss;
    console.log(`endpoints ${N}, policies ${M} (${calc.status().policiesActive} active), families ${families.join('+')}, backend ${backend}`);
    console.log(`ruleset: ${stats.chains} chains, ${stats.rules} rules, ${stats.ipsets} ipsets, ${stats.members} members`);
    console.log(`petrel full sync: ${(t2 - t0).toFixed(0)} ms (calculation ${(t1 - t0).toFixed(0)} ms, kernel read + diff + restore ${(t2 - t1).toFixed(0)} ms)`);
    if (trace.length) console.log(`commands of the full sync (from the end of the calculation):\n${trace.join('\n')}`);

    // ---- Baseline: the same final ruleset restored once into an empty namespace.
    const a = defaultExec;
    const b = nsExec(nsB);
    const ipsetSave = (await a('ipset', ['save'])).stdout;
    const saves: Array<{ bin: string; text: string }> = [];
    for (const f of families) {
      for (const t of ['filter', 'nat']) {
        const bin = `${f === 4 ? 'iptables' : 'ip6tables'}-${backend}`;
        saves.push({ bin: `${bin}-restore`, text: (await a(`${bin}-save`, ['-t', t])).stdout });
      }
    }
    const b0 = performance.now();
    const r1 = await b('ipset', ['restore'], ipsetSave);
    if (r1.code !== 0) throw new Error(`baseline ipset restore: ${r1.stderr}`);
    for (const s of saves) {
      const r = await b(s.bin, ['--noflush'], s.text);
      if (r.code !== 0) throw new Error(`baseline ${s.bin}: ${r.stderr}`);
    }
    const b1 = performance.now();
    const base = b1 - b0;
    const full = t2 - t0;
    console.log(`baseline (one ipset restore + one iptables-restore per table of the final ruleset): ${base.toFixed(0)} ms`);
    console.log(`full sync ratio petrel/baseline: ${(full / base).toFixed(2)}x (target <= 1.3x)`);

    // ---- The tool's floor for one small change in this ruleset: a one-rule restore.
    const floor: number[] = [];
    for (let k = 0; k < 10; k++) {
      const bin = `iptables-${backend}-restore`;
      const s0 = performance.now();
      await a(bin, ['--noflush'], `*filter\n-A pet-failsafe-in -m comment --comment bench-floor -j RETURN\nCOMMIT\n`);
      floor.push(performance.now() - s0);
      await a(bin, ['--noflush'], `*filter\n-D pet-failsafe-in -m comment --comment bench-floor -j RETURN\nCOMMIT\n`);
    }
    console.log(`floor: one ${backend} iptables-restore --noflush adding one rule to this ruleset: p50 ${pct(floor, 50).toFixed(1)} ms`);

    // ---- Incremental: single-pod adds and deletes, event to rules applied.
    const lat: number[] = [];
    const calcLat: number[] = [];
    let opsWithRules = 0;
    for (let k = 0; k < OPS; k++) {
      const i = N + Math.floor(k / 2);
      const ev: DatastoreEvent =
        k % 2 === 0 ? podEvent(i, node) : { type: 'delete', kind: 'WorkloadEndpoint', key: (podEvent(i, node) as { key: string }).key };
      const s0 = performance.now();
      calc.onEvents([ev]);
      const s1 = performance.now();
      const before = ruleWrites;
      await dp.apply(calc.desired);
      if (ruleWrites > before) opsWithRules++;
      lat.push(performance.now() - s0);
      calcLat.push(s1 - s0);
    }
    console.log(
      `incremental (${OPS} single-pod adds/deletes, event → applied): p50 ${pct(lat, 50).toFixed(1)} ms, p99 ${pct(lat, 99).toFixed(1)} ms, max ${Math.max(...lat).toFixed(1)} ms (target p99 < 50 ms)`,
    );
    console.log(`  of which calculation: p50 ${pct(calcLat, 50).toFixed(1)} ms, p99 ${pct(calcLat, 99).toFixed(1)} ms; the rest is ipset/iptables-restore`);
    console.log(`  ${opsWithRules} of ${OPS} changes wrote iptables rules (a new body chain or interface set); the others changed ipset members only`);
    const mem = process.memoryUsage();
    console.log(`RSS after full sync ${(rssFull / 1048576).toFixed(0)} MiB; at end ${(mem.rss / 1048576).toFixed(0)} MiB (heap used ${(mem.heapUsed / 1048576).toFixed(0)} MiB)`);
    void restoreTimes;
    dp.stop();
  }
}
