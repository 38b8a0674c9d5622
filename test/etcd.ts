// Test harness: a real etcd (/usr/bin/etcd, v3.4) on free loopback ports with a temp data dir.
// `kill()` SIGKILLs it (data dir kept), `restart()` brings it back on the same endpoint and data,
// `stop()` ends it and removes the data dir. Optional TLS with a CA/server/client cert made by
// the openssl CLI.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface EtcdTls {
  caFile: string;
  certFile: string;
  keyFile: string;
}

export interface EtcdHandle {
  /** client URL, e.g. http://127.0.0.1:40123 (https when tls) */
  endpoint: string;
  /** data directory (removed by stop()) */
  dataDir: string;
  /** client certificate material when started with { tls: true } */
  tls?: EtcdTls;
  /** environment for etcdctl against this etcd (ETCDCTL_API=3, endpoints, TLS files) */
  etcdctlEnv: Record<string, string>;
  /** graceful stop and cleanup (idempotent) */
  stop(): Promise<void>;
  /** SIGKILL, keeping the data dir */
  kill(): Promise<void>;
  /** start again (after kill) on the same endpoint with the same data; resolves when healthy */
  restart(): Promise<void>;
  pid(): number | undefined;
}

export interface StartEtcdOptions {
  tls?: boolean;
  /** --auto-compaction-retention etc. */
  extraArgs?: string[];
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

function makeTls(dir: string): EtcdTls & { serverCert: string; serverKey: string } {
  const o = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  o(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=petrel-test-ca',
    '-keyout', 'ca.key', '-out', 'ca.crt']);
  writeFileSync(join(dir, 'san.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n');
  for (const n of ['server', 'client']) {
    o(['req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${n === 'server' ? 'localhost' : 'petrel-client'}`,
      '-keyout', `${n}.key`, '-out', `${n}.csr`]);
    o(['x509', '-req', '-in', `${n}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2',
      '-extfile', 'san.cnf', '-out', `${n}.crt`]);
  }
  return {
    caFile: join(dir, 'ca.crt'),
    certFile: join(dir, 'client.crt'),
    keyFile: join(dir, 'client.key'),
    serverCert: join(dir, 'server.crt'),
    serverKey: join(dir, 'server.key'),
  };
}

async function waitHealthy(endpoint: string, env: Record<string, string>, proc: () => ChildProcess | undefined, out: () => string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const p = proc();
    if (!p || p.exitCode !== null) throw new Error(`etcd exited during start-up: ${out().slice(-2000)}`);
    try {
      execFileSync('etcdctl', ['endpoint', 'health', '--command-timeout=1s'], {
        env: { ...process.env, ...env },
        stdio: 'pipe',
        timeout: 3000,
      });
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`etcd at ${endpoint} not healthy after 20s: ${out().slice(-2000)}`);
}

export async function startEtcd(opts: StartEtcdOptions = {}): Promise<EtcdHandle> {
  const base = mkdtempSync(join(tmpdir(), 'petrel-etcd-'));
  const dataDir = join(base, 'data');
  const tls = opts.tls ? makeTls(base) : undefined;
  const scheme = tls ? 'https' : 'http';
  let clientPort = await freePort();
  let peerPort = await freePort();
  let proc: ChildProcess | undefined;
  let output = '';
  let stopped = false;

  const endpointOf = () => `${scheme}://127.0.0.1:${clientPort}`;
  const envOf = (): Record<string, string> => ({
    ETCDCTL_API: '3',
    ETCDCTL_ENDPOINTS: endpointOf(),
    ...(tls ? { ETCDCTL_CACERT: tls.caFile, ETCDCTL_CERT: tls.certFile, ETCDCTL_KEY: tls.keyFile } : {}),
  });

  const spawnOnce = async () => {
    const args = [
      '--name', 'petrel-test',
      '--data-dir', dataDir,
      '--listen-client-urls', endpointOf(),
      '--advertise-client-urls', endpointOf(),
      '--listen-peer-urls', `http://127.0.0.1:${peerPort}`,
      '--initial-advertise-peer-urls', `http://127.0.0.1:${peerPort}`,
      '--initial-cluster', `petrel-test=http://127.0.0.1:${peerPort}`,
      '--log-level', 'error',
      '--logger', 'zap',
      ...(tls
        ? ['--cert-file', tls.serverCert, '--key-file', tls.serverKey, '--trusted-ca-file', tls.caFile, '--client-cert-auth']
        : []),
      ...(opts.extraArgs ?? []),
    ];
    output = '';
    const p = spawn('/usr/bin/etcd', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    p.stdout!.on('data', (d) => (output = (output + d).slice(-8000)));
    p.stderr!.on('data', (d) => (output = (output + d).slice(-8000)));
    proc = p;
    await waitHealthy(endpointOf(), envOf(), () => proc, () => output);
  };

  // A free port can be taken between probing and binding: retry with new ports on a first start.
  for (let attempt = 0; ; attempt++) {
    try {
      await spawnOnce();
      break;
    } catch (e) {
      proc?.kill('SIGKILL');
      if (attempt >= 2) {
        rmSync(base, { recursive: true, force: true });
        throw e;
      }
      rmSync(dataDir, { recursive: true, force: true });
      clientPort = await freePort();
      peerPort = await freePort();
    }
  }

  const killProc = async (signal: NodeJS.Signals) => {
    const p = proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill(signal);
      if (signal !== 'SIGKILL') setTimeout(() => p.kill('SIGKILL'), 5000).unref();
    });
  };

  const handle: EtcdHandle = {
    get endpoint() {
      return endpointOf();
    },
    dataDir,
    tls: tls ? { caFile: tls.caFile, certFile: tls.certFile, keyFile: tls.keyFile } : undefined,
    get etcdctlEnv() {
      return envOf();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await killProc('SIGTERM');
      rmSync(base, { recursive: true, force: true });
    },
    async kill() {
      await killProc('SIGKILL');
    },
    async restart() {
      if (stopped) throw new Error('etcd harness already stopped');
      await killProc('SIGKILL');
      await spawnOnce();
    },
    pid: () => proc?.pid,
  };
  return handle;
}
