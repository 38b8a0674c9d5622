// Test harness for BGP interop: Petrel speakers in child processes inside network namespaces
// (test/bgp/driver.mjs over dist/), BIRD 2 and gobgpd as reference peers (configs as in
// shared/design/bgp-lab.md). Everything started here is killed by `cleanup()`.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { NetNs, run } from '../netns.js';

const here = dirname(fileURLToPath(import.meta.url));
/** Repository root (works from test/bgp and from dist/test/bgp). */
export const ROOT = existsSync(resolve(here, '../../package.json')) ? resolve(here, '../..') : resolve(here, '../../..');
const DRIVER = join(ROOT, 'test/bgp/driver.mjs');

let built = false;
/** Makes sure dist/ is there for the driver (npm test builds first; a bare vitest run may not). */
export async function ensureBuilt(): Promise<void> {
  if (built) return;
  if (!existsSync(join(ROOT, 'dist/bgp/index.js')) || process.env.PETREL_TEST_BUILD) {
    await run('npx', ['tsc', '-p', join(ROOT, 'tsconfig.json')], { timeoutMs: 240_000 }).catch(() => undefined);
  }
  built = true;
}

export async function until<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, ms = 30_000, every = 100): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as T;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resources to clean up, in reverse order. */
export class Lab {
  readonly dir = mkdtempSync(join(tmpdir(), 'ptbg-'));
  private readonly cleanups: (() => Promise<void> | void)[] = [];
  private readonly namespaces: NetNs[] = [];

  async ns(): Promise<NetNs> {
    const n = await NetNs.create('ptbg');
    this.namespaces.push(n);
    return n;
  }

  private readonly perTest: (() => Promise<void> | void)[] = [];

  /** Registers a cleanup run at the end of the current test (endTest) and at lab cleanup. */
  defer(fn: () => Promise<void> | void): void {
    this.cleanups.push(fn);
    this.perTest.push(fn);
  }

  /** Stops what the current test started (call from afterEach). */
  async endTest(): Promise<void> {
    for (const fn of this.perTest.splice(0).reverse()) {
      try {
        await fn();
      } catch {
        /* best effort */
      }
    }
  }

  async cleanup(): Promise<void> {
    for (const fn of this.cleanups.reverse()) {
      try {
        await fn();
      } catch {
        /* best effort */
      }
    }
    for (const n of this.namespaces) await n.destroy();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface SpeakerOpts {
  routerId: string;
  asNumber: number;
  listenPort?: number;
  listenAddress?: string;
  gracefulRestart?: { restartTime: number; deferralTime?: number };
  connectRetryMs?: number;
}

/** A Petrel speaker in a child process in a namespace. */
export class PetrelProc {
  private nextId = 1;
  private readonly waiting = new Map<number, (m: any) => void>();
  stderr = '';
  exited = false;
  private constructor(
    readonly ns: NetNs,
    readonly proc: ChildProcess,
    readonly opts: SpeakerOpts,
  ) {
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      let m: any;
      try {
        m = JSON.parse(line);
      } catch {
        return;
      }
      const w = this.waiting.get(m.id);
      if (w) {
        this.waiting.delete(m.id);
        w(m);
      }
    });
    proc.stderr!.on('data', (d) => (this.stderr = (this.stderr + d).slice(-20000)));
    proc.on('exit', () => {
      this.exited = true;
      for (const w of this.waiting.values()) w({ ok: false, error: 'speaker process exited' });
      this.waiting.clear();
    });
  }

