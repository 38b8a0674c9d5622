// Shared helpers for the routes integration tests: a namespace per test, a RouteManager acting
// inside it through the netns broker, and `ip` readers to check what the kernel really holds.
import { NetNs } from '../netns.js';
import { NetnsHost, RouteManager, type RouteManagerOptions } from '../../routes/index.js';

export const PREFIX = 'ptrt';

export async function newNs(): Promise<NetNs> {
  return NetNs.create(PREFIX);
}

export async function manager(ns: NetNs, opts: RouteManagerOptions = {}): Promise<{ rm: RouteManager; host: NetnsHost }> {
  const host = new NetnsHost(ns.name);
  const rm = new RouteManager({ resyncIntervalMs: 0, ...opts, host });
  await rm.start();
  return { rm, host };
}

/** `ip [-6] route show table all proto P` lines, normalised and sorted. */
export async function routesOf(ns: NetNs, proto: number | string, family: 4 | 6 = 4): Promise<string[]> {
  const { stdout } = await ns.exec('ip', [`-${family}`, 'route', 'show', 'table', 'all', 'proto', String(proto)]);
  return stdout
    .split('\n')
    .map((l) => l.trim().replace(/\s+/g, ' '))
    .filter(Boolean)
    .sort();
}

/** Polls `fn` until it returns true (or throws after `ms`). */
export async function eventually(fn: () => Promise<boolean> | boolean, ms = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
