// The lab: an N-node Petrel cluster on this machine, built from network namespaces.
//
//   fabric netns (plab-fab): one bridge per subnet (br1 = 10.99.1.0/24, br2 = 10.99.2.0/24...),
//     routes between them, and runs etcd on 10.99.1.254:2379.
//   node netns (plab-n<i>): eth0 on its subnet's bridge, runs `petrel agent` (etcd datastore).
//   pod netns (plab-n<i>-p<j>): wired by `petrel-cni` exactly as a container runtime calls it.
//
// Only private addresses (10.99.x underlay, 10.244.0.0/16 pods) inside our own namespaces.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from '../netns.js';

const here = dirname(fileURLToPath(import.meta.url));
/** Repository root, from source (test/lab) or from dist (dist/test/lab). */
export const REPO = existsSync(join(here, '../../package.json')) ? resolve(here, '../..') : resolve(here, '../../..');
const CLI = join(REPO, 'dist/agent/cli.js');
const CNI = join(REPO, 'dist/cni/main.js');
const PROBE = join(REPO, 'dist/test/lab/probe.js');
export const PROBE_PORT = 7000;

export const FABRIC = 'plab-fab';
export const ETCD_IP = '10.99.1.254';
export const ETCD_URL = `http://${ETCD_IP}:2379`;
export const POOL_CIDR = '10.244.0.0/16';

export interface LabOptions {
  nodes: number;
  podsPerNode: number;
  /** subnet (1-based) of each node; default all on subnet 1. */
  subnets?: number[];
  vxlanMode?: 'Never' | 'Always' | 'CrossSubnet';
  mesh?: boolean;
  /** 1-based index of the node that is a route reflector (mesh is then off unless asked). */
  routeReflector?: number;
  /** where logs and state go; default <repo>/.lab */
  dir?: string;
  /** BGP graceful-restart time the mesh advertises (seconds). */
  restartTime?: number;
}

export interface LabPod {
  node: number;
  index: number;
  name: string;
  netns: string;
  ip: string;
}

export interface LabState {
  opts: LabOptions;
  dir: string;
  etcdPid?: number;
  agentPids: Record<string, number>;
  pods: LabPod[];
}

export const nodeName = (i: number) => `node-${i}`;
export const nodeNs = (i: number) => `plab-n${i}`;
export const nodeIp = (i: number, subnet: number) => `10.99.${subnet}.${10 + i}`;

/** Runs a command inside a namespace. */
export function nsExec(ns: string, cmd: string, args: string[], opts: { input?: string; timeoutMs?: number; env?: Record<string, string> } = {}) {
  if (opts.env) {
    const envArgs = Object.entries(opts.env).map(([k, v]) => `${k}=${v}`);
    return run('ip', ['netns', 'exec', ns, 'env', ...envArgs, cmd, ...args], opts);
  }
  return run('ip', ['netns', 'exec', ns, cmd, ...args], opts);
}

export class Lab {
  readonly dir: string;
  readonly state: LabState;
  private procs = new Map<string, ChildProcess>();

  constructor(readonly opts: LabOptions) {
    this.dir = resolve(REPO, opts.dir ?? '.lab');
    this.state = { opts, dir: this.dir, agentPids: {}, pods: [] };
  }

  /** The lab described by a state file left by `up` (for `status` from another process). */
  static load(dir: string = join(REPO, '.lab')): Lab | undefined {
    const f = join(dir, 'state.json');
    if (!existsSync(f)) return undefined;
    const st = JSON.parse(readFileSync(f, 'utf8')) as LabState;
    const lab = new Lab({ ...st.opts, dir });
    Object.assign(lab.state, st);
    return lab;
  }

  subnetOf(i: number): number {
    return this.opts.subnets?.[i - 1] ?? 1;
  }

  ipOf(i: number): string {
    return nodeIp(i, this.subnetOf(i));
  }

  private save(): void {
    writeFileSync(join(this.dir, 'state.json'), JSON.stringify(this.state, null, 2));
  }

