// The desired-state route table manager: keeps the kernel's routes carrying Petrel's protocol
// number equal to the desired set, IPv4 and IPv6. It never changes or removes a route of any
// other protocol (CONTRACT §4) and removes nothing before it has been given a full desired set.
import { EventEmitter } from 'node:events';
import { canonicalCidr, parseCidr, parseIp } from '../datastore/net.js';
import { logger, type Logger } from '../agent/log.js';
import { counter, gauge, histogram } from '../agent/metrics.js';
import { NlConn, errnoName, runBatched } from './conn.js';
import { LocalHost, type NetHost, type NlChannel } from './host.js';
import {
  AF_INET,
  AF_INET6,
  IFF_UP,
  NLM_F_CREATE,
  NLM_F_EXCL,
  NLM_F_REPLACE,
  NLM_F_REQUEST,
  RTM_DELLINK,
  RTM_DELROUTE,
  RTM_NEWLINK,
  RTM_NEWROUTE,
  RTN_BLACKHOLE,
  RTN_UNICAST,
  RTN_UNREACHABLE,
  RTNH_F_ONLINK,
  RTNLGRP_IPV4_ROUTE,
  RTNLGRP_IPV6_ROUTE,
  RTNLGRP_LINK,
  RT_SCOPE_LINK,
  RT_SCOPE_UNIVERSE,
  RT_TABLE_MAIN,
  decodeLink,
  decodeRoute,
  encodeLinkDump,
  encodeRoute,
  encodeRouteDump,
  parseMessages,
  v4Octets,
  type KernelLink,
  type KernelRoute,
  type RouteSpec,
} from './nl.js';

/** One route Petrel wants in the kernel. */
export interface DesiredRoute {
  /** destination, canonical CIDR (`10.65.0.0/26`, `fd00:65::/122`) */
  dst: string;
  type: 'unicast' | 'blackhole' | 'unreachable';
  /** outgoing interface (unicast) */
  dev?: string;
  /** gateway (unicast) */
  via?: string;
  /** RTNH_F_ONLINK: the gateway is on the link even without a matching subnet (tunnels) */
  onlink?: boolean;
  /** IPv4 only (the kernel ignores scope for IPv6); default: `link` without `via`, else `universe` */
  scope?: 'link' | 'universe';
  /** preferred source address */
  src?: string;
  mtu?: number;
  /** routing table, default 254 (main) */
  table?: number;
}

/**
 * The stable identity of a desired route: its canonical dst for the main table, `<dst>%<table>`
 * for another table. One route per key.
 */
export function routeKey(r: Pick<DesiredRoute, 'dst' | 'table'>): string {
  return keyOf(r.table ?? RT_TABLE_MAIN, r.dst);
}

function keyOf(table: number, dst: string): string {
  return table === RT_TABLE_MAIN ? dst : `${dst}%${table}`;
}


/** Human-readable form, close to `ip route` output (logs, status). */
export function formatRoute(r: DesiredRoute): string {
  const parts = [r.type === 'unicast' ? '' : r.type + ' ', r.dst];
  if (r.via) parts.push(` via ${r.via}`);
  if (r.dev) parts.push(` dev ${r.dev}`);
  if (r.scope === 'link') parts.push(' scope link');
  if (r.onlink) parts.push(' onlink');
  if (r.src) parts.push(` src ${r.src}`);
  if (r.mtu) parts.push(` mtu ${r.mtu}`);
  if (r.table !== undefined && r.table !== RT_TABLE_MAIN) parts.push(` table ${r.table}`);
  return parts.join('');
}

