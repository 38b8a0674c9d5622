// A long-lived `ipset -exist -` (interactive mode) for small member changes: a pod add or
// delete is a handful of `add`/`del` lines, and spawning a process for them costs more than
// the kernel work (8-40 ms on a loaded node, against well under 1 ms for the lines
// themselves). Large batches, creates, swaps and destroys still go through `ipset restore`.
//
// Interactive mode prints a prompt before it reads each line and the error text of a failed
// line before the next prompt. With stdout unbuffered (`stdbuf -o0`) and stderr merged into
// it, N lines are done once N more prompts have arrived, and anything between two prompts is
// the error of the line in between.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import type { Logger } from 'pino';

export type SessionSpawner = (argv: string[]) => ChildProcessWithoutNullStreams;

export const defaultSpawner: SessionSpawner = (argv) => spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });

const PROMPT = 'ipset> ';
const ARGV = ['sh', '-c', 'exec stdbuf -o0 ipset -exist - 2>&1'];

export class IpsetSessionError extends Error {
  override name = 'IpsetSessionError';
}

interface Waiter {
  until: number;
  errors: string[];
  resolve: () => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class IpsetSession {
  private proc?: ChildProcessWithoutNullStreams;
  private prompts = 0;
  private sent = 0;
  private buf = '';
  private waiter?: Waiter;
  /** Set when the session could not start at all (no stdbuf, no ipset): callers fall back. */
  unusable?: string;

  constructor(
    private readonly spawnFn: SessionSpawner,
    private readonly log: Logger,
    private readonly timeoutMs = 10_000,
  ) {}

  /** Runs `add`/`del` lines (newline-terminated); rejects with the kernel's words for any failed line. */
  run(lines: string): Promise<void> {
    if (this.unusable) return Promise.reject(new IpsetSessionError(this.unusable));
    if (this.waiter) return Promise.reject(new IpsetSessionError('ipset session busy'));
    const n = lines.split('\n').length - 1;
    if (n <= 0) return Promise.resolve();
    const p = this.ensure();
    return new Promise<void>((resolve, reject) => {
      this.sent += n;
      const timer = setTimeout(() => {
        // A session that stops answering is not trusted again: the next batch starts a new one.
        this.fail(new IpsetSessionError(`ipset session: no answer within ${this.timeoutMs} ms`));
        this.close();
      }, this.timeoutMs);
      this.waiter = { until: this.sent + 1, errors: [], resolve, reject, timer };
      p.stdin.write(lines);
      this.check();
    });
  }

  close(): void {
    const p = this.proc;
    this.proc = undefined;
    if (p) {
      p.stdin.end();
      p.kill();
    }
  }

  private ensure(): ChildProcessWithoutNullStreams {
    if (this.proc) return this.proc;
    const p = this.spawnFn(ARGV);
    this.proc = p;
    this.prompts = 0;
    this.sent = 0;
    this.buf = '';
    p.stdout.setEncoding('utf8');
    p.stdout.on('data', (d: string) => {
      if (this.proc !== p) return;
      this.buf += d;
      this.check();
    });
    p.stderr.setEncoding('utf8');
    p.stderr.on('data', (d: string) => {
      if (this.proc === p) this.buf += d;
    });
    p.stdin.on('error', () => undefined);
    // An idle session never keeps the process alive (a batch in flight has its timer).
    p.unref();
    for (const io of [p.stdin, p.stdout, p.stderr]) (io as unknown as { unref?: () => void }).unref?.();
    const gone = (why: string) => {
      if (this.proc !== p) return;
      this.proc = undefined;
      // Never got as far as its first prompt: this node cannot run it (no stdbuf, no ipset).
      if (this.prompts === 0) {
        this.unusable = `ipset session could not start: ${why}${this.buf.trim() ? `: ${this.buf.trim().slice(0, 300)}` : ''}`;
        this.log.warn({ reason: this.unusable }, 'using ipset restore for every change');
      }
      this.fail(new IpsetSessionError(`ipset session ended (${why})`));
    };
    p.on('error', (e) => gone(String(e.message)));
    p.on('exit', (code, sig) => gone(sig ? `signal ${sig}` : `exit ${code}`));
    return p;
  }

  private check(): void {
    let i: number;
    while ((i = this.buf.indexOf(PROMPT)) >= 0) {
      const text = this.buf.slice(0, i).trim();
      this.buf = this.buf.slice(i + PROMPT.length);
      if (text && this.prompts > 0) this.waiter?.errors.push(text);
      this.prompts++;
    }
    const w = this.waiter;
    if (!w || this.prompts < w.until) return;
    this.waiter = undefined;
    clearTimeout(w.timer);
    if (w.errors.length) w.reject(new IpsetSessionError(`ipset: ${w.errors.join('; ').slice(0, 2000)}`));
    else w.resolve();
  }

  private fail(e: Error): void {
    const w = this.waiter;
    this.waiter = undefined;
    if (w) {
      clearTimeout(w.timer);
      w.reject(e);
    }
  }
}
