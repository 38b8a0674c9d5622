// Policy lab: one node network namespace with "pods" as further namespaces on veths, wired
// the Calico way (pod: /32 address, 169.254.1.1 gateway; node: /32 route per pod, proxy ARP
// on the host veth named cali + sha1(ns.pod)[:11]), a file datastore directory with plain
// Kubernetes manifests, the policy dataplane running inside the node namespace, and a probe
// process in every pod (TCP/UDP servers + a prober) to measure reachability pod to pod.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { policyDigest } from '../../agent/calc/policy.js';
import { interfaceNameForPod } from '../../datastore/derive.js';
import { NetNs, vethPair } from '../netns.js';

const here = dirname(fileURLToPath(import.meta.url));
/** dist/test/acl (the compiled driver and probe live there; `npm test` builds first). */
const distDir = here.includes(`${join('dist', 'test', 'acl')}`) ? here : resolve(here, '../../dist/test/acl');

export interface PodDef {
  ns: string;
  name: string;
  labels?: Record<string, string>;
  serviceAccount?: string;
  /** containerPort entries (named ports). */
  ports?: Array<{ name: string; containerPort: number; protocol?: 'TCP' | 'UDP' }>;
}

export interface LabDef {
  nodeName: string;
  namespaces: Array<{ name: string; labels?: Record<string, string> }>;
  serviceAccounts?: Array<{ ns: string; name: string; labels?: Record<string, string> }>;
  pods: PodDef[];
  tcpPorts: number[];
  udpPorts: number[];
}

export interface Pod {
  def: PodDef;
  id: string; // ns/name
  netns: NetNs;
  ip: string;
  ip6: string;
  iface: string;
  proc: ChildProcess;
  pending: Map<number, (ok: boolean) => void>;
}

export interface Probe {
  from: string;
  to: string;
  proto: 'tcp' | 'udp';
  port: number;
  family?: 4 | 6;
}

let probeId = 0;

function lines(proc: ChildProcess, onLine: (l: string) => void): void {
  createInterface({ input: proc.stdout! }).on('line', onLine);
}

export class PolicyLab {
  node!: NetNs;
  readonly pods = new Map<string, Pod>();
  readonly dir: string;
  dataplane?: ChildProcess;
  private applied: Array<{ applied: number; policies: string[]; errors: unknown[] }> = [];
  private waiters: Array<() => void> = [];
  stderr = '';

  private constructor(readonly def: LabDef) {
    this.dir = mkdtempSync(join(tmpdir(), 'ptac-ds-'));
  }

  static async create(def: LabDef): Promise<PolicyLab> {
    const lab = new PolicyLab(def);
    try {
      await lab.build();
    } catch (e) {
      await lab.destroy();
      throw e;
    }
    return lab;
  }

  private async build(): Promise<void> {
    this.node = await NetNs.create('ptac');
    await this.node.exec('sysctl', ['-qw', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']);
    // proxy ARP answers for 169.254.1.1 only if the node has a route to it (via another device).
    await this.node.exec('ip', ['route', 'add', '169.254.1.1/32', 'dev', 'lo']);
    let i = 0;
    for (const def of this.def.pods) {
      i++;
      const ip = `10.65.0.${10 + i}`;
      const ip6 = `fd00:65::${(10 + i).toString(16)}`;
      const iface = interfaceNameForPod(def.ns, def.name);
      const netns = await NetNs.create('ptac');
      await vethPair(netns, 'eth0', [`${ip}/32`, `${ip6}/128`], this.node, iface, 'fe80::1/64');
      await netns.exec('ip', ['route', 'add', '169.254.1.1', 'dev', 'eth0', 'scope', 'link']);
      await netns.exec('ip', ['route', 'add', 'default', 'via', '169.254.1.1', 'dev', 'eth0']);
      await netns.exec('ip', ['-6', 'route', 'add', 'default', 'via', 'fe80::1', 'dev', 'eth0']);
      await this.node.exec('ip', ['route', 'add', `${ip}/32`, 'dev', iface, 'scope', 'link']);
      await this.node.exec('ip', ['-6', 'route', 'add', `${ip6}/128`, 'dev', iface]);
      await this.node.exec('sysctl', ['-qw', `net.ipv4.conf.${iface}.proxy_arp=1`, `net.ipv4.neigh.${iface}.proxy_delay=0`]);
      const proc = netns.spawn('node', [join(distDir, 'probe.js'), this.def.tcpPorts.join(','), this.def.udpPorts.join(',')]);
      const pod: Pod = { def, id: `${def.ns}/${def.name}`, netns, ip, ip6, iface, proc, pending: new Map() };
      const ready = new Promise<void>((res, rej) => {
        proc.once('exit', (c) => rej(new Error(`probe in ${pod.id} exited ${c}`)));
        lines(proc, (l) => {
          const m = JSON.parse(l);
          if (m.ready) res();
          else pod.pending.get(m.id)?.(m.ok), pod.pending.delete(m.id);
        });
      });
      await ready;
      this.pods.set(pod.id, pod);
    }
    this.writeBase();
  }

  /** Namespaces, service accounts and pods as plain Kubernetes manifests. */
  private writeBase(): void {
    const docs: unknown[] = [];
    for (const n of this.def.namespaces) docs.push({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: n.name, labels: n.labels ?? {} } });
    for (const sa of this.def.serviceAccounts ?? [])
      docs.push({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: sa.name, namespace: sa.ns, labels: sa.labels ?? {} } });
    for (const p of this.pods.values()) docs.push(this.podManifest(p.def, p.ip, p.ip6));
    writeFileSync(join(this.dir, 'cluster.yaml'), docs.map((d) => stringify(d)).join('---\n'));
    this.setPolicyDocs([]);
  }