/** Validates and canonicalises a desired route; throws an Error naming the problem. */
/** Canonical `a.b.c.d/n` for plain IPv4 CIDR text, or undefined (then the general path runs). */
function canonV4Cidr(text: string): string | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const o = v4Octets(text.slice(0, slash));
  const ptext = text.slice(slash + 1);
  if (!o || !/^\d{1,2}$/.test(ptext)) return undefined;
  const plen = Number(ptext);
  if (plen > 32) return undefined;
  const v = ((o[0] << 24) | (o[1] << 16) | (o[2] << 8) | o[3]) >>> 0;
  const m = plen === 0 ? 0 : (0xffffffff << (32 - plen)) >>> 0;
  const n = (v & m) >>> 0;
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}/${plen}`;
}

export function normaliseRoute(r: DesiredRoute): DesiredRoute {
  const fast = typeof r.dst === 'string' ? canonV4Cidr(r.dst) : undefined;
  if (fast) return normaliseV4(r, fast);
  const c = parseCidr(r.dst);
  if (!c) throw new Error(`route ${JSON.stringify(r.dst)}: invalid destination CIDR`);
  const dst = canonicalCidr(r.dst);
  const v4 = c.version === 4;
  if (r.type !== 'unicast' && r.type !== 'blackhole' && r.type !== 'unreachable') throw new Error(`route ${dst}: invalid type ${JSON.stringify(r.type)}`);
  const out: DesiredRoute = { dst, type: r.type };
  if (r.table !== undefined && r.table !== RT_TABLE_MAIN) {
    if (!Number.isInteger(r.table) || r.table < 1 || r.table > 0xfffffffe) throw new Error(`route ${dst}: invalid table ${r.table}`);
    out.table = r.table;
  }
  if (r.type === 'unicast') {
    if (!r.dev && !r.via) throw new Error(`route ${dst}: a unicast route needs dev or via`);
    if (r.dev) {
      if (!/^[^\s/]{1,15}$/.test(r.dev)) throw new Error(`route ${dst}: invalid interface name ${JSON.stringify(r.dev)}`);
      out.dev = r.dev;
    }
    if (r.via) {
      const g = parseIp(r.via);
      if (!g || g.version !== c.version) throw new Error(`route ${dst}: gateway ${JSON.stringify(r.via)} is not an IPv${c.version} address`);
      out.via = canonicalCidr(r.via).split('/')[0];
    }
    if (r.onlink) {
      if (!out.dev) throw new Error(`route ${dst}: onlink needs dev`);
      out.onlink = true;
    }
    if (v4) out.scope = r.scope ?? (out.via ? 'universe' : 'link');
  } else if (v4) out.scope = 'universe';
  if (r.src) {
    const s = parseIp(r.src);
    if (!s || s.version !== c.version) throw new Error(`route ${dst}: src ${JSON.stringify(r.src)} is not an IPv${c.version} address`);
    out.src = canonicalCidr(r.src).split('/')[0];
  }
  if (r.mtu !== undefined) {
    if (!Number.isInteger(r.mtu) || r.mtu < 68 || r.mtu > 65535) throw new Error(`route ${dst}: invalid mtu ${r.mtu}`);
    out.mtu = r.mtu;
  }
  return out;
}

/** The IPv4 fast path of normaliseRoute (same rules, no BigInt). */
function normaliseV4(r: DesiredRoute, dst: string): DesiredRoute {
  const t = r.type;
  if (t !== 'unicast' && t !== 'blackhole' && t !== 'unreachable') throw new Error(`route ${dst}: invalid type ${JSON.stringify(t)}`);
  const out: DesiredRoute = { dst, type: t };
  if (r.table !== undefined && r.table !== RT_TABLE_MAIN) {
    if (!Number.isInteger(r.table) || r.table < 1 || r.table > 0xfffffffe) throw new Error(`route ${dst}: invalid table ${r.table}`);
    out.table = r.table;
  }
  if (t === 'unicast') {
    if (!r.dev && !r.via) throw new Error(`route ${dst}: a unicast route needs dev or via`);
    if (r.dev) {
      if (!/^[^\s/]{1,15}$/.test(r.dev)) throw new Error(`route ${dst}: invalid interface name ${JSON.stringify(r.dev)}`);
      out.dev = r.dev;
    }
    if (r.via) {
      if (!v4Octets(r.via)) throw new Error(`route ${dst}: gateway ${JSON.stringify(r.via)} is not an IPv4 address`);
      out.via = r.via;
    }
    if (r.onlink) {
      if (!out.dev) throw new Error(`route ${dst}: onlink needs dev`);
      out.onlink = true;
    }
    out.scope = r.scope ?? (out.via ? 'universe' : 'link');
  } else out.scope = 'universe';
  if (r.src) {
    if (!v4Octets(r.src)) throw new Error(`route ${dst}: src ${JSON.stringify(r.src)} is not an IPv4 address`);
    out.src = r.src;
  }
  if (r.mtu !== undefined) {
    if (!Number.isInteger(r.mtu) || r.mtu < 68 || r.mtu > 65535) throw new Error(`route ${dst}: invalid mtu ${r.mtu}`);
    out.mtu = r.mtu;
  }
  return out;
}

/** A desired route as held by the manager: marked with the generation of the last full set holding it. */
type MarkedRoute = DesiredRoute & { _g?: number };

/** True when raw input `r` normalises to the already-normalised `n` (cheap check, no parsing). */
function sameInput(n: DesiredRoute, r: DesiredRoute): boolean {
  if (!r || n.dst !== r.dst || n.type !== r.type || n.dev !== r.dev || n.via !== r.via || !!n.onlink !== !!r.onlink) return false;
  if (n.src !== r.src || n.mtu !== r.mtu || (n.table ?? RT_TABLE_MAIN) !== (r.table ?? RT_TABLE_MAIN)) return false;
  const v4 = !n.dst.includes(':');
  const dflt = v4 ? (n.type === 'unicast' && !n.via ? 'link' : 'universe') : undefined;
  return r.scope === undefined ? n.scope === dflt : v4 && (n.type === 'unicast' ? r.scope === n.scope : n.scope === 'universe');
}

function sameRoute(a: DesiredRoute, b: DesiredRoute): boolean {
  return (
    a.dst === b.dst &&
    a.type === b.type &&
    a.dev === b.dev &&
    a.via === b.via &&
    !!a.onlink === !!b.onlink &&
    a.scope === b.scope &&
    a.src === b.src &&
    a.mtu === b.mtu &&
    (a.table ?? RT_TABLE_MAIN) === (b.table ?? RT_TABLE_MAIN)
  );
}

/**
 * Above this many operations in one pass, route events are paused and the kernel re-read after:
 * their echoes (~1 KB of receive buffer each) must fit in half the event socket's buffer.
 */
const QUIET_MAX = 1000;

const TYPE_NUM = { unicast: RTN_UNICAST, blackhole: RTN_BLACKHOLE, unreachable: RTN_UNREACHABLE } as const;

/** The kernel identity of a route: table, dst, metric, tos. */
function kid(table: number, dst: string, priority: number, tos = 0): string {
  // the usual route (default metric, no TOS) is known by its route key alone
  const k = keyOf(table, dst);
  return priority === defaultPriority(dst) && tos === 0 ? k : `${k}#${priority}#${tos}`;
}

