// Running iptables-save/-restore and ipset without stalling the agent.
//
// Two costs of `child_process.spawn` grow with the agent, not with the work:
// - spawn forks the whole Node process synchronously on the main thread, and fork copies the
//   page tables: 5 ms at 44 MiB RSS, 10 ms at 220 MiB, 15-40 ms on a loaded node. A full sync
//   runs ~10 commands, so 100-200 ms of it was forking.
// - a large input written to a pipe reaches the child 64 KiB at a time, each time the event
//   loop gets round to it; while the main thread builds rule text the child waits (a 3.3 MB
//   `ipset restore` took 560 ms instead of 340 ms).
// So commands are started by a small shell started once (the "exec server"): it forks itself
// (cheap: a shell is ~1 MB), runs the command with stdin from an unlinked-on-completion temp
// file and stdout/stderr to temp files, and reports `<id> <exit code>` on a line. When the
// server cannot be used (no /bin/sh, it died), commands are spawned directly, with large
// inputs still given as files.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `cmd args` with `input` on stdin. Rejects only when the command could not be run at all. */
export type Exec = (cmd: string, args: string[], input?: string) => Promise<ExecResult>;

/** Inputs above this go to a directly spawned child through a temporary file instead of a pipe. */
const FILE_INPUT_BYTES = 64 * 1024;
const TMP_DIR = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();

let privateDir: string | undefined;

/** Directories of earlier agents that were killed before they could remove them. */
function removeLeftovers(): void {
  let names: string[];
  try {
    names = readdirSync(TMP_DIR);
  } catch {
    return;
  }
  for (const name of names) {
    const m = /^petrel-exec-(\d+)-/.exec(name);
    if (!m || Number(m[1]) === process.pid) continue;
    try {
      process.kill(Number(m[1]), 0);
      continue; // still running
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ESRCH') continue;
    }
    rmSync(join(TMP_DIR, name), { recursive: true, force: true });
  }
}

/**
 * A path in a directory of this process's own (mode 0700, made once, removed at exit), so no
 * other user can plant a file or symlink where a command's output is about to go.
 */
function tempPath(what: string): string {
  if (!privateDir) {
    removeLeftovers();
    const dir = mkdtempSync(join(TMP_DIR, `petrel-exec-${process.pid}-`));
    privateDir = dir;
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  }
  return join(privateDir, `${what}-${randomBytes(6).toString('hex')}`);
}

/** Writes `text` to a new file only we can read (O_EXCL: never someone else's file). */
function writeTemp(path: string, text: string): void {
  const fd = openSync(path, 'wx', 0o600);
  try {
    writeFileSync(fd, text);
  } finally {
    closeSync(fd);
  }
}

/** A single-quoted shell word. */
function quote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Spawns directly (the fallback). */
export const spawnExec: Exec = (cmd, args, input) =>
  new Promise((resolve, reject) => {
    let fd: number | undefined;
    if (input !== undefined && input.length > FILE_INPUT_BYTES) {
      const path = tempPath('input');
      try {
        writeTemp(path, input);
        fd = openSync(path, 'r');
      } finally {
        rmSync(path, { force: true });
      }
    }
    let p: ChildProcess;
    try {
      p = spawn(cmd, args, { stdio: [fd ?? 'pipe', 'pipe', 'pipe'] });
    } finally {
      if (fd !== undefined) closeSync(fd); // the child has its own copy
    }
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    p.stdout!.on('data', (d: Buffer) => out.push(d));
    p.stderr!.on('data', (d: Buffer) => err.push(d));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code: code ?? -1, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }));
    if (p.stdin) {
      p.stdin.on('error', () => undefined);
      p.stdin.end(input ?? '');
    }
  });

interface Pending {
  cmd: string;
  /** Runs the command by direct spawn instead (when the server never started, so it did not run). */
  fallback: () => Promise<ExecResult>;
  files: string[];
  out: string;
  err: string;
  resolve: (r: ExecResult) => void;
  reject: (e: Error) => void;
}

// Each request line runs in a forked copy of the server shell (`&`); its report is one short
// line, written in one write(2), so reports of parallel commands never interleave.
const SERVER_SCRIPT = 'while IFS= read -r l; do eval "$l" & done';

export class ExecServer {
  private proc?: ChildProcess;
  private buf = '';
  private seq = 0;
  private readonly pending = new Map<number, Pending>();
  /** Set once the server failed to start; every command is then spawned directly. */
  unusable?: string;

  constructor(private readonly shell = '/bin/sh') {}

