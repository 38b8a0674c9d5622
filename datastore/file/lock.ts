// A cross-process lock for one directory: `<dir>/.petrel.lock`, created with O_EXCL.
// `petrel ctl`, the agent and the CNI plugin's IPAM (compare-and-swap on block files) all take
// it around read-check-write sequences on a file datastore directory.
//
// Stale detection: the lock file holds `{pid, host, pidns, token, at}`. A lock whose process is
// gone (same host and PID namespace, `kill(pid, 0)` fails with ESRCH), or that is older than
// `staleMs` (10 × that when its holder is a live process we can see), is broken: it
// is renamed away (so two breakers cannot both win), checked to be the one judged stale, and
// removed. Within one process, calls queue on a promise chain, and a nested call from inside
// `fn` (same async context) runs at once instead of deadlocking.

import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import { promises as fsp, readlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { DatastoreUnavailableError } from '../types.js';

export const LOCK_FILE = '.petrel.lock';

export interface DirectoryLockOptions {
  /** Give up after this long (DatastoreUnavailableError). Default 10 s. */
  timeoutMs?: number;
  /** A lock older than this is stale whoever holds it. Default 30 s. */
  staleMs?: number;
}

interface LockContent {
  pid: number;
  host: string;
  /** PID namespace (`/proc/self/ns/pid`): a pid is only checked for liveness within the same one. */
  pidns?: string;
  token: string;
  at: number;
}

let myPidNs: string | undefined | null = null;
function pidNamespace(): string | undefined {
  if (myPidNs === null) {
    try {
      myPidNs = readlinkSync('/proc/self/ns/pid');
    } catch {
      myPidNs = undefined;
    }
  }
  return myPidNs;
}

const held = new AsyncLocalStorage<Set<string>>();
const queues = new Map<string, Promise<unknown>>();

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readLock(path: string): Promise<{ text: string; content?: LockContent; mtimeMs: number } | undefined> {
  try {
    const [text, st] = await Promise.all([fsp.readFile(path, 'utf8'), fsp.stat(path)]);
    let content: LockContent | undefined;
    try {
      content = JSON.parse(text) as LockContent;
    } catch {
      content = undefined; // being written, or garbage: judged by age only
    }
    return { text, content, mtimeMs: st.mtimeMs };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

function isStale(l: { content?: LockContent; mtimeMs: number }, staleMs: number): boolean {
  const age = Date.now() - (l.content?.at ?? l.mtimeMs);
  const c = l.content;
  const sameNs = c !== undefined && c.host === hostname() && c.pidns === pidNamespace();
  if (sameNs && c.pid !== process.pid && !processAlive(c.pid)) return true; // holder is gone
  // A live holder in our namespace is trusted for much longer (only pid reuse could fool us).
  if (age > (sameNs ? staleMs * 10 : staleMs)) return true;
  // Unparseable content younger than 2 s may be a lock being written right now.
  if (!l.content && Date.now() - l.mtimeMs > 2000) return true;
  return false;
}

async function breakStale(path: string, judged: string): Promise<void> {
  const aside = `${path}.stale.${randomBytes(6).toString('hex')}`;
  try {
    await fsp.rename(path, aside);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  const text = await fsp.readFile(aside, 'utf8').catch(() => '');
  if (text !== judged) {
    // Someone took the lock between our read and our rename: give it back.
    await fsp.link(aside, path).catch(() => undefined);
  }
  await fsp.unlink(aside).catch(() => undefined);
}

async function acquire(dir: string, opts: DirectoryLockOptions): Promise<() => Promise<void>> {
  const path = join(dir, LOCK_FILE);
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const staleMs = opts.staleMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  const content: LockContent = { pid: process.pid, host: hostname(), pidns: pidNamespace(), token: randomBytes(8).toString('hex'), at: Date.now() };
  let delay = 5;
  for (;;) {
    try {
      const fh = await fsp.open(path, 'wx', 0o644);
      try {
        await fh.writeFile(JSON.stringify(content));
      } finally {
        await fh.close();
      }
      return async () => {
        const now = await readLock(path).catch(() => undefined);
        if (now?.content?.token === content.token) await fsp.unlink(path).catch(() => undefined);
      };
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new DatastoreUnavailableError(`datastore directory ${dir} does not exist`);
      if (code !== 'EEXIST') throw new DatastoreUnavailableError(`cannot lock ${path}: ${(e as Error).message}`);
    }
    const cur = await readLock(path);
    if (cur && isStale(cur, staleMs)) {
      await breakStale(path, cur.text);
      continue;
    }
    if (Date.now() > deadline) {
      const who = cur?.content ? `pid ${cur.content.pid} on ${cur.content.host}` : 'another process';
      throw new DatastoreUnavailableError(`timed out after ${timeoutMs} ms waiting for ${path} (held by ${who})`);
    }
    await sleep(delay + Math.random() * delay);
    delay = Math.min(delay * 2, 100);
  }
}

/**
 * Runs `fn` holding the directory's lock (cross-process, O_EXCL lock file with stale
 * detection). Nested calls for the same directory from inside `fn` do not re-lock.
 */
export async function withDirectoryLock<T>(dir: string, fn: () => Promise<T> | T, opts: DirectoryLockOptions = {}): Promise<T> {
  const key = resolve(dir);
  const mine = held.getStore();
  if (mine?.has(key)) return await fn();

  const prev = queues.get(key) ?? Promise.resolve();
  let done!: () => void;
  const turn = new Promise<void>((r) => (done = r));
  const tail = prev.then(() => turn);
  queues.set(key, tail);
  try {
    await prev.catch(() => undefined);
    const release = await acquire(key, opts);
    try {
      const set = new Set(mine ?? []);
      set.add(key);
      return await held.run(set, async () => await fn());
    } finally {
      await release();
    }
  } finally {
    done();
    if (queues.get(key) === tail) queues.delete(key);
  }
}