  static async start(
    lab: Lab,
    ns: NetNs,
    opts: SpeakerOpts,
    config?: object,
    exports?: { prefix: string }[],
    nodeArgs: string[] = [],
  ): Promise<PetrelProc> {
    await ensureBuilt();
    const proc = ns.spawn('node', [...nodeArgs, DRIVER], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, LOG_LEVEL: process.env.PTBG_LOG ?? 'warn' },
    });
    const p = new PetrelProc(ns, proc, opts);
    lab.defer(() => p.killAndWait());
    const full = {
      listenPort: 179,
      gracefulRestart: { restartTime: 30, deferralTime: 10 },
      connectRetryMs: 1000,
      ...opts,
    };
    await p.call('start', { opts: full, config: config ? { asNumber: opts.asNumber, routerId: opts.routerId, listenPort: full.listenPort, ...config } : undefined, exports });
    return p;
  }

  call(op: string, extra: object = {}, timeoutMs = 30_000): Promise<any> {
    if (this.exited) return Promise.reject(new Error(`speaker exited: ${this.stderr.slice(-2000)}`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`speaker call ${op} timed out`));
      }, timeoutMs);
      this.waiting.set(id, (m) => {
        clearTimeout(t);
        if (m.ok) resolve(m.result);
        else reject(new Error(`${op}: ${m.error}\n${this.stderr.slice(-2000)}`));
      });
      this.proc.stdin!.write(JSON.stringify({ id, op, ...extra }) + '\n');
    });
  }

  configure(peers: object[], extra: object = {}): Promise<void> {
    return this.call('configure', {
      config: { asNumber: this.opts.asNumber, routerId: this.opts.routerId, listenPort: this.opts.listenPort ?? 179, peers, ...extra },
    });
  }
  exports(prefixes: string[]): Promise<void> {
    return this.call('exports', { exports: prefixes.map((prefix) => ({ prefix })) });
  }
  status(): Promise<any> {
    return this.call('status');
  }
  async peer(address: string): Promise<any> {
    return (await this.status()).peers.find((p: any) => p.address === address);
  }
  /** Learned best routes by prefix. */
  async rib(): Promise<Map<string, any>> {
    const r: any[] = await this.call('rib');
    return new Map(r.filter((x) => x.peer).map((x) => [x.prefix, x]));
  }

  /** The process id of node itself (`ip netns exec` execs it). */
  get pid(): number {
    return this.proc.pid!;
  }

  /** Kills the process and waits for it to be gone (its listening port free again). */
  async killAndWait(): Promise<void> {
    this.kill();
    await this.waitExit();
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (!this.exited) {
      try {
        this.proc.kill(signal);
      } catch {
        /* gone */
      }
    }
  }

  async waitExit(): Promise<void> {
    if (this.exited) return;
    await new Promise((r) => this.proc.once('exit', r));
  }
}

export interface BirdPeer {
  name: string;
  ip: string;
  as: number;
  localIp: string;
  localAs: number;
  passive?: boolean;
  password?: string;
  rrClient?: boolean;
  gr?: { time: number };
  hold?: number;
  ipv6?: boolean;
  multihop?: boolean;
  ttlSecurity?: boolean;
}

/** BIRD 2 in a namespace. */
export class Bird {
  readonly sock: string;
  private readonly pidFile: string;
  private pid = 0;
  constructor(
    readonly ns: NetNs,
    readonly dir: string,
    readonly name: string,
  ) {
    this.sock = join(dir, `${name}.ctl`);
    this.pidFile = join(dir, `${name}.pid`);
  }

  static conf(o: { routerId: string; static4?: string[]; static6?: string[]; peers: BirdPeer[]; rrClusterId?: string }): string {
    const lines = [`router id ${o.routerId};`, 'protocol device { scan time 10; }'];
    if (o.static4?.length) lines.push(`protocol static s4 { ipv4; ${o.static4.map((r) => `route ${r} blackhole;`).join(' ')} }`);
    if (o.static6?.length) lines.push(`protocol static s6 { ipv6; ${o.static6.map((r) => `route ${r} blackhole;`).join(' ')} }`);
    for (const p of o.peers) {
      const ch = p.ipv6 ? 'ipv6' : 'ipv4';
      lines.push(`protocol bgp ${p.name} {
  local ${p.localIp} as ${p.localAs};
  neighbor ${p.ip} as ${p.as};
  hold time ${p.hold ?? 9};
  connect delay time 1;
  connect retry time 2;
  error wait time 1, 3;
  ${p.passive ? 'passive on;' : ''}
  ${p.multihop ? 'multihop;' : ''}
  ${p.ttlSecurity ? 'ttl security on;' : ''}
  ${p.password ? `password "${p.password}";` : ''}
  ${p.rrClient ? 'rr client;' : ''}
  ${o.rrClusterId && p.rrClient ? `rr cluster id ${o.rrClusterId};` : ''}
  ${p.gr ? `graceful restart on; graceful restart time ${p.gr.time};` : ''}
  ${ch} { import all; export all; ${p.as === p.localAs ? '' : ''} };
}`);
    }
    return lines.join('\n') + '\n';
  }

  static async start(lab: Lab, ns: NetNs, name: string, conf: string): Promise<Bird> {
    const b = new Bird(ns, lab.dir, name);
    const cf = join(lab.dir, `${name}.conf`);
    writeFileSync(cf, conf);
    await run('bird', ['-p', '-c', cf]);
    lab.defer(() => b.stop());
    await ns.exec('bird', ['-c', cf, '-s', b.sock, '-P', b.pidFile]);
    // The daemon writes its pid file after forking: wait for it (a wrong pid would leave a BIRD
    // running into the next test).
    b.pid = await until('BIRD pid file', () => {
      const n = existsSync(b.pidFile) ? Number(readFileSync(b.pidFile, 'utf8').trim()) : 0;
      return n > 0 ? n : undefined;
    }, 10_000, 20);
    return b;
  }

  async birdc(...args: string[]): Promise<string> {
    return (await run('birdc', ['-s', this.sock, ...args])).stdout;
  }

  async state(proto: string): Promise<string> {
    const out = await this.birdc('show', 'protocols', proto);
    return out;
  }

  async established(proto: string): Promise<boolean> {
    return /Established/.test(await this.state(proto));
  }