  run(cmd: string, args: string[], input?: string): Promise<ExecResult> {
    if (this.unusable || [cmd, ...args].some((a) => /[\n\0]/.test(a))) return spawnExec(cmd, args, input);
    const proc = this.ensure();
    if (!proc) return spawnExec(cmd, args, input);
    const id = ++this.seq;
    const out = tempPath('out');
    const err = tempPath('err');
    const files = [out, err];
    let stdin = '/dev/null';
    if (input) {
      stdin = tempPath('input');
      files.push(stdin);
      try {
        writeTemp(stdin, input);
      } catch (e) {
        rmSync(stdin, { force: true });
        return Promise.reject(e);
      }
    }
    return new Promise((resolve, reject) => {
      this.pending.set(id, { cmd, fallback: () => spawnExec(cmd, args, input), files, out, err, resolve, reject });
      this.updateRef();
      // `command` keeps a same-named shell function or builtin from standing in for the binary.
      proc.stdin!.write(`command ${[cmd, ...args].map(quote).join(' ')} <${quote(stdin)} >${quote(out)} 2>${quote(err)}; echo "${id} $?"\n`);
    });
  }

  /** The directory temporary files go to (tests check it is left empty). */
  lastTempDir(): string | undefined {
    return privateDir;
  }

  /** Kills the server shell as a crash would (tests). */
  killForTest(): void {
    this.proc?.kill('SIGKILL');
  }

  close(): void {
    const p = this.proc;
    this.proc = undefined;
    if (p) {
      p.stdin?.end();
      p.kill();
    }
    this.failAll(new Error('exec server closed'));
  }

  private ensure(): ChildProcess | undefined {
    if (this.proc) return this.proc;
    let p: ChildProcess;
    try {
      p = spawn(this.shell, ['-c', SERVER_SCRIPT], { stdio: ['pipe', 'pipe', 'ignore'] });
    } catch (e) {
      this.unusable = String(e);
      return undefined;
    }
    this.proc = p;
    this.buf = '';
    p.stdout!.setEncoding('utf8');
    p.stdout!.on('data', (d: string) => {
      this.buf += d;
      let i: number;
      while ((i = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, i);
        this.buf = this.buf.slice(i + 1);
        this.finish(line);
      }
    });
    p.stdin!.on('error', () => undefined);
    const gone = (why: string, startFailed: boolean) => {
      if (this.proc !== p) return;
      this.proc = undefined;
      if (startFailed) {
        // Nothing ran: run what was queued directly.
        this.unusable = `exec server could not start: ${why}`;
        for (const [id, job] of this.pending) {
          this.pending.delete(id);
          for (const f of job.files) rmSync(f, { force: true });
          job.fallback().then(job.resolve, job.reject);
        }
      }
      // Commands in flight may still be running; their outcome is unknown: callers retry.
      this.failAll(new Error(`exec server ended (${why})`));
    };
    p.on('error', (e) => gone(e.message, true));
    p.on('exit', (code, sig) => gone(sig ? `signal ${sig}` : `exit ${code}`, false));
    this.updateRef();
    return p;
  }

  /** The server keeps the process alive only while a command is in flight. */
  private updateRef(): void {
    const p = this.proc;
    if (!p) return;
    const busy = this.pending.size > 0;
    for (const h of [p, p.stdin, p.stdout] as Array<{ ref?: () => void; unref?: () => void } | null>) {
      if (busy) h?.ref?.();
      else h?.unref?.();
    }
  }

  private finish(line: string): void {
    const m = /^(\d+) (\d+)$/.exec(line);
    const job = m ? this.pending.get(Number(m[1])) : undefined;
    if (!m || !job) return;
    this.pending.delete(Number(m[1]));
    this.updateRef();
    const code = Number(m[2]);
    try {
      // Synchronous reads: the files are in memory (tmpfs) and small next to what an async
      // read costs in event-loop turns before the caller can go on.
      const stdout = readFileSync(job.out, 'utf8');
      const stderr = readFileSync(job.err, 'utf8');
      // The shell's "not found" for a missing binary: what spawn reports as ENOENT.
      if (code === 127 && /not found|No such file/i.test(stderr) && !stdout) {
        job.reject(Object.assign(new Error(`spawn ${job.cmd} ENOENT`), { code: 'ENOENT' }));
      } else job.resolve({ code, stdout, stderr });
    } catch (e) {
      job.reject(e as Error);
    } finally {
      for (const f of job.files) rmSync(f, { force: true });
    }
  }

  private failAll(e: Error): void {
    for (const [id, job] of this.pending) {
      this.pending.delete(id);
      for (const f of job.files) rmSync(f, { force: true });
      job.reject(e);
    }
    this.updateRef();
  }
}

let shared: ExecServer | undefined;

/** Runs commands through the shared exec server (started on first use), falling back to spawn. */
export const defaultExec: Exec = (cmd, args, input) => (shared ??= new ExecServer()).run(cmd, args, input);