function defaultPriority(dst: string): number {
  return dst.includes(':') ? 1024 : 0;
}

export interface RouteManagerOptions {
  /** route protocol number for every route Petrel programs (default 80, Felix's) */
  protocol?: number;
  /** full resync period (FelixConfiguration routeRefreshInterval), default 90 s; 0 disables */
  resyncIntervalMs?: number;
  /** workload interface name prefix (default `cali`) */
  interfacePrefix?: string;
  /** where to act (default: this process's network namespace) */
  host?: NetHost;
  log?: Logger;
}

export interface RouteManagerStatus {
  protocol: number;
  started: boolean;
  /** a full desired set has been given (removal of stale routes is allowed) */
  haveDesired: boolean;
  /** every desired route that can be programmed is, and nothing stale remains */
  inSync: boolean;
  desired: number;
  programmed: number;
  /** desired routes waiting for their interface to exist and be up */
  waitingForInterface: number;
  /** desired routes whose key holds a route of another protocol (left alone) */
  conflicts: { route: string; reason: string }[];
  /** routes that failed on the last attempt (the first 50; `failed` counts them all) */
  failures: { route: string; error: string }[];
  failed: number;
  lastSync?: string;
  lastSyncDurationMs?: number;
  resyncs: number;
  netlinkErrors: number;
  /** netlink messages and datagrams sent since start */
  messagesSent: number;
  datagramsSent: number;
  errors: string[];
}

const mProgrammed = () => gauge({ name: 'petrel_routes_programmed', help: 'Routes Petrel has programmed into the kernel (its protocol, matching the desired set)' });
const mSync = () =>
  histogram({
    name: 'petrel_route_sync_duration_seconds',
    help: 'Duration of one route reconciliation pass (diff and netlink apply)',
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  });
const mResync = () => counter({ name: 'petrel_route_resync_total', help: 'Full route resyncs (kernel dump and reconcile)' });
const mNlErr = () => counter({ name: 'petrel_route_netlink_errors_total', help: 'Netlink route operations the kernel refused' });

interface Op {
  kind: 'add' | 'replace' | 'del';
  key?: string;
  /** kernel identity (add/replace) */
  id?: string;
  spec: RouteSpec;
  route?: DesiredRoute;
}

/**
 * Keeps the kernel's routes (Petrel's protocol) equal to the desired set.
 * Events: 'link' (link: KernelLink, gone: boolean) for every link change seen.
 */
export class RouteManager extends EventEmitter {
  readonly protocol: number;
  readonly resyncIntervalMs: number;
  readonly interfacePrefix: string;
  readonly host: NetHost;
  private readonly log: Logger;
  private readonly ownsHost: boolean;

  private conn?: NlConn;
  private events?: NlChannel;
  private readonly desired = new Map<string, DesiredRoute>();
  private generation = 0;
  /** routes of our protocol in the kernel, by kernel identity */
  private readonly kernel = new Map<string, KernelRoute>();
  /** kernel identities held by routes of other protocols */
  private readonly foreign = new Set<string>();
  private readonly links = new Map<number, KernelLink>();
  private readonly linkByName = new Map<string, KernelLink>();
  private readonly conflicts = new Map<string, string>();
  private readonly failures = new Map<string, { sig: string; error: string }>();
  private readonly explicitRemovals = new Set<string>();
  private readonly recentErrors: string[] = [];