  /** Builds the fabric, etcd, resources, nodes with agents, and pods. */
  async up(log: (s: string) => void = () => undefined): Promise<void> {
    await Lab.down(this.dir).catch(() => undefined);
    mkdirSync(this.dir, { recursive: true });
    const n = this.opts.nodes;
    const subnets = [...new Set(Array.from({ length: n }, (_, k) => this.subnetOf(k + 1)))].sort();

    log(`fabric: subnets ${subnets.map((s) => `10.99.${s}.0/24`).join(', ')}`);
    await run('ip', ['netns', 'add', FABRIC]);
    await nsExec(FABRIC, 'ip', ['link', 'set', 'lo', 'up']);
    await nsExec(FABRIC, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    for (const s of subnets) {
      await nsExec(FABRIC, 'ip', ['link', 'add', `br${s}`, 'type', 'bridge']);
      await nsExec(FABRIC, 'ip', ['addr', 'add', `10.99.${s}.254/24`, 'dev', `br${s}`]);
      await nsExec(FABRIC, 'ip', ['link', 'set', `br${s}`, 'up']);
    }
    // etcd on the fabric (the datastore every node reaches over its underlay).
    rmSync(join(this.dir, 'etcd'), { recursive: true, force: true });
    await this.startEtcd();

    for (let i = 1; i <= n; i++) {
      const ns = nodeNs(i);
      const s = this.subnetOf(i);
      await run('ip', ['netns', 'add', ns]);
      await nsExec(ns, 'ip', ['link', 'set', 'lo', 'up']);
      await run('ip', ['link', 'add', `plab${i}a`, 'type', 'veth', 'peer', 'name', `plab${i}b`]);
      await run('ip', ['link', 'set', `plab${i}a`, 'netns', ns]);
      await run('ip', ['link', 'set', `plab${i}b`, 'netns', FABRIC]);
      await nsExec(ns, 'ip', ['link', 'set', `plab${i}a`, 'name', 'eth0']);
      await nsExec(ns, 'ip', ['addr', 'add', `${this.ipOf(i)}/24`, 'dev', 'eth0']);
      await nsExec(ns, 'ip', ['link', 'set', 'eth0', 'up']);
      await nsExec(ns, 'ip', ['route', 'add', 'default', 'via', `10.99.${s}.254`]);
      await nsExec(ns, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
      await nsExec(FABRIC, 'ip', ['link', 'set', `plab${i}b`, 'master', `br${s}`]);
      await nsExec(FABRIC, 'ip', ['link', 'set', `plab${i}b`, 'up']);
    }
    log(`nodes: ${Array.from({ length: n }, (_, k) => `${nodeName(k + 1)} ${this.ipOf(k + 1)}`).join(', ')}`);

    await this.ctlApply(this.resources());
    for (let i = 1; i <= n; i++) await this.startAgent(i);
    log('agents started; waiting for readiness');
    for (let i = 1; i <= n; i++) await this.waitReady(i);

    for (let i = 1; i <= n; i++) {
      for (let j = 1; j <= this.opts.podsPerNode; j++) this.state.pods.push(await this.addPod(i, j));
    }
    log(`pods: ${this.state.pods.map((p) => `${p.name}=${p.ip}`).join(', ')}`);
    this.save();
  }

  /** The cluster's resources, as an operator would write them (Calico manifests). */
  resources(): string {
    const n = this.opts.nodes;
    const rr = this.opts.routeReflector;
    const mesh = this.opts.mesh ?? rr === undefined;
    const docs: string[] = [
      // The namespace the pods live in: its profile (kns.default) lets the pods talk by default,
      // as on any Kubernetes cluster without policy.
      `apiVersion: v1
kind: Namespace
metadata: {name: default}`,
      `apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: lab-pool}
spec:
  cidr: ${POOL_CIDR}
  blockSize: 26
  ipipMode: Never
  vxlanMode: ${this.opts.vxlanMode ?? 'Never'}
  natOutgoing: false
  nodeSelector: all()`,
      `apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata: {name: default}
spec:
  asNumber: 64512
  nodeToNodeMeshEnabled: ${mesh}${mesh ? `\n  nodeMeshMaxRestartTime: ${this.opts.restartTime ?? 120}s` : ''}`,
      `apiVersion: projectcalico.org/v3
kind: FelixConfiguration
metadata: {name: default}
spec:
  routeRefreshInterval: 30s
  iptablesRefreshInterval: 30s`,
    ];
    for (let i = 1; i <= n; i++) {
      const labels = [`lab.petrel.io/subnet: "${this.subnetOf(i)}"`];
      if (rr === i) labels.push('route-reflector: "true"');
      docs.push(`apiVersion: projectcalico.org/v3
kind: Node
metadata:
  name: ${nodeName(i)}
  labels: {${labels.join(', ')}}
spec:
  bgp:
    ipv4Address: ${this.ipOf(i)}/24${rr === i ? '\n    routeReflectorClusterID: 224.0.0.1' : ''}
  ipv4VXLANTunnelAddr: 10.244.255.${i}
  vxlanTunnelMACAddr: "66:99:00:00:00:${i.toString(16).padStart(2, '0')}"`);
    }
    if (rr !== undefined) {
      docs.push(`apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: {name: peer-with-route-reflectors}
spec:
  nodeSelector: all()
  peerSelector: route-reflector == 'true'`);
    }
    return docs.join('\n---\n') + '\n';
  }

  /** `petrel ctl apply -f -` inside the fabric (where etcd is). */
  async ctlApply(yaml: string): Promise<void> {
    await nsExec(FABRIC, process.execPath, [CLI, 'ctl', '--datastore-type', 'etcdv3', '--etcd-endpoints', ETCD_URL, 'apply', '-f', '-'], {
      input: yaml,
    });
  }

  async ctl(args: string[], input?: string): Promise<string> {
    const r = await nsExec(FABRIC, process.execPath, [CLI, 'ctl', '--datastore-type', 'etcdv3', '--etcd-endpoints', ETCD_URL, ...args], { input });
    return r.stdout;
  }

  async startAgent(i: number): Promise<void> {
    const logFile = join(this.dir, `${nodeName(i)}.log`);
    this.startProc(nodeName(i), nodeNs(i), process.execPath, ['--max-semi-space-size=2', CLI, 'agent'], {
      DATASTORE_TYPE: 'etcdv3',
      ETCD_ENDPOINTS: ETCD_URL,
      NODENAME: nodeName(i),
      PETREL_HEALTH_HOST: '127.0.0.1',
      PETREL_HEALTH_PORT: '9099',
      LOG_LEVEL: process.env.LAB_LOG_LEVEL ?? 'info',
    }, logFile);
    this.state.agentPids[nodeName(i)] = this.procs.get(nodeName(i))!.pid!;
    this.save();
  }

  /** SIGKILLs a node's agent (no shutdown at all), as a crash or OOM kill would. */
  killAgent(i: number): void {
    const p = this.procs.get(nodeName(i));
    this.procs.delete(nodeName(i));
    if (!p?.pid) throw new Error(`${nodeName(i)}: no agent process to kill`);
    if (p.exitCode !== null || p.signalCode !== null) {
      const tail = readFileSync(join(this.dir, `${nodeName(i)}.log`), 'utf8').split('\n').slice(-15).join('\n');
      throw new Error(`${nodeName(i)}'s agent had already exited (${p.exitCode ?? p.signalCode}); its log ends:\n${tail}`);
    }
    process.kill(p.pid, 'SIGKILL');
  }

  /** TCP connect check from a pod (fast: no process start-up beyond nc). */
  async tcpOk(from: LabPod, ip: string, timeoutS = 0.3): Promise<boolean> {
    return run('ip', ['netns', 'exec', from.netns, 'timeout', String(timeoutS), 'nc', '-z', ip, String(PROBE_PORT)]).then(
      () => true,
      () => false,
    );
  }

  /** Writes a resource straight into etcd as calicoctl does (JSON under Calico's key). */
  async etcdPut(key: string, value: unknown): Promise<void> {
    await nsExec(FABRIC, 'etcdctl', ['--endpoints', ETCD_URL, 'put', key, JSON.stringify(value)], { env: { ETCDCTL_API: '3' } });
  }

  async etcdDel(key: string): Promise<void> {
    await nsExec(FABRIC, 'etcdctl', ['--endpoints', ETCD_URL, 'del', key], { env: { ETCDCTL_API: '3' } });
  }

  async agentStatus(i: number): Promise<any> {
    const r = await nsExec(nodeNs(i), 'curl', ['-s', '--max-time', '2', 'http://127.0.0.1:9099/status']);
    return JSON.parse(r.stdout);
  }

  async readiness(i: number): Promise<{ code: number; body: any }> {
    const r = await nsExec(nodeNs(i), 'curl', ['-s', '--max-time', '2', '-w', '\n%{http_code}', 'http://127.0.0.1:9099/readiness']).catch(
      () => ({ stdout: '\n0' }),
    );
    const lines = r.stdout.trimEnd().split('\n');
    const code = Number(lines.pop());
    let body: any = {};
    try {
      body = JSON.parse(lines.join('\n'));
    } catch {
      /* not up */
    }
    return { code, body };
  }

  async waitReady(i: number, ms = 60_000): Promise<void> {
    await this.waitFor(async () => (await this.readiness(i)).code === 200, ms, `${nodeName(i)} ready`, async () =>
      JSON.stringify((await this.readiness(i)).body),
    );
  }

  /** Runs the CNI plugin inside the node's netns exactly as a container runtime does. */
  async cni(i: number, command: 'ADD' | 'DEL' | 'CHECK', pod: { name: string; netns: string; containerId: string }): Promise<any> {
    const conf = JSON.stringify({
      cniVersion: '1.0.0',
      name: 'k8s-pod-network',
      type: 'petrel',
      datastore_type: 'etcdv3',
      etcd_endpoints: ETCD_URL,
      nodename: nodeName(i),
      mtu: 1450,
      ipam: { type: 'petrel-ipam' },
    });
    const env = {
      CNI_COMMAND: command,
      CNI_CONTAINERID: pod.containerId,
      CNI_NETNS: `/var/run/netns/${pod.netns}`,
      CNI_IFNAME: 'eth0',
      CNI_ARGS: `K8S_POD_NAMESPACE=default;K8S_POD_NAME=${pod.name};K8S_POD_INFRA_CONTAINER_ID=${pod.containerId}`,
      CNI_PATH: '/usr/lib/cni',
    };
    const r = await nsExec(nodeNs(i), process.execPath, [CNI], { input: conf, env });
    return r.stdout.trim() ? JSON.parse(r.stdout) : {};
  }

  async addPod(i: number, j: number, labels: Record<string, string> = {}): Promise<LabPod> {
    const name = `pod-${i}-${j}`;
    const netns = `plab-n${i}-p${j}`;
    await run('ip', ['netns', 'add', netns]);
    await run('ip', ['netns', 'exec', netns, 'ip', 'link', 'set', 'lo', 'up']);
    const result = await this.cni(i, 'ADD', { name, netns, containerId: `lab-${name}` });
    const ip = String(result.ips?.[0]?.address ?? '').split('/')[0];
    if (!ip) throw new Error(`CNI ADD for ${name} returned no address: ${JSON.stringify(result)}`);
    const pod: LabPod = { node: i, index: j, name, netns, ip };
    await this.labelPod(pod, { app: name, node: nodeName(i), ...labels });
    this.startProc(`probe-${name}`, netns, process.execPath, [PROBE, 'serve', String(PROBE_PORT)]);
    return pod;
  }

  /** Labels a pod's workload endpoint (an orchestrator's job; CNI writes the endpoint). */
  async labelPod(pod: LabPod, labels: Record<string, string>): Promise<void> {
    const wepName = `${nodeName(pod.node).replace(/-/g, '--')}-k8s-${pod.name.replace(/-/g, '--')}-eth0`;
    const wep = JSON.parse(await this.ctl(['get', 'workloadendpoint', wepName, '-o', 'json']));
    wep.metadata.labels = { ...(wep.metadata.labels ?? {}), ...labels };
    delete wep.metadata.resourceVersion;
    await this.ctlApply(JSON.stringify(wep));
  }

  async delPod(pod: LabPod): Promise<void> {
    await this.cni(pod.node, 'DEL', { name: pod.name, netns: pod.netns, containerId: `lab-${pod.name}` });
    await run('ip', ['netns', 'del', pod.netns]).catch(() => undefined);
    this.state.pods = this.state.pods.filter((p) => p !== pod);
    this.save();
  }

  /** One ping from a pod to an address: true when answered. */
  async ping(from: LabPod, ip: string, timeoutS = 1): Promise<boolean> {
    return run('ip', ['netns', 'exec', from.netns, 'ping', '-c', '1', '-W', String(timeoutS), ip]).then(
      () => true,
      () => false,
    );
  }

  /** Reachability matrix pod × pod by ping. */
  async matrix(): Promise<{ from: string; to: string; ok: boolean }[]> {
    const out: { from: string; to: string; ok: boolean }[] = [];
    const pairs = this.state.pods.flatMap((a) => this.state.pods.filter((b) => b !== a).map((b) => [a, b] as const));
    // A few at a time: bounded load, bounded time.
    for (let k = 0; k < pairs.length; k += 8) {
      const chunk = pairs.slice(k, k + 8);
      const res = await Promise.all(chunk.map(([a, b]) => this.ping(a, b.ip, 2)));
      chunk.forEach(([a, b], x) => out.push({ from: a.name, to: b.name, ok: res[x] }));
    }
    return out;
  }

  /** TCP and UDP reachability from every pod to every other pod (echo on PROBE_PORT). */
  async probeMatrix(timeoutMs = 1500): Promise<{ from: string; to: string; tcp: boolean; udp: boolean }[]> {
    const pods = this.state.pods;
    const rows = await Promise.all(
      pods.map(async (a) => {
        const targets = pods.filter((b) => b !== a);
        const r = await run('ip', ['netns', 'exec', a.netns, process.execPath, PROBE, 'check', String(PROBE_PORT), String(timeoutMs), ...targets.map((b) => b.ip)]);
        const res = JSON.parse(r.stdout) as Record<string, { tcp: boolean; udp: boolean }>;
        return targets.map((b) => ({ from: a.name, to: b.name, ...res[b.ip] }));
      }),
    );
    return rows.flat();
  }

  async routes(i: number, proto?: string): Promise<string[]> {
    const args = ['route', 'show', ...(proto ? ['proto', proto] : [])];
    const r = await nsExec(nodeNs(i), 'ip', args);
    return r.stdout.split('\n').filter(Boolean);
  }

  /** Stops etcd (SIGSTOP-free: a real kill) keeping its data; `startEtcd()` brings it back. */
  stopEtcd(): void {
    const p = this.procs.get('etcd');
    if (p?.pid) process.kill(p.pid, 'SIGKILL');
    this.procs.delete('etcd');
  }

  /** Starts etcd on the fabric (keeping its data dir) and waits until it answers. */
  async startEtcd(): Promise<void> {
    const etcdDir = join(this.dir, 'etcd');
    this.startProc('etcd', FABRIC, '/usr/bin/etcd', [
      '--name', 'lab', '--data-dir', etcdDir,
      '--listen-client-urls', `${ETCD_URL},http://127.0.0.1:2379`,
      '--advertise-client-urls', ETCD_URL,
      '--listen-peer-urls', 'http://127.0.0.1:2380',
      '--initial-advertise-peer-urls', 'http://127.0.0.1:2380',
      '--initial-cluster', 'lab=http://127.0.0.1:2380',
    ]);
    this.state.etcdPid = this.procs.get('etcd')?.pid;
    this.save();
    await this.waitFor(async () => {
      await nsExec(FABRIC, 'etcdctl', ['--endpoints', ETCD_URL, 'endpoint', 'health'], { env: { ETCDCTL_API: '3' } });
      return true;
    }, 20_000, 'etcd healthy');
  }

  private startProc(name: string, ns: string, cmd: string, args: string[], env: Record<string, string> = {}, logFile?: string): void {
    const fd = openSync(logFile ?? join(this.dir, `${name}.log`), 'a');
    const p = spawn('ip', ['netns', 'exec', ns, cmd, ...args], {
      stdio: ['ignore', fd, fd],
      env: { ...process.env, ...env },
      detached: true,
    });
    closeSync(fd);
    p.unref();
    this.procs.set(name, p);
  }

  async waitFor(fn: () => Promise<boolean>, ms: number, what: string, detail?: () => Promise<string>): Promise<void> {
    const end = Date.now() + ms;
    let last: unknown;
    while (Date.now() < end) {
      try {
        if (await fn()) return;
      } catch (e) {
        last = e;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    const extra = detail ? await detail().catch(() => '') : '';
    throw new Error(`lab: timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''} ${extra}`);
  }

  /** Tears everything down: processes, every plab-* namespace, the state. */
  async down(): Promise<void> {
    await Lab.down(this.dir);
  }

  static async down(dir: string = join(REPO, '.lab')): Promise<void> {
    const stateFile = join(dir, 'state.json');
    if (existsSync(stateFile)) {
      try {
        const st = JSON.parse(readFileSync(stateFile, 'utf8')) as LabState;
        for (const pid of [st.etcdPid, ...Object.values(st.agentPids)]) {
          if (pid) {
            try {
              process.kill(pid, 'SIGKILL');
            } catch {
              /* gone */
            }
          }
        }
      } catch {
        /* unreadable state: namespaces are still removed below */
      }
    }
    const { stdout } = await run('ip', ['netns', 'list']);
    const names = stdout
      .split('\n')
      .map((l) => l.split(' ')[0])
      .filter((n) => n.startsWith('plab-'));
    for (const ns of names) {
      const pids = await run('ip', ['netns', 'pids', ns]).then((r) => r.stdout.split(/\s+/).filter(Boolean), () => []);
      for (const pid of pids) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
    // Pods first, then nodes, then the fabric.
    for (const ns of names.sort((a, b) => b.length - a.length)) await run('ip', ['netns', 'del', ns]).catch(() => undefined);
    rmSync(stateFile, { force: true });
  }
}
