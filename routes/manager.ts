// The desired-state route table manager: keeps the kernel's routes carrying Petrel's protocol
// number equal to the desired set, IPv4 and IPv6. It never changes or removes a route of any
// other protocol (CONTRACT §4) and removes nothing before it has been given a full desired set.
import { EventEmitter } from 'node:events';
import { isIPv4 } from 'node:net';
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

/** The stable identity of a desired route: `<table>|<dst>`. One route per key. */
export function routeKey(r: Pick<DesiredRoute, 'dst' | 'table'>): string {
  return `${r.table ?? RT_TABLE_MAIN}|${r.dst}`;
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
export function normaliseRoute(r: DesiredRoute): DesiredRoute {
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

const TYPE_NUM = { unicast: RTN_UNICAST, blackhole: RTN_BLACKHOLE, unreachable: RTN_UNREACHABLE } as const;

/** The kernel identity of a route: table, dst, metric, tos. */
function kid(table: number, dst: string, priority: number, tos = 0): string {
  return `${table}|${dst}|${priority}|${tos}`;
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
  /** routes that failed on the last attempt */
  failures: { route: string; error: string }[];
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
  private waitingForInterface = 0;
  private haveDesired = false;
  private started = false;
  private stopped = false;

  private dirty = false;
  private needDump = false;
  private running?: Promise<void>;
  private dumping = false;
  private queuedEvents: Buffer[] = [];
  private resyncTimer?: NodeJS.Timeout;
  private lastSync?: Date;
  private lastSyncMs?: number;
  private resyncs = 0;
  private netlinkErrors = 0;
  private readonly waiters: (() => void)[] = [];

  constructor(opts: RouteManagerOptions = {}) {
    super();
    this.protocol = opts.protocol ?? 80;
    if (!Number.isInteger(this.protocol) || this.protocol < 1 || this.protocol > 255) throw new Error(`invalid route protocol ${opts.protocol}`);
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
    this.events = await this.host.openNetlink({ groups: [RTNLGRP_LINK, RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV6_ROUTE], rcvbuf: 4 * 1024 * 1024 });
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
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.resyncTimer) clearTimeout(this.resyncTimer);
    await this.running?.catch(() => undefined);
    this.events?.close();
    this.conn?.close();
    if (this.ownsHost) await this.host.close();
    this.started = false;
  }

  /** Replaces the whole desired set; resolves once it has been applied. Invalid routes are reported and skipped. */
  setDesired(routes: DesiredRoute[]): Promise<void> {
    const next = new Map<string, DesiredRoute>();
    for (const r of routes) {
      const n = this.tryNormalise(r);
      if (!n) continue;
      const k = routeKey(n);
      if (next.has(k) && !sameRoute(next.get(k)!, n)) this.error(`two desired routes for ${k}: ${formatRoute(next.get(k)!)} and ${formatRoute(n)}; keeping the first`);
      else next.set(k, n);
    }
    this.desired.clear();
    for (const [k, v] of next) this.desired.set(k, v);
    this.explicitRemovals.clear();
    const first = !this.haveDesired;
    this.haveDesired = true;
    if (first) this.scheduleResync();
    this.dirty = true;
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
      this.failures.delete(k);
      this.conflicts.delete(k);
      if (!this.haveDesired) this.explicitRemovals.add(k);
    }
    for (const r of add) {
      const n = this.tryNormalise(r);
      if (!n) continue;
      const k = routeKey(n);
      this.desired.set(k, n);
      this.explicitRemovals.delete(k);
    }
    this.dirty = true;
    return this.kickAndWait();
  }

  /** Resolves when no work is pending (tests, benchmarks). */
  settled(): Promise<void> {
    if (!this.running && !this.dirty && !this.needDump) return Promise.resolve();
    return new Promise((r) => this.waiters.push(r));
  }

  /** Forces a full resync now (kernel dump, then reconcile). */
  resync(): Promise<void> {
    this.needDump = true;
    return this.kickAndWait();
  }

  desiredRoutes(): DesiredRoute[] {
    return [...this.desired.values()];
  }

  link(name: string): KernelLink | undefined {
    return this.linkByName.get(name);
  }

  allLinks(): KernelLink[] {
    return [...this.links.values()];
  }

  status(): RouteManagerStatus {
    let programmed = 0;
    for (const [, r] of this.desired) {
      const k = this.kernel.get(kid(r.table ?? RT_TABLE_MAIN, r.dst, defaultPriority(r.dst)));
      if (k && this.matches(k, r)) programmed++;
    }
    const conflicts = [...this.conflicts].map(([route, reason]) => ({ route, reason }));
    const failures = [...this.failures].map(([route, f]) => ({ route, error: f.error }));
    return {
      protocol: this.protocol,
      started: this.started,
      haveDesired: this.haveDesired,
      inSync: this.haveDesired && programmed + this.waitingForInterface + conflicts.length + failures.length >= this.desired.size && this.staleCount() === 0,
      desired: this.desired.size,
      programmed,
      waitingForInterface: this.waitingForInterface,
      conflicts,
      failures,
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

  private staleCount(): number {
    let n = 0;
    for (const [, k] of this.kernel) if (!this.wanted(k)) n++;
    return n;
  }

  private wanted(k: KernelRoute): boolean {
    if (k.multipath) return false;
    const d = this.desired.get(`${k.table}|${k.dst}`);
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
      while ((this.dirty || this.needDump) && !this.stopped) {
        try {
          if (this.needDump) {
            this.needDump = false;
            this.resyncs++;
            mResync().inc();
            await this.dumpKernel();
            this.failures.clear();
            this.dirty = true;
          }
          this.dirty = false;
          if (this.haveDesired || this.explicitRemovals.size || this.desired.size) await this.reconcile();
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
          if (m.type === RTM_DELROUTE || !before || !sameKernel(before, r)) touched = true;
        } else {
          const wasForeign = this.foreign.has(id);
          this.absorbRoute(m.type, r);
          const k = `${r.table}|${r.dst}`;
          if (this.desired.has(k) && (m.type === RTM_NEWROUTE || wasForeign)) touched = true;
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
    if (touched) {
      this.dirty = true;
      this.kick();
    }
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
    const v4 = isIPv4(r.dst.split('/')[0]);
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

  private async reconcile(): Promise<void> {
    const t0 = process.hrtime.bigint();
    const dels: Op[] = [];
    const ups: Op[] = [];
    let waiting = 0;
    // stale routes of ours
    for (const [id, k] of this.kernel) {
      if (this.wanted(k)) continue;
      const key = `${k.table}|${k.dst}`;
      if (!this.haveDesired && !this.explicitRemovals.has(key)) continue;
      dels.push({
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
        },
      });
    }
    for (const [key, r] of this.desired) {
      const id = kid(r.table ?? RT_TABLE_MAIN, r.dst, defaultPriority(r.dst));
      const oif = this.ifindexFor(r);
      if (oif === null) {
        waiting++;
        continue;
      }
      const k = this.kernel.get(id);
      if (k && this.matches(k, r)) {
        this.failures.delete(key);
        this.conflicts.delete(key);
        continue;
      }
      if (!k && this.foreign.has(id)) {
        this.conflicts.set(key, `a route of another protocol holds ${r.dst} (table ${r.table ?? RT_TABLE_MAIN}); left alone`);
        continue;
      }
      this.conflicts.delete(key);
      const spec = this.specOf(r, oif);
      const sig = formatRoute(r) + `@${oif ?? ''}`;
      const f = this.failures.get(key);
      if (f && f.sig === sig) continue; // failed before, retried on the next full resync
      ups.push({ kind: k ? 'replace' : 'add', key, spec, route: r });
    }
    this.waitingForInterface = waiting;
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
      ups.forEach((op, i) => {
        const e = upErr.get(i);
        if (!e) {
          const s = op.spec;
          const id = kid(s.table, s.dst, s.priority ?? 0);
          this.kernel.set(id, {
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
          this.failures.delete(op.key!);
        } else this.opFailed(op, e);
      });
      this.log.debug({ deleted: dels.length, upserted: ups.length }, 'routes applied');
    }
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    mSync().observe(secs);
    this.lastSync = new Date();
    this.lastSyncMs = secs * 1000;
    mProgrammed().set(this.status().programmed);
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
    this.error(`route ${msg}`);
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