  private haveDesired = false;
  private started = false;
  private stopped = false;

  /** a full pass is due (start, dump, link change) */
  private fullDirty = false;
  /** route keys to look at in the next incremental pass */
  private dirtyKeys = new Set<string>();
  private readonly programmedKeys = new Set<string>();
  private readonly waitingKeys = new Set<string>();
  private needDump = false;
  private needCatchUp = false;
  private running?: Promise<void>;
  private dumping = false;
  private queuedEvents: Buffer[] = [];
  private resyncTimer?: NodeJS.Timeout;
  private lastSync?: Date;
  private lastSyncMs?: number;
  private resyncs = 0;
  private netlinkErrors = 0;
  private passFailures = 0;
  private readonly waiters: (() => void)[] = [];

  constructor(opts: RouteManagerOptions = {}) {
    super();
    this.protocol = opts.protocol ?? 80;
    if (!Number.isInteger(this.protocol) || this.protocol < 1 || this.protocol > 255) throw new Error(`invalid route protocol ${opts.protocol}: 5..255`);
    // 1-4 (redirect, kernel, boot, static) are what the kernel and `ip route add` use: owning
    // them would delete the node's own routes (its default route is usually `proto boot`).
    if (this.protocol <= 4) throw new Error(`route protocol ${this.protocol} is the kernel's or the administrator's (1 redirect, 2 kernel, 3 boot, 4 static); choose 5..255 (default 80)`);
    this.resyncIntervalMs = opts.resyncIntervalMs ?? 90_000;
    this.interfacePrefix = opts.interfacePrefix ?? 'cali';
    this.ownsHost = !opts.host;
    this.host = opts.host ?? new LocalHost();
    this.log = opts.log ?? logger('routes');
    mProgrammed();
    mSync();
    mResync();
    mNlErr();
  }