  podManifest(def: PodDef, ip: string, ip6: string): unknown {
    return {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: def.name, namespace: def.ns, labels: def.labels ?? {} },
      spec: {
        nodeName: this.def.nodeName,
        serviceAccountName: def.serviceAccount ?? 'default',
        containers: [{ name: 'main', image: 'probe', ports: def.ports ?? [] }],
      },
      status: { phase: 'Running', podIP: ip, podIPs: [{ ip }, { ip: ip6 }] },
    };
  }

  private setPolicyDocs(docs: unknown[]): void {
    writeFileSync(join(this.dir, 'policies.yaml'), docs.length ? docs.map((d) => stringify(d)).join('---\n') : '');
  }

  /**
   * Starts the policy dataplane inside the node namespace on the lab's file datastore:
   * `petrel agent --bgp disabled` (default), or with PTAC_HARNESS=driver the small driver
   * (test/acl/driver.ts) that runs only the policy calculator and dataplane.
   */
  async startDataplane(): Promise<void> {
    if (this.mode === 'agent') return this.startAgent();
    const proc = this.node.spawn('node', [join(distDir, 'driver.js'), this.dir, this.def.nodeName], {
      env: { ...process.env, LOG_LEVEL: 'warn' },
    });
    this.dataplane = proc;
    proc.stderr!.on('data', (d) => (this.stderr += d.toString()));
    lines(proc, (l) => {
      try {
        const m = JSON.parse(l);
        if (m.applied) {
          this.applied.push(m);
          for (const w of this.waiters.splice(0)) w();
        }
      } catch {
        /* log line */
      }
    });
    await this.waitApplied(() => true, 20_000);
  }

  readonly mode: 'agent' | 'driver' = process.env.PTAC_HARNESS === 'driver' ? 'driver' : 'agent';

  private async startAgent(): Promise<void> {
    const cli = resolve(distDir, '../../agent/cli.js');
    const proc = this.node.spawn(
      'node',
      [cli, 'agent', '--datastore-type', 'file', '--datastore-path', this.dir, '--nodename', this.def.nodeName, '--bgp', 'disabled', '--log-level', 'warn'],
      { env: { ...process.env, LOG_LEVEL: 'warn' } },
    );
    this.dataplane = proc;
    proc.stderr!.on('data', (d) => (this.stderr += d.toString()));
    proc.stdout!.on('data', (d) => (this.stderr += d.toString()));
    await this.waitAgent(policyDigest([]), 30_000);
  }

  /** Polls the agent's /status until the policy set with this digest is applied. */
  private async waitAgent(digest: string, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last: any;
    for (;;) {
      try {
        const r = await this.node.exec('curl', ['-s', '--max-time', '2', 'http://127.0.0.1:9099/status']);
        last = JSON.parse(r.stdout)?.dataplane?.policy;
        const k = last?.kernel;
        if (last && last.inSync && last.policyDigest === digest && !last.pending && k?.applied && !k.applying && !k.lastError) {
          this.applied.push({ applied: k.applies, policies: [], errors: last.errors });
          return;
        }
      } catch {
        /* not listening yet */
      }
      if (Date.now() > deadline) throw new Error(`agent did not apply in time; policy status: ${JSON.stringify(last)?.slice(0, 1500)}; output: ${this.stderr.slice(-2000)}`);
      await new Promise((res) => setTimeout(res, 100));
    }
  }

  private async waitApplied(pred: (a: { policies: string[] }) => boolean, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const last = this.applied[this.applied.length - 1];
      if (last && pred(last)) return;
      if (Date.now() > deadline) throw new Error(`dataplane did not apply in time; last: ${JSON.stringify(last)}; stderr: ${this.stderr.slice(-2000)}`);
      await new Promise<void>((res) => {
        const t = setTimeout(res, 200);
        this.waiters.push(() => {
          clearTimeout(t);
          res();
        });
      });
    }
  }

  private writes = 0;

  /** Replaces the policy manifests and waits until the dataplane applied exactly these. */
  async setPolicies(docs: Array<{ apiVersion: string; kind: string; metadata: { name: string; namespace?: string } }>): Promise<void> {
    // The agent's policyDigest (and the driver's list) covers policy keys only, so two writes with
    // the same names (e.g. "Deny (order 1) before Allow" then "Allow (order 1) before Deny") look
    // applied before the agent has even read the second: the file datastore re-reads 75 ms after
    // the write, and the old rules were probed (seen: `applies` unchanged when the wait returned,
    // the probe got the old verdict). Each write therefore carries its own inert policy (selects
    // nothing), last in the file: once its key is in the digest, the whole write has been read.
    docs = [...docs, { apiVersion: 'projectcalico.org/v3', kind: 'GlobalNetworkPolicy', metadata: { name: `ptac-write-${++this.writes}` }, spec: { selector: "ptac-write == 'none'", types: ['Ingress'] } } as (typeof docs)[number]];
    const keys = docs
      .filter((d) => d.kind.endsWith('NetworkPolicy'))
      .map((d) => {
        const kind = d.apiVersion === 'networking.k8s.io/v1' ? 'KubernetesNetworkPolicy' : d.kind;
        return kind === 'GlobalNetworkPolicy' ? `${kind}/${d.metadata.name}` : `${kind}/${d.metadata.namespace ?? 'default'}/${d.metadata.name}`;
      })
      .sort();
    this.setPolicyDocs(docs);
    if (this.mode === 'agent') await this.waitAgent(policyDigest(keys));
    else await this.waitApplied((a) => JSON.stringify(a.policies) === JSON.stringify(keys));
  }

  lastApply(): { applied: number; policies: string[]; errors: unknown[] } | undefined {
    return this.applied[this.applied.length - 1];
  }

  private probeOne(p: Probe, timeoutMs: number): Promise<boolean> {
    const from = this.pods.get(p.from)!;
    const to = this.pods.get(p.to)!;
    const id = ++probeId;
    return new Promise((res) => {
      from.pending.set(id, res);
      from.proc.stdin!.write(JSON.stringify({ id, host: p.family === 6 ? to.ip6 : to.ip, port: p.port, proto: p.proto, timeoutMs }) + '\n');
    });
  }

  /** Runs every probe (in parallel) and returns `from -> to proto/port` → reachable. */
  async probe(probes: Probe[], timeoutMs = 700): Promise<Map<string, boolean>> {
    const out = new Map<string, boolean>();
    const results = await Promise.all(probes.map((p) => this.probeOne(p, timeoutMs)));
    probes.forEach((p, i) => out.set(probeKey(p), results[i]!));
    // A miss may be a lost first packet (ARP): re-probe the failures once.
    const misses = probes.filter((p) => !out.get(probeKey(p)));
    if (misses.length) {
      const again = await Promise.all(misses.map((p) => this.probeOne(p, timeoutMs)));
      misses.forEach((p, i) => out.set(probeKey(p), again[i]!));
    }
    return out;
  }

  async destroy(): Promise<void> {
    this.dataplane?.kill('SIGKILL');
    for (const p of this.pods.values()) {
      p.proc.kill('SIGKILL');
      await p.netns.destroy();
    }
    await this.node?.destroy();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export function probeKey(p: Probe): string {
  return `${p.from} -> ${p.to} ${p.proto}/${p.port}${p.family === 6 ? ' (IPv6)' : ''}`;
}
