// Drives the petrel CNI plugin exactly as a container runtime does: the installed binaries
// (`petrel-cni install` into a temp CNI bin dir), env + stdin, exit code, stdout JSON, and a
// conflist runner that chains plugins as libcni does. Each simulated node is a network
// namespace (the plugin runs inside it via `ip netns exec`), so nothing touches the real host.
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { NetNs, run } from '../netns.js';

/** The package root (works from test/cni and from dist/test/cni). */
export const ROOT = (() => {
  let d = resolve(new URL('.', import.meta.url).pathname);
  while (!existsSync(join(d, 'package.json')) && d !== '/') d = resolve(d, '..');
  return d;
})();
export const DEBIAN_CNI = '/usr/lib/cni';
export const PREFIX = 'ptcn';

function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : e.name.endsWith('.ts') ? statSync(p).mtimeMs : 0);
  }
  return t;
}

/** Builds dist/ when the plugin's sources are newer than it (npm test builds first anyway). */
export function ensureBuilt(): void {
  const main = join(ROOT, 'dist', 'cni', 'main.js');
  // (a copy of dist/ without sources, e.g. a snapshot for benchmarking, is used as is)
  const stale = !existsSync(main) || (existsSync(join(ROOT, 'cni')) && newest(join(ROOT, 'cni')) > statSync(main).mtimeMs);
  if (stale) {
    try {
      execFileSync('npx', ['tsc', '-p', ROOT], { cwd: ROOT, stdio: 'pipe', timeout: 180_000 });
    } catch {
      /* type errors elsewhere in the tree still emit */
    }
  }
  if (!existsSync(main)) throw new Error('dist/cni/main.js missing: run npm run build');
}

export interface Installed {
  dir: string;
  binDir: string;
  netDir: string;
  /** CNI_PATH: our bin dir, then Debian's plugins */
  cniPath: string;
  cleanup(): void;
}