  /** Reads links and our routes from the kernel and follows netlink events. Changes nothing. */
  async start(): Promise<void> {
    if (this.started) return;
    this.events = await this.host.openNetlink({ groups: [RTNLGRP_LINK, RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV6_ROUTE], rcvbuf: 8 * 1024 * 1024 });
    this.events.on('message', (b: Buffer) => this.onEvent(b));
    this.events.on('error', (e: Error & { code?: string }) => {
      // ENOBUFS: we missed events; only a full dump tells the truth again.
      this.log.warn({ err: e.message, code: e.code }, 'netlink event socket error; scheduling a full resync');
      this.needDump = true;
      this.kick();
    });
    this.conn = await NlConn.open(this.host);
    this.started = true;
    await this.dumpKernel();
    this.log.info({ protocol: this.protocol, routes: this.kernel.size, links: this.links.size }, 'route manager started; waiting for the desired set');
    // a desired set handed over before start() finished
    if (this.pending()) this.kick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.resyncTimer) clearTimeout(this.resyncTimer);
    await this.running?.catch(() => undefined);
    this.events?.close();
    this.conn?.close();
    if (this.ownsHost) await this.host.close();
    this.started = false;
    for (const w of this.waiters.splice(0)) w();
  }

  /** Replaces the whole desired set; resolves once it has been applied. Invalid routes are reported and skipped. */
  setDesired(routes: DesiredRoute[]): Promise<void> {
    // In place, marking what the new set holds with a generation number: an unchanged route
    // costs one map lookup, so a 10% change costs little more than reading the list.
    const gen = ++this.generation;
    const desired = this.desired as Map<string, MarkedRoute>;
    let seen = 0;
    for (const r of routes) {
      const rawKey = r?.table === undefined || r.table === RT_TABLE_MAIN ? r?.dst : `${r.dst}%${r.table}`;
      const prev = desired.get(rawKey);
      if (prev !== undefined && sameInput(prev, r)) {
        if (prev._g !== gen) {
          prev._g = gen;
          seen++;
        }
        continue;
      }
      const n = this.tryNormalise(r) as MarkedRoute | undefined;
      if (!n) continue;
      const k = routeKey(n);
      const old = desired.get(k);
      if (old !== undefined && old._g === gen) {
        if (!sameRoute(old, n)) this.error(`two desired routes for ${k}: ${formatRoute(old)} and ${formatRoute(n)}; keeping the first`);
        continue;
      }
      seen++;
      if (old !== undefined && sameRoute(old, n)) {
        old._g = gen;
        continue;
      }
      n._g = gen;
      desired.set(k, n);
      this.dirtyKeys.add(k);
    }
    if (seen !== desired.size) {
      for (const [k, v] of desired) {
        if (v._g === gen) continue;
        desired.delete(k);
        this.dirtyKeys.add(k);
      }
    }
    this.explicitRemovals.clear();
    const first = !this.haveDesired;
    this.haveDesired = true;
    if (first) {
      this.scheduleResync();
      this.fullDirty = true;
    }
    return this.kickAndWait();
  }

  /** Adds/changes `add` and removes `remove` (routes or keys) from the desired set. */
  applyDelta(add: DesiredRoute[], remove: (DesiredRoute | string)[]): Promise<void> {
    for (const r of remove) {
      const k = typeof r === 'string' ? r : (() => {
        const n = this.tryNormalise(r);
        return n ? routeKey(n) : undefined;
      })();
      if (!k) continue;
      this.desired.delete(k);
      this.dirtyKeys.add(k);
      this.failures.delete(k);
      this.conflicts.delete(k);
      if (!this.haveDesired) this.explicitRemovals.add(k);
    }
    for (const r of add) {
      const n = this.tryNormalise(r);
      if (!n) continue;
      const k = routeKey(n);
      this.desired.set(k, n);
      this.dirtyKeys.add(k);
      this.explicitRemovals.delete(k);
    }
    return this.kickAndWait();
  }

  /** Resolves when no work is pending (tests, benchmarks). */
  settled(): Promise<void> {
    if (!this.running && !this.pending() && !this.needDump && !this.needCatchUp) return Promise.resolve();
    return new Promise((r) => this.waiters.push(r));
  }

  /** Forces a full resync now (kernel dump, then reconcile). */
  resync(): Promise<void> {
    this.needDump = true;
    return this.kickAndWait();
  }

  desiredRoutes(): DesiredRoute[] {
    return [...this.desired.values()].map((r) => {
      const { _g, ...rest } = r as MarkedRoute;
      return rest;
    });
  }

  link(name: string): KernelLink | undefined {
    return this.linkByName.get(name);
  }

  allLinks(): KernelLink[] {
    return [...this.links.values()];
  }

  status(): RouteManagerStatus {
    const programmed = this.programmedKeys.size;
    let stale = 0;
    for (const [, k] of this.kernel) if (!this.wanted(k)) stale++;
    const conflicts = [...this.conflicts].map(([route, reason]) => ({ route, reason }));
    const failures = [...this.failures].slice(0, 50).map(([route, f]) => ({ route, error: f.error }));
    return {
      protocol: this.protocol,
      started: this.started,
      haveDesired: this.haveDesired,
      inSync: this.haveDesired && !this.pending() && !this.needDump && programmed + this.waitingKeys.size + conflicts.length + this.failures.size >= this.desired.size && stale === 0,
      desired: this.desired.size,
      programmed,
      waitingForInterface: this.waitingKeys.size,
      conflicts,
      failures,
      failed: this.failures.size,
      lastSync: this.lastSync?.toISOString(),
      lastSyncDurationMs: this.lastSyncMs,
      resyncs: this.resyncs,
      netlinkErrors: this.netlinkErrors,
      messagesSent: this.conn?.messagesSent ?? 0,
      datagramsSent: this.conn?.datagramsSent ?? 0,
      errors: [...this.recentErrors],
    };
  }

  // ----------------------------------------------------------------------------------------

  private tryNormalise(r: DesiredRoute): DesiredRoute | undefined {
    try {
      return normaliseRoute(r);
    } catch (e) {
      this.error((e as Error).message);
      return undefined;
    }
  }

  private error(msg: string): void {
    this.log.error(msg);
    this.recentErrors.push(`${new Date().toISOString()} ${msg}`);
    if (this.recentErrors.length > 20) this.recentErrors.shift();
  }


  private quietThreshold(): number {
    const buf = this.events?.recvBufferSize || 212992;
    return Math.min(QUIET_MAX, Math.max(64, Math.floor(buf / 2048)));
  }

  private pending(): boolean {
    return this.fullDirty || this.dirtyKeys.size > 0;
  }

  private wanted(k: KernelRoute): boolean {
    if (k.multipath) return false;
    const d = this.desired.get(keyOf(k.table, k.dst));
    return !!d && k.priority === defaultPriority(k.dst) && k.tos === 0;
  }

  private scheduleResync(): void {
    if (this.resyncTimer) clearTimeout(this.resyncTimer);
    if (this.resyncIntervalMs <= 0 || this.stopped) return;
    this.resyncTimer = setTimeout(() => {
      this.needDump = true;
      this.kick();
      this.scheduleResync();
    }, this.resyncIntervalMs);
    this.resyncTimer.unref();
  }

  private kickAndWait(): Promise<void> {
    const p = new Promise<void>((r) => this.waiters.push(r));
    this.kick();
    return p;
  }

  private kick(): void {
    if (this.running || !this.started || this.stopped) return;
    this.running = (async () => {
      // Let a burst of events or calls coalesce into one pass.
      await new Promise((r) => setImmediate(r));
      while ((this.pending() || this.needDump || this.needCatchUp) && !this.stopped) {
        // the desired set is applied: callers need not wait for the catch-up re-read
        if (!this.pending() && !this.needDump) for (const w of this.waiters.splice(0)) w();
        try {
          if (this.needCatchUp && !this.needDump) {
            this.needCatchUp = false;
            await this.dumpKernel();
            this.fullDirty = true;
          }
          if (this.needDump) {
            this.needCatchUp = false;
            this.needDump = false;
            this.resyncs++;
            mResync().inc();
            await this.dumpKernel();
            this.failures.clear();
            this.fullDirty = true;
          }
          const full = this.fullDirty;
          const keys = this.dirtyKeys;
          this.fullDirty = false;
          this.dirtyKeys = new Set();
          if (this.haveDesired || this.explicitRemovals.size || this.desired.size) await this.reconcile(full, keys);
        } catch (e) {
          this.error(`route sync failed: ${(e as Error).message}`);
          // back off, then try again with a fresh view of the kernel
          await new Promise((r) => setTimeout(r, 1000));
          this.needDump = true;
        }
      }
      this.running = undefined;
      for (const w of this.waiters.splice(0)) w();
    })();
  }

  private async dumpKernel(): Promise<void> {
    const conn = this.conn!;
    this.dumping = true;
    try {
      const links = await conn.dump((w, s) => encodeLinkDump(w, s));
      const v4 = await conn.dump((w, s) => encodeRouteDump(w, s, AF_INET));
      const v6 = await conn.dump((w, s) => encodeRouteDump(w, s, AF_INET6));
      this.links.clear();
      this.linkByName.clear();
      for (const m of links) {
        const l = decodeLink(m);
        if (l) this.setLink(l, false);
      }
      this.kernel.clear();
      this.foreign.clear();
      for (const m of [...v4, ...v6]) this.absorbRoute(m.type, decodeRoute(m));
    } finally {
      this.dumping = false;
      const q = this.queuedEvents;
      this.queuedEvents = [];
      for (const b of q) this.onEvent(b);
    }
  }

  private setLink(l: KernelLink, notify: boolean): void {
    const old = this.links.get(l.index);
    if (old && old.name !== l.name && this.linkByName.get(old.name) === old) this.linkByName.delete(old.name);
    this.links.set(l.index, l);
    this.linkByName.set(l.name, l);
    if (notify) this.emit('link', l, false);
  }

  private absorbRoute(type: number, r: KernelRoute | undefined): void {
    if (!r) return;
    const id = kid(r.table, r.dst, r.priority, r.tos);
    if (r.protocol === this.protocol) {
      if (type === RTM_NEWROUTE) {
        this.kernel.set(id, r);
        this.foreign.delete(id);
      } else this.kernel.delete(id);
    } else if (type === RTM_NEWROUTE) {
      this.foreign.add(id);
      // a NEWROUTE of another protocol at our identity replaced ours (NLM_F_REPLACE)
      this.kernel.delete(id);
    } else this.foreign.delete(id);
  }

  private onEvent(buf: Buffer): void {
    if (this.dumping) {
      this.queuedEvents.push(buf);
      return;
    }
    let touched = false;
    for (const m of parseMessages(buf)) {
      if (m.type === RTM_NEWROUTE || m.type === RTM_DELROUTE) {
        const r = decodeRoute(m);
        if (!r) continue;
        const id = kid(r.table, r.dst, r.priority, r.tos);
        if (r.protocol === this.protocol) {
          const before = this.kernel.get(id);
          this.absorbRoute(m.type, r);
          // ignore the echo of our own change
          if (m.type === RTM_DELROUTE || !before || !sameKernel(before, r)) {
            const key = keyOf(r.table, r.dst);
            // a route of ours at an unusual metric or TOS is never wanted: the full pass finds it
            if (id === key) this.dirtyKeys.add(key);
            else if (m.type === RTM_NEWROUTE) this.fullDirty = true;
          }
        } else {
          const wasForeign = this.foreign.has(id);
          this.absorbRoute(m.type, r);
          const k = keyOf(r.table, r.dst);
          if (this.desired.has(k) && (m.type === RTM_NEWROUTE || wasForeign)) this.dirtyKeys.add(k);
          if (m.type === RTM_DELROUTE) this.conflicts.delete(k);
        }
      } else if (m.type === RTM_NEWLINK || m.type === RTM_DELLINK) {
        const l = decodeLink(m);
        if (!l) continue;
        const old = this.links.get(l.index);
        if (m.type === RTM_DELLINK) {
          this.links.delete(l.index);
          if (this.linkByName.get(l.name)?.index === l.index) this.linkByName.delete(l.name);
          this.emit('link', l, true);
          // the kernel drops routes through a vanished link without telling us: re-read
          this.needDump = true;
          touched = true;
          continue;
        }
        this.setLink(l, true);
        const wasUp = !!old && (old.flags & IFF_UP) !== 0;
        const isUp = (l.flags & IFF_UP) !== 0;
        if (!old || old.name !== l.name || wasUp !== isUp) {
          if (old && wasUp && !isUp) this.needDump = true; // IPv4 routes flushed silently
          touched = true;
        }
      }
    }
    if (touched) this.fullDirty = true;
    if (this.pending() || this.needDump) this.kick();
  }

  private ifindexFor(r: DesiredRoute): number | undefined | null {
    if (!r.dev) return undefined;
    const l = this.linkByName.get(r.dev);
    if (!l || (l.flags & IFF_UP) === 0) return null;
    return l.index;
  }

  private matches(k: KernelRoute, r: DesiredRoute): boolean {
    if (k.rtype !== TYPE_NUM[r.type]) return false;
    if (k.multipath) return false;
    if (r.type === 'unicast') {
      const idx = r.dev ? this.linkByName.get(r.dev)?.index : undefined;
      if (r.dev && k.oif !== idx) return false;
      if (k.gateway !== r.via) return false;
      if (((k.flags & RTNH_F_ONLINK) !== 0) !== !!r.onlink) return false;
    }
    if (k.family === AF_INET && k.scope !== (r.scope === 'link' ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE)) return false;
    if (k.prefsrc !== r.src) return false;
    if (k.mtu !== r.mtu) return false;
    return true;
  }

  private specOf(r: DesiredRoute, oif: number | undefined): RouteSpec {
    const v4 = !r.dst.includes(':');
    return {
      family: v4 ? AF_INET : AF_INET6,
      dst: r.dst,
      table: r.table ?? RT_TABLE_MAIN,
      protocol: this.protocol,
      rtype: TYPE_NUM[r.type],
      scope: r.scope === 'link' ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE,
      flags: r.onlink ? RTNH_F_ONLINK : 0,
      oif,
      gateway: r.via,
      prefsrc: r.src,
      priority: v4 ? undefined : 1024,
      mtu: r.mtu,
    };
  }

  /** Plans what one desired route needs (nothing, add or replace), keeping the counters. */
  private plan(key: string, r: DesiredRoute, ups: Op[]): void {
    const id = key;
    const oif = this.ifindexFor(r);
    if (oif === null) {
      this.waitingKeys.add(key);
      this.programmedKeys.delete(key);
      return;
    }
    if (this.waitingKeys.size) this.waitingKeys.delete(key);
    const k = this.kernel.get(id);
    if (k && this.matches(k, r)) {
      this.programmedKeys.add(key);
      if (this.failures.size) this.failures.delete(key);
      if (this.conflicts.size) this.conflicts.delete(key);
      return;
    }
    this.programmedKeys.delete(key);
    if (!k && this.foreign.has(id)) {
      this.conflicts.set(key, `a route of another protocol holds ${r.dst} (table ${r.table ?? RT_TABLE_MAIN}); left alone`);
      return;
    }
    if (this.conflicts.size) this.conflicts.delete(key);
    const f = this.failures.get(key);
    if (f && f.sig === formatRoute(r) + `@${oif ?? ''}`) return; // failed before: retried on the next full resync
    ups.push({ kind: k ? 'replace' : 'add', key, id, spec: this.specOf(r, oif), route: r });
  }

  private delOp(id: string, k: KernelRoute): Op {
    return {
      kind: 'del',
      key: id,
      spec: {
        family: k.family,
        dst: k.dst,
        table: k.table,
        protocol: this.protocol,
        rtype: k.rtype,
        scope: 255, // RT_SCOPE_NOWHERE: any scope
        flags: 0,
        priority: k.priority,
        tos: k.tos,
      },
    };
  }

  /** One pass: everything (`full`), or just the routes under `keys`. */
  private async reconcile(full: boolean, keys: Set<string>): Promise<void> {
    const t0 = process.hrtime.bigint();
    const dels: Op[] = [];
    const ups: Op[] = [];
    if (full) {
      this.programmedKeys.clear();
      this.waitingKeys.clear();
      // stale routes of ours
      for (const [id, k] of this.kernel) {
        if (this.wanted(k)) continue;
        if (!this.haveDesired && !this.explicitRemovals.has(keyOf(k.table, k.dst))) continue;
        dels.push(this.delOp(id, k));
      }
      for (const [key, r] of this.desired) this.plan(key, r, ups);
    } else {
      for (const key of keys) {
        const r = this.desired.get(key);
        if (r) {
          this.plan(key, r, ups);
          continue;
        }
        this.programmedKeys.delete(key);
        this.waitingKeys.delete(key);
        if (!this.haveDesired && !this.explicitRemovals.has(key)) continue;
        const id = key;
        const k = this.kernel.get(id);
        if (k) dels.push(this.delOp(id, k));
      }
    }
    // A large apply would flood our own event socket with its echoes (and the netlink package
    // aborts the process on ENOBUFS): leave the route groups meanwhile and re-read the kernel
    // afterwards, which also catches anything others changed in that window.
    const quiet = dels.length + ups.length > this.quietThreshold();
    if (quiet) this.events!.membership([RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV6_ROUTE], false);
    if (dels.length || ups.length) {
      const conn = this.conn!;
      const write = (w: Parameters<Parameters<typeof runBatched>[2]>[0], op: Op, seq: number, ack: number) => {
        const flags =
          op.kind === 'del'
            ? NLM_F_REQUEST | ack
            : op.kind === 'add'
              ? NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL | ack
              : NLM_F_REQUEST | NLM_F_CREATE | NLM_F_REPLACE | ack;
        encodeRoute(w, op.kind === 'del' ? RTM_DELROUTE : RTM_NEWROUTE, flags, seq, op.spec);
      };
      const delErr = dels.length ? await runBatched(conn, dels, write) : new Map<number, number>();
      dels.forEach((op, i) => {
        const e = delErr.get(i);
        if (!e || e === 3 /* ESRCH: already gone */) this.kernel.delete(op.key!);
        else this.opFailed(op, e);
      });
      const upErr = ups.length ? await runBatched(conn, ups, write) : new Map<number, number>();
      for (let i = 0; i < ups.length; i++) {
        const op = ups[i];
        const e = upErr.size ? upErr.get(i) : undefined;
        if (!e) {
          const s = op.spec;
          this.kernel.set(op.id!, {
            family: s.family,
            dst: s.dst,
            table: s.table,
            protocol: s.protocol,
            rtype: s.rtype,
            scope: s.family === AF_INET ? s.scope : RT_SCOPE_UNIVERSE,
            flags: s.flags,
            oif: s.rtype === RTN_UNICAST ? s.oif : undefined,
            gateway: s.gateway,
            prefsrc: s.prefsrc,
            priority: s.priority ?? 0,
            mtu: s.mtu,
            tos: 0,
          });
          if (this.failures.size) this.failures.delete(op.key!);
          this.programmedKeys.add(op.key!);
        } else this.opFailed(op, e);
      }
      this.log.debug({ deleted: dels.length, upserted: ups.length }, 'routes applied');
    }
    if (quiet) {
      this.events!.membership([RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV6_ROUTE], true);
      this.needCatchUp = true;
    }
    if (this.passFailures > 5) this.error(`${this.passFailures} route operations failed in one pass (the first 5 logged); status() lists them`);
    this.passFailures = 0;
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    mSync().observe(secs);
    this.lastSync = new Date();
    this.lastSyncMs = secs * 1000;
    mProgrammed().set(this.programmedKeys.size);
  }

  private opFailed(op: Op, errno: number): void {
    this.netlinkErrors++;
    mNlErr().inc();
    const what = op.route ? formatRoute(op.route) : `${op.spec.dst} (table ${op.spec.table})`;
    if (op.kind === 'add' && errno === 17) {
      // EEXIST on an exclusive create: another protocol's route holds the place (or our own
      // appeared meanwhile; its event will tell). Never replace a foreign route.
      this.conflicts.set(op.key!, `a route to ${op.spec.dst} already exists in table ${op.spec.table} (not ours); left alone`);
      return;
    }
    const msg = `${op.kind} ${what}: ${errnoName(errno)}`;
    if (op.kind !== 'del') this.failures.set(op.key!, { sig: formatRoute(op.route!) + `@${op.spec.oif ?? ''}`, error: errnoName(errno) });
    // one log line per failure for the first few of a pass, then a summary
    if (++this.passFailures <= 5) this.error(`route ${msg}`);
  }
}

function sameKernel(a: KernelRoute, b: KernelRoute): boolean {
  return (
    a.rtype === b.rtype &&
    (a.rtype !== RTN_UNICAST || a.oif === b.oif) &&
    a.gateway === b.gateway &&
    (a.flags & RTNH_F_ONLINK) === (b.flags & RTNH_F_ONLINK) &&
    (a.family !== AF_INET || a.scope === b.scope) &&
    a.prefsrc === b.prefsrc &&
    a.mtu === b.mtu
  );
}
