// Network-namespace helpers for tests and the lab: create, run commands in, and always remove.
// Only private addresses (10.x, 172.16-31.x, 192.168.x, fd00::/8) are ever configured here.
import { execFile, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export interface ExecResult {
  stdout: string;
  stderr: string;
}

/** Runs a command; rejects with its stderr on a non-zero exit. */
export async function run(cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<ExecResult> {
  if (opts.input !== undefined) {
    return new Promise((resolve, reject) => {
      const p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (d) => (stdout += d));
      p.stderr.on('data', (d) => (stderr += d));
      p.on('error', reject);
      p.on('close', (code) =>
        code === 0 ? resolve({ stdout, stderr }) : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${stderr.trim()}`)),
      );
      p.stdin.end(opts.input);
    });
  }
  try {
    const r = await execFileP(cmd, args, { timeout: opts.timeoutMs ?? 30_000, maxBuffer: 256 * 1024 * 1024 });
    return { stdout: r.stdout, stderr: r.stderr };
  } catch (e: any) {
    throw new Error(`${cmd} ${args.join(' ')} failed: ${(e.stderr || e.message || '').toString().trim()}`);
  }
}

/** True when this process may create namespaces (root). In CI it must be: tests fail, never skip. */
export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** Throws unless root: namespace tests must run (never skip) where they can. */
export function requireRoot(): void {
  if (!isRoot()) throw new Error('this test needs root (network namespaces); run it as root, as CI does');
}

let counter = 0;

/** A network namespace owned by a test; `destroy()` removes it and every process inside. */
export class NetNs {
  private constructor(readonly name: string) {}

  /** `prefix` names the owner (e.g. `ptr` for routes tests); the name stays under 15 chars when possible. */
  static async create(prefix: string): Promise<NetNs> {
    const name = `${prefix}-${process.pid % 100000}-${++counter}`;
    await run('ip', ['netns', 'add', name]);
    const ns = new NetNs(name);
    await ns.exec('ip', ['link', 'set', 'lo', 'up']);
    return ns;
  }

  exec(cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<ExecResult> {
    return run('ip', ['netns', 'exec', this.name, cmd, ...args], opts);
  }

  /** Starts a long-running process inside the namespace. */
  spawn(cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
    return spawn('ip', ['netns', 'exec', this.name, cmd, ...args], { stdio: 'pipe', ...opts });
  }

  /** Kills every process in the namespace, then deletes it. Safe to call twice. */
  async destroy(): Promise<void> {
    try {
      const { stdout } = await run('ip', ['netns', 'pids', this.name]);
      for (const pid of stdout.split(/\s+/).filter(Boolean)) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
    } catch {
      /* namespace already gone */
    }
    await run('ip', ['netns', 'del', this.name]).catch(() => undefined);
  }
}

/**
 * Connects two namespaces (or a namespace and the host, `b = null`) with a veth pair and
 * gives each end an address (CIDR notation, private ranges only).
 */
export async function vethPair(
  a: NetNs,
  aIf: string,
  aAddr: string | string[] | null,
  b: NetNs | null,
  bIf: string,
  bAddr: string | string[] | null,
): Promise<void> {
  const tmpA = `pta${process.pid % 10000}${++counter}`.slice(0, 15);
  const tmpB = `ptb${process.pid % 10000}${counter}`.slice(0, 15);
  await run('ip', ['link', 'add', tmpA, 'type', 'veth', 'peer', 'name', tmpB]);
  await run('ip', ['link', 'set', tmpA, 'netns', a.name]);
  await a.exec('ip', ['link', 'set', tmpA, 'name', aIf]);
  if (b) {
    await run('ip', ['link', 'set', tmpB, 'netns', b.name]);
    await b.exec('ip', ['link', 'set', tmpB, 'name', bIf]);
  } else {
    await run('ip', ['link', 'set', tmpB, 'name', bIf]);
  }
  const conf = async (ns: NetNs | null, ifn: string, addr: string | string[] | null) => {
    const ex = (args: string[]) => (ns ? ns.exec('ip', args) : run('ip', args));
    for (const x of addr === null ? [] : Array.isArray(addr) ? addr : [addr]) {
      await ex([...(x.includes(':') ? ['-6'] : []), 'addr', 'add', x, 'dev', ifn, ...(x.includes(':') ? ['nodad'] : [])]);
    }
    await ex(['link', 'set', ifn, 'up']);
  };
  await conf(a, aIf, aAddr);
  await conf(b, bIf, bAddr);
}