  /** `show route all protocol P` parsed into prefix -> attribute text block. */
  async routes(proto: string, table?: string): Promise<Map<string, string>> {
    const args = ['show', 'route', 'all', 'protocol', proto];
    if (table) args.push('table', table);
    const out = await this.birdc(...args);
    const m = new Map<string, string>();
    let cur = '';
    for (const line of out.split('\n')) {
      const mm = /^([0-9a-f.:]+\/\d+)\s/.exec(line);
      if (mm) {
        cur = mm[1]!;
        m.set(cur, line + '\n');
      } else if (cur && /^\s/.test(line)) {
        m.set(cur, m.get(cur)! + line + '\n');
      }
    }
    return m;
  }

  /** Kills BIRD; the promise resolves once the process is gone (its port free again). */
  async stop(): Promise<void> {
    let pid = this.pid;
    if (!pid && existsSync(this.pidFile)) pid = Number(readFileSync(this.pidFile, 'utf8').trim()) || 0;
    if (!pid) return;
    this.pid = 0;
    try {
      process.kill(pid, 'SIGCONT');
      process.kill(pid, 'SIGKILL');
    } catch {
      return;
    }
    for (let i = 0; i < 100; i++) {
      try {
        process.kill(pid, 0);
      } catch {
        return;
      }
      await sleep(20);
    }
  }
}

/** gobgpd in a namespace (API on the namespace's loopback). */
export class Gobgp {
  private proc: ChildProcess | null = null;
  constructor(
    readonly ns: NetNs,
    readonly conf: string,
  ) {}

  static toml(o: {
    as: number;
    routerId: string;
    localAddresses: string[];
    peers: { ip: string; as: number; localIp: string; passive?: boolean; ipv6?: boolean; password?: string; gr?: number; hold?: number }[];
  }): string {
    const out = [
      '[global.config]',
      `  as = ${o.as}`,
      `  router-id = "${o.routerId}"`,
      `  local-address-list = [${o.localAddresses.map((a) => `"${a}"`).join(', ')}]`,
      '',
    ];
    for (const p of o.peers) {
      out.push(
        '[[neighbors]]',
        '  [neighbors.config]',
        `    neighbor-address = "${p.ip}"`,
        `    peer-as = ${p.as}`,
        ...(p.password ? [`    auth-password = "${p.password}"`] : []),
        '  [neighbors.timers.config]',
        `    hold-time = ${p.hold ?? 9}`,
        `    keepalive-interval = ${Math.max(1, Math.floor((p.hold ?? 9) / 3))}`,
        `    connect-retry = 2`,
        '  [neighbors.transport.config]',
        `    local-address = "${p.localIp}"`,
        ...(p.passive ? ['    passive-mode = true'] : []),
        ...(p.gr ? ['  [neighbors.graceful-restart.config]', '    enabled = true', `    restart-time = ${p.gr}`] : []),
        '  [[neighbors.afi-safis]]',
        '    [neighbors.afi-safis.config]',
        `      afi-safi-name = "${p.ipv6 ? 'ipv6-unicast' : 'ipv4-unicast'}"`,
        ...(p.gr ? ['    [neighbors.afi-safis.mp-graceful-restart.config]', '      enabled = true'] : []),
        '',
      );
    }
    return out.join('\n');
  }

  static async start(lab: Lab, ns: NetNs, name: string, toml: string): Promise<Gobgp> {
    const cf = join(lab.dir, `${name}.toml`);
    writeFileSync(cf, toml);
    const g = new Gobgp(ns, cf);
    const log = join(lab.dir, `${name}.log`);
    g.proc = spawn('ip', ['netns', 'exec', ns.name, 'gobgpd', '-f', cf, '-p', '--api-hosts', '127.0.0.1:50051', '--pprof-disable', '--log-level', 'info'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let text = '';
    g.proc.stdout!.on('data', (d) => (text = (text + d).slice(-50000)));
    g.proc.stderr!.on('data', (d) => (text = (text + d).slice(-50000)));
    g.proc.on('exit', () => writeFileSync(log, text));
    lab.defer(() => g.stop());
    await until('gobgp API', async () => (await g.cli('global')).includes('AS'), 40_000, 200);
    return g;
  }

  async cli(...args: string[]): Promise<string> {
    return (await this.ns.exec('gobgp', args)).stdout;
  }

  async json(...args: string[]): Promise<any> {
    return JSON.parse(await this.cli(...args, '-j'));
  }

  async established(peer: string): Promise<boolean> {
    const j = await this.json('neighbor', peer);
    return j?.state?.session_state === 6 || j?.state?.session_state === 'established' || /ESTABLISHED/i.test(JSON.stringify(j?.state?.session_state));
  }

  /** Kills gobgpd; resolves once it is gone (ports 179 and the API port free again). */
  async stop(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const gone = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await Promise.race([gone, sleep(3000)]);
  }
}