/** `petrel-cni install` into a temp dir, as the DaemonSet init container does. */
export function installPlugin(env: Record<string, string> = {}): Installed {
  ensureBuilt();
  const dir = mkdtempSync(join(tmpdir(), 'ptcn-'));
  const binDir = join(dir, 'bin');
  const netDir = join(dir, 'net.d');
  execFileSync(process.execPath, [join(ROOT, 'dist', 'cni', 'main.js'), 'install'], {
    env: { ...process.env, CNI_BIN_DIR: binDir, CNI_NET_DIR: netDir, ...env },
    stdio: 'pipe',
  });
  return { dir, binDir, netDir, cniPath: `${binDir}:${DEBIAN_CNI}`, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface CniCall {
  code: number;
  stdout: string;
  stderr: string;
  json: any;
  ms: number;
}

export interface CniArgs {
  command: 'ADD' | 'DEL' | 'CHECK' | 'VERSION';
  containerId?: string;
  netns?: string;
  ifname?: string;
  args?: string;
  cniPath: string;
  /** node namespace to run in (the plugin's "host") */
  node?: NetNs;
  extraEnv?: Record<string, string | undefined>;
}

/** Executes one plugin binary as a runtime does. */
export function execPlugin(bin: string, stdin: string, a: CniArgs): Promise<CniCall> {
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', CNI_COMMAND: a.command, CNI_PATH: a.cniPath };
  if (a.containerId !== undefined) env.CNI_CONTAINERID = a.containerId;
  if (a.netns !== undefined) env.CNI_NETNS = a.netns;
  if (a.ifname !== undefined) env.CNI_IFNAME = a.ifname;
  if (a.args !== undefined) env.CNI_ARGS = a.args;
  for (const [k, v] of Object.entries(a.extraEnv ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  const [cmd, argv] = a.node ? ['ip', ['netns', 'exec', a.node.name, bin]] : [bin, []];
  const t0 = performance.now();
  return new Promise((resolvep, reject) => {
    const p = spawn(cmd as string, argv as string[], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('error', reject);
    p.on('close', (code) => {
      let json: any;
      try {
        json = stdout.trim() ? JSON.parse(stdout) : undefined;
      } catch {
        json = undefined;
      }
      resolvep({ code: code ?? -1, stdout, stderr, json, ms: performance.now() - t0 });
    });
    p.stdin.end(stdin);
  });
}

export interface ConfList {
  cniVersion: string;
  name: string;
  plugins: Record<string, any>[];
  disableCheck?: boolean;
}

/**
 * Runs a conflist as libcni does (pkg/libcni api.go): ADD in order, each plugin getting the
 * previous result; DEL in reverse and CHECK in order, both with the final ADD result; the
 * runtime inserts cniVersion, name, runtimeConfig (declared capabilities only) and prevResult.
 */
export async function runConflist(
  list: ConfList,
  command: 'ADD' | 'DEL' | 'CHECK',
  a: Omit<CniArgs, 'command'> & { binDirs: string[]; capabilityArgs?: Record<string, unknown>; prevResult?: any },
): Promise<{ code: number; result?: any; error?: any; calls: CniCall[] }> {
  const order = command === 'DEL' ? [...list.plugins].reverse() : list.plugins;
  let prev = command === 'ADD' ? undefined : a.prevResult;
  const calls: CniCall[] = [];
  for (const plugin of order) {
    const { capabilities, ...rest } = plugin;
    const conf: Record<string, unknown> = { ...rest, cniVersion: list.cniVersion, name: list.name };
    const rc: Record<string, unknown> = {};
    for (const [cap, on] of Object.entries(capabilities ?? {})) if (on && a.capabilityArgs?.[cap] !== undefined) rc[cap] = a.capabilityArgs[cap];
    if (Object.keys(rc).length) conf.runtimeConfig = rc;
    if (prev !== undefined) conf.prevResult = prev;
    const bin = a.binDirs.map((d) => join(d, plugin.type)).find((p) => existsSync(p));
    if (!bin) return { code: 1, error: { code: 7, msg: `plugin ${plugin.type} not found` }, calls };
    const r = await execPlugin(bin, JSON.stringify(conf), { ...a, command });
    calls.push(r);
    if (r.code !== 0) return { code: r.code, error: r.json ?? r.stdout, calls };
    if (command === 'ADD') prev = r.json;
  }
  return { code: 0, result: prev, calls };
}

/** A node: a netns with forwarding on and an address on lo (the "host" the pods reach). */
export async function createNode(addr4: string, addr6?: string): Promise<NetNs> {
  const ns = await NetNs.create(PREFIX);
  await ns.exec('sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
  // A real host has a default route; proxy ARP (how pods reach 169.254.1.1) answers only for
  // destinations routed out of another interface. An uplink veth inside the node stands in.
  await ns.exec('ip', ['link', 'add', 'uplink0', 'type', 'veth', 'peer', 'name', 'uplink1']);
  await ns.exec('ip', ['link', 'set', 'uplink0', 'up']);
  await ns.exec('ip', ['link', 'set', 'uplink1', 'up']);
  await ns.exec('ip', ['route', 'add', 'default', 'dev', 'uplink0']);
  await ns.exec('ip', ['addr', 'add', `${addr4}/32`, 'dev', 'lo']);
  if (addr6) {
    await ns.exec('sysctl', ['-qw', 'net.ipv6.conf.all.forwarding=1']);
    await ns.exec('ip', ['-6', 'addr', 'add', `${addr6}/128`, 'dev', 'lo']);
  }
  return ns;
}

export const netnsPath = (ns: NetNs) => `/run/netns/${ns.name}`;

/** Links in a namespace (names). */
export async function links(ns: NetNs): Promise<string[]> {
  const { stdout } = await ns.exec('ip', ['-j', 'link', 'show']);
  return JSON.parse(stdout).map((l: any) => l.ifname);
}

export async function routes(ns: NetNs, v6 = false): Promise<any[]> {
  const { stdout } = await ns.exec('ip', ['-j', ...(v6 ? ['-6'] : []), 'route', 'show']);
  return JSON.parse(stdout || '[]');
}

export const ECHO_PORT = 7777;

/** A TCP server answering "ok" on [::]:7777 (IPv4 too) inside a namespace; killed with the namespace. */
export async function startEcho(ns: NetNs): Promise<void> {
  const child = ns.spawn(process.execPath, ['-e', `require('net').createServer(s=>s.end('ok')).listen(${ECHO_PORT},'::',()=>console.log('up'))`]);
  await new Promise<void>((resolvep, reject) => {
    child.stdout!.once('data', () => resolvep());
    child.once('exit', (c) => reject(new Error(`echo server in ${ns.name} exited ${c}`)));
  });
}

/** True when a TCP connection from `from` to `to`:7777 gets the echo server's answer (this image has no ping). */
export async function reach(from: NetNs, to: string): Promise<boolean> {
  const script = `const s=require('net').connect(${ECHO_PORT},${JSON.stringify(to)});let d='';s.on('data',x=>d+=x);s.on('end',()=>{process.stdout.write(d);process.exit(0)});s.on('error',()=>process.exit(0));s.setTimeout(1500,()=>process.exit(0))`;
  for (let i = 0; i < 3; i++) {
    const out = await from.exec(process.execPath, ['-e', script]).then((r) => r.stdout, () => '');
    if (out === 'ok') return true;
    await new Promise((r) => setTimeout(r, 300));
  }
  return false;
}

export { run, NetNs };

/**
 * Makes a service of the test process's namespace (etcd, the test API server: 127.0.0.1:port)
 * reachable at 127.0.0.1:<returned port> inside a node namespace, through a Unix socket (which
 * crosses namespaces), so the plugin runs inside the node namespace and no address or route is
 * ever added to the real host.
 */
export async function forwardIntoNode(node: NetNs, targetPort: number, targetHost = '127.0.0.1'): Promise<{ port: number; close(): Promise<void> }> {
  const net = await import('node:net');
  const sock = join(mkdtempSync(join(tmpdir(), 'ptcn-fwd-')), 's');
  const outer = net.createServer((c) => {
    const u = net.connect(targetPort, targetHost);
    c.pipe(u).pipe(c);
    c.on('error', () => u.destroy());
    u.on('error', () => c.destroy());
  });
  await new Promise<void>((r) => outer.listen(sock, r));
  const script = `const net=require('net');const s=net.createServer(c=>{const u=net.connect(${JSON.stringify(sock)});c.pipe(u).pipe(c);c.on('error',()=>u.destroy());u.on('error',()=>c.destroy());});s.listen(0,'127.0.0.1',()=>console.log(s.address().port));`;
  const child = node.spawn(process.execPath, ['-e', script]);
  const port = await new Promise<number>((resolvep, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const m = out.match(/(\d+)\n/);
      if (m) resolvep(Number(m[1]));
    });
    child.on('exit', (c) => reject(new Error(`forwarder exited ${c}`)));
  });
  return {
    port,
    async close() {
      child.kill('SIGKILL');
      await new Promise<void>((r) => outer.close(() => r()));
      rmSync(join(sock, '..'), { recursive: true, force: true });
    },
  };
}
