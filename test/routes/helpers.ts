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

const ECHO_SERVER = `
const s = require('dgram').createSocket({ type: 'udp6', ipv6Only: false });
s.on('message', (m, r) => s.send(m, r.port, r.address));
s.bind(7777, '::', () => process.stdout.write('ready\\n'));
`;

const ECHO_CLIENT = `
const dst = process.argv[1];
const s = require('dgram').createSocket(dst.includes(':') ? 'udp6' : 'udp4');
const t = setTimeout(() => process.exit(1), 1000);
s.on('message', () => { clearTimeout(t); process.exit(0); });
s.send(Buffer.from('petrel'), 7777, dst);
`;

/** Starts a UDP echo server (port 7777, IPv4 and IPv6) in `ns`; killed when the namespace is destroyed. */
export async function startEcho(ns: NetNs): Promise<void> {
  const p = ns.spawn(process.execPath, ['-e', ECHO_SERVER]);
  await new Promise<void>((resolve, reject) => {
    p.stdout!.once('data', () => resolve());
    p.once('exit', (c) => reject(new Error(`echo server exited ${c}`)));
  });
}

/** True when a UDP datagram from `from` to `to`:7777 gets its echo back within a second. */
export async function echo(from: NetNs, to: string): Promise<boolean> {
  try {
    await from.exec(process.execPath, ['-e', ECHO_CLIENT, to], { timeoutMs: 5000 });
    return true;
  } catch {
    return false;
  }
}
