// The BGP speaker: listener, one Session per configured peer, the RIBs, export policy and
// graceful restart. Configuration is applied live (configure/setExports); best-path changes go
// out through onBestRoutes. See bgp/index.ts for the API summary.
import net from 'node:net';
import { logger, type Logger } from '../agent/log.js';
import { counter, gauge } from '../agent/metrics.js';
import {
  Afi,
  AsPathSegmentType,
  BgpNotification,
  CapabilityCode,
  CeaseSubcode,
  COMMUNITY_NO_ADVERTISE,
  COMMUNITY_NO_EXPORT,
  COMMUNITY_NO_EXPORT_SUBCONFED,
  MessageType,
  Origin,
  Safi,
  cease,
  decodeRouteRefresh,
  decodeUpdate,
  encodeEndOfRib,
  forEachNlri,
  forEachWithdrawn,
  formatPrefix,
  packUpdates,
  packWithdrawals,
  parseIp4,
  prefix4,
  parsePrefix,
  prefix4Addr,
  prefix4Len,
  type AsPathSegment,
  type Capability,
  type PathAttributes,
  type Prefix,
  type RawMessage,
} from './codec/index.js';
import { native } from './native.js';
import { ChangeLog, LocRib, Path, internPath, type RibPeer } from './rib.js';
import { PrefixMap, PrefixSet, warmUpPrefixMaps } from './prefixmap.js';
import { Conn, Session, type SessionHost } from './session.js';
import type {
  BgpPeerStatus,
  BgpSpeakerOptions,
  BgpStatus,
  ExportPrefix,
  PeerConfig,
  RouteChange,
  SessionState,
  SpeakerConfig,
} from './types.js';

const STATE_NUM: Record<SessionState, number> = {
  Idle: 1,
  Connect: 2,
  Active: 3,
  OpenSent: 4,
  OpenConfirm: 5,
  Established: 6,
};

let intakeWarm = false;
/** Warm-up size: 20 UPDATEs of 800 /24s (each table then grows through every size below 2^15). */
const WARM_MESSAGES = 20;
const WARM_PER_MESSAGE = 800;

/** Running speakers (normally one): gauges are filled from them at scrape time. */
const liveSpeakers = new Set<BgpSpeaker>();
const mState = gauge<'peer'>({
  name: 'petrel_bgp_session_state',
  help: 'BGP session state per peer (1 Idle, 2 Connect, 3 Active, 4 OpenSent, 5 OpenConfirm, 6 Established)',
  labelNames: ['peer'],
  collect() {
    for (const s of liveSpeakers) s.updateMetrics();
  },
});
const mRecv = gauge<'peer'>({ name: 'petrel_bgp_prefixes_received', help: 'Prefixes received from a peer (Adj-RIB-In, stale included)', labelNames: ['peer'] });
const mAdv = gauge<'peer'>({ name: 'petrel_bgp_prefixes_advertised', help: 'Prefixes advertised to a peer (Adj-RIB-Out)', labelNames: ['peer'] });
const mUpdIn = counter<'peer'>({ name: 'petrel_bgp_updates_received_total', help: 'UPDATE messages received', labelNames: ['peer'] });
const mUpdOut = counter<'peer'>({ name: 'petrel_bgp_updates_sent_total', help: 'UPDATE messages sent', labelNames: ['peer'] });
const mFlaps = counter<'peer'>({ name: 'petrel_bgp_session_flaps_total', help: 'Established sessions that went down', labelNames: ['peer'] });

/** Input queue limits (messages) for flow control toward a fast sender. */
const QUEUE_HIGH = 512;
const QUEUE_LOW = 128;
/** Event-loop slice for route processing: keepalives and timers run between slices. */
const SLICE_MS = 12;
/**
 * Best-route changes are handed to listeners at the end of a slice, or sooner once this many
 * are pending: a slice of a table load changes ~10,000 routes, and that many RouteChange objects
 * alive at once outlast the young generation (--max-semi-space-size=2) and get promoted. Fewer
 * alive at each scavenge is less to copy: bench/bgp-feed's 100k intake took 0.069-0.083 s
 * (medians of 5 batches of 5-7 runs) with batches of 512, 0.083-0.088 s (3 batches) with 2048.
 */
const EMIT_BATCH = 512;

interface Cidr4 {
  v: 4;
  addr: number;
  len: number;
}
interface Cidr6 {
  v: 6;
  addr: bigint;
  len: number;
}

function v6ToBig(text: string): bigint {
  const [h, t] = text.includes('::') ? text.split('::') : [text, undefined];
  const hs = h ? h.split(':') : [];
  const ts = t ? t.split(':') : [];
  const gs = t === undefined ? hs : [...hs, ...Array(Math.max(0, 8 - hs.length - ts.length)).fill('0'), ...ts];
  return gs.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g || '0', 16) || 0), 0n);
}

function parseCidr(text: string): Cidr4 | Cidr6 | undefined {
  const p = parsePrefix(text);
  if (p === undefined) return undefined;
  if (typeof p === 'number') return { v: 4, addr: prefix4Addr(p), len: prefix4Len(p) };
  const [a, l] = p.split('/');
  return { v: 6, addr: v6ToBig(a!), len: Number(l) };
}

function within(p: Prefix, c: Cidr4 | Cidr6): boolean {
  if (typeof p === 'number') {
    if (c.v !== 4) return false;
    const len = prefix4Len(p);
    if (len < c.len) return false;
    if (c.len === 0) return true;
    const shift = 32 - c.len;
    return Math.floor(prefix4Addr(p) / 2 ** shift) === Math.floor(c.addr / 2 ** shift);
  }
  if (c.v !== 6) return false;
  const [a, l] = p.split('/');
  if (Number(l) < c.len) return false;
  const shift = BigInt(128 - c.len);
  return v6ToBig(a!) >> shift === c.addr >> shift;
}

/** Per-peer RIB and export state. */
class PeerState implements RibPeer {
  bgpId = 0;
  asNumber: number;
  ebgp: boolean;
  rrClient: boolean;
  adjIn = new PrefixMap<Path>();
  stale: PrefixMap<Path> | null = null;
  paths = new Map<PathAttributes, Path>();
  adjOut = new PrefixMap<PathAttributes>();
  outCache = new WeakMap<Path, PathAttributes | null>();
  dirty = new PrefixSet();
  queue: RawMessage[] = [];
  qHead = 0;
  waitDrain = false;
  needEor = false;
  peerRestarting = false;
  eorFamilies = new Set<number>();
  eorReceived = false;
  /** UPDATEs processed since the counter was last advanced (once per slice, not per message). */
  updatesIn = 0;
  restartTimer: NodeJS.Timeout | null = null;
  /** When the session was configured or last left Established (readiness grace). */
  notUpSince = Date.now();
  constructor(
    readonly address: string,
    readonly session: Session,
    localAs: number,
  ) {
    this.asNumber = session.cfg.asNumber;
    this.ebgp = session.cfg.asNumber !== localAs;
    this.rrClient = !!session.cfg.routeReflectorClient;
  }
  get queued(): number {
    return this.queue.length - this.qHead;
  }
}

/** Fields of PeerConfig that change the OPEN or the transport: a change resets the session. */
const RESET_FIELDS: (keyof PeerConfig)[] = ['asNumber', 'port', 'sourceAddress', 'password', 'holdTime', 'ttlSecurity'];

export class BgpSpeaker implements SessionHost {
  readonly log: Logger;
  localAs: number;
  routerId: string;
  routerIdNum: number;
  private listenPort: number;
  private readonly listenAddress: string | undefined;
  private server: net.Server | null = null;
  private readonly sessions = new Map<string, Session>();
  private readonly peerStates = new Map<Session, PeerState>();
  private readonly rib = new LocRib();
  private started = false;
  private startedAt = 0;
  private configured = false;
  private exportsReady = false;
  private syncDone = false;
  private deferralTimer: NodeJS.Timeout | null = null;
  private pumpScheduled = false;
  private processedSinceTrim = 0;
  /** A drained change log kept for the next batch (emitChanges; made here, not on first use). */
  private spareLog: ChangeLog | null = new ChangeLog();
  private trimTimer: NodeJS.Timeout | null = null;
  private exportScheduled = false;
  private readonly busy = new Set<PeerState>();
  /** A Set (an array's layout would change with its first listener; V8 would notice). */
  private readonly bestListeners = new Set<(c: RouteChange[]) => void>();
  private readonly syncListeners: (() => void)[] = [];
  private readonly pending = new Map<net.Socket, NodeJS.Timeout>();
  private exportLearnedWithin: (Cidr4 | Cidr6)[] | null = null;
  private exportLearnedWithinKey = 'null';
  private localPaths = new Map<string, Path>();
  private readonly connectRetryMs: number;
  private readonly restartTime: number;
  private readonly deferralTime: number;
  readyGraceMs = 60_000;

  constructor(private readonly opts: BgpSpeakerOptions) {
    this.log = opts.log ?? logger('bgp');
    this.localAs = opts.asNumber;
    this.routerId = opts.routerId;
    this.routerIdNum = parseIp4(opts.routerId) ?? 0;
    this.listenPort = opts.listenPort;
    this.listenAddress = opts.listenAddress;
    this.connectRetryMs = opts.connectRetryMs ?? 5000;
    this.restartTime = Math.min(4095, Math.max(0, Math.round(opts.gracefulRestart?.restartTime ?? 120)));
    this.deferralTime = opts.gracefulRestart?.deferralTime ?? this.restartTime;
  }

  // ----------------------------------------------------------------------------------------
  // Life cycle

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.startedAt = Date.now();
    warmUpPrefixMaps();
    BgpSpeaker.warmUpIntake();
    await this.listen();
    for (const s of this.sessions.values()) s.start();
    this.deferralTimer = setTimeout(() => this.markSyncDone('deferral timer expired'), this.deferralTime * 1000);
    this.deferralTimer.unref();
    liveSpeakers.add(this);
    this.checkSync();
  }

  /**
   * Runs the intake path of a table load (decode, Adj-RIB-In, Loc-RIB, change log, best-route
   * changes to a listener) once per process over a synthetic table of 16,000 /24s from one peer,
   * in a throw-away speaker with a fake established peer (no socket, nothing logged, nothing
   * exported), so V8 has that path optimized before the first real table arrives. It replaces a
   * warm-up of the decoder alone; bgp/README.md ("Where a table load's time goes") says what the
   * real load must not do for the optimized code to survive its first route, and what it saved.
   * The real speaker's state is not touched; the scratch one is garbage afterwards.
   */
  private static warmUpIntake(): void {
    if (intakeWarm) return;
    intakeWarm = true;
    const sp = new BgpSpeaker({ routerId: '192.0.2.1', asNumber: 64512, listenPort: 0, gracefulRestart: { restartTime: 0 }, log: logger('bgp-warmup').child({}, { level: 'silent' }) });
    const cfg: PeerConfig = { address: '192.0.2.2', asNumber: 64513, type: 'global' };
    const session = new Session(cfg, sp, 1000);
    const conn = new Conn(session, true);
    conn.ctx.fourOctetAs = true;
    conn.ctx.external = true;
    conn.families = [{ afi: Afi.IPV4, safi: Safi.UNICAST }];
    session.established = conn;
    const ps = new PeerState(cfg.address, session, sp.localAs);
    sp.peerStates.set(session, ps);
    sp.rib.addPeer(ps);
    // Two listeners, two functions: the call site then expects any function, not the warm-up's.
    sp.bestListeners.add(() => undefined).add((c) => c.length);
    for (let m = 0; m < WARM_MESSAGES; m++) {
      // A path per message, as a real feed has many: a path's first use is warmed up too.
      const attrs: PathAttributes = { origin: Origin.IGP, asPath: [{ type: AsPathSegmentType.AS_SEQUENCE, asns: [64513, 64600 + m] }], nextHop: '192.0.2.2' };
      const prefixes: Prefix[] = [];
      for (let i = 0; i < WARM_PER_MESSAGE; i++) prefixes.push(prefix4((0x0a000000 + Math.imul(m * WARM_PER_MESSAGE + i, 0x9e3779b1 >>> 8) * 256) >>> 0, 24));
      for (const raw of packUpdates(attrs, prefixes, conn.ctx)) {
        sp.process(ps, { type: MessageType.UPDATE, body: raw.subarray(19), raw });
        if (sp.rib.changed.length >= EMIT_BATCH) sp.emitChanges();
      }
    }
    sp.emitChanges();
  }

  private async listen(): Promise<void> {
    const server = net.createServer((sock) => this.onIncoming(sock));
    server.on('error', (e) => this.log.error({ err: e.message }, 'BGP listener error'));
    const tryListen = (host: string) =>
      new Promise<void>((resolve, reject) => {
        const onErr = (e: Error) => reject(e);
        server.once('error', onErr);
        server.listen({ port: this.listenPort, host, ipv6Only: false }, () => {
          server.removeListener('error', onErr);
          resolve();
        });
      });
    const host = this.listenAddress ?? '::';
    try {
      await tryListen(host);
    } catch (e) {
      if (this.listenAddress) throw e;
      await tryListen('0.0.0.0');
    }
    this.server = server;
    this.applyListenerKeys();
    this.log.info({ port: this.boundPort() }, 'BGP listening');
  }

  /** The bound listen port (useful with listenPort 0). */
  boundPort(): number {
    const a = this.server?.address();
    return a && typeof a === 'object' ? a.port : this.listenPort;
  }

  private listenerFd(): number | undefined {
    const fd = (this.server as any)?._handle?.fd;
    return typeof fd === 'number' && fd >= 0 ? fd : undefined;
  }

  /** Installs / removes TCP-MD5 keys on the listening socket for every peer. */
  private applyListenerKeys(removed: PeerConfig[] = []): void {
    const fd = this.listenerFd();
    if (fd === undefined) return;
    for (const r of removed) if (r.password && native) native.setMd5(fd, r.address, '');
    for (const s of this.sessions.values()) {
      if (!s.cfg.password) continue;
      if (!native) continue;
      const e = native.setMd5(fd, s.cfg.address, s.cfg.password);
      if (e) this.log.error({ peer: s.cfg.address, errno: e }, 'setting the TCP-MD5 key on the listener failed');
    }
  }

  /**
   * Stops the speaker. graceful: an agent restart — sockets are closed without a Cease so
   * graceful-restart helpers keep our routes (RFC 4724); otherwise peers get Cease/Admin shutdown.
   */
  async stop(opts: { graceful: boolean } = { graceful: false }): Promise<void> {
    if (!this.started) return;
    this.started = false;
    if (this.deferralTimer) clearTimeout(this.deferralTimer);
    liveSpeakers.delete(this);
    for (const [sock, t] of this.pending) {
      clearTimeout(t);
      sock.destroy();
    }
    this.pending.clear();
    for (const s of this.sessions.values()) {
      if (opts.graceful) {
        for (const c of [...s.conns]) c.close(undefined, 'graceful stop', true);
        s.conns.clear();
        s.established = null;
        s.stop(undefined, 'stopped (graceful restart)');
      } else {
        s.stop(cease(CeaseSubcode.ADMINISTRATIVE_SHUTDOWN, 'petrel agent stopping'), 'stopped');
      }
      const ps = this.peerStates.get(s);
      if (ps?.restartTimer) clearTimeout(ps.restartTimer);
    }
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }

  // ----------------------------------------------------------------------------------------
  // Configuration

  /** Applies a configuration live: only sessions whose OPEN-relevant fields changed are reset. */
  configure(cfg: SpeakerConfig): void {
    this.configured = true;
    if (parseIp4(cfg.routerId) === undefined) {
      this.log.error({ routerId: cfg.routerId }, 'invalid router ID (needs an IPv4 address): configuration ignored');
      return;
    }
    if (cfg.listenPort !== this.listenPort) {
      this.listenPort = cfg.listenPort;
      if (this.started && this.server) {
        const old = this.server;
        this.server = null;
        old.close();
        this.listen().catch((e) => this.log.error({ err: (e as Error).message, port: cfg.listenPort }, 'BGP listener could not move to the new port'));
      }
    }
    const idChanged = cfg.routerId !== this.routerId || cfg.asNumber !== this.localAs;
    if (idChanged) {
      this.log.info({ asNumber: cfg.asNumber, routerId: cfg.routerId }, 'local AS or router ID changed: resetting every session');
      this.localAs = cfg.asNumber;
      this.routerId = cfg.routerId;
      this.routerIdNum = parseIp4(cfg.routerId) ?? 0;
      for (const s of this.sessions.values()) {
        const ps = this.peerStates.get(s)!;
        ps.ebgp = s.cfg.asNumber !== this.localAs;
        if (this.started) {
          s.stop(cease(CeaseSubcode.OTHER_CONFIGURATION_CHANGE), 'local AS/router ID changed');
          s.start();
        }
      }
    }
    const withinKey = JSON.stringify(cfg.exportLearnedWithin ?? null);
    const withinChanged = withinKey !== this.exportLearnedWithinKey;
    this.exportLearnedWithinKey = withinKey;
    this.exportLearnedWithin = cfg.exportLearnedWithin
      ? cfg.exportLearnedWithin.map(parseCidr).filter((c): c is Cidr4 | Cidr6 => !!c)
      : null;
    const want = new Map<string, PeerConfig>();
    for (const p of cfg.peers) {
      const key = normAddr(p.address);
      if (!key) {
        this.log.warn({ peer: p.address }, 'ignoring peer with an invalid address');
        continue;
      }
      want.set(key, { ...p, address: key });
    }
    const removed: PeerConfig[] = [];
    for (const [addr, s] of this.sessions) {
      if (want.has(addr)) continue;
      this.log.info({ peer: addr }, 'BGP peer removed');
      s.stop(cease(CeaseSubcode.PEER_DECONFIGURED), 'peer de-configured');
      const ps = this.peerStates.get(s)!;
      this.flushPeer(ps, true);
      if (ps.restartTimer) clearTimeout(ps.restartTimer);
      this.rib.removePeer(ps);
      this.peerStates.delete(s);
      this.sessions.delete(addr);
      mState.remove({ peer: addr });
      mRecv.remove({ peer: addr });
      mAdv.remove({ peer: addr });
      removed.push(s.cfg);
    }
    let exportPolicyChanged = withinChanged;
    for (const [addr, pc] of want) {
      const s = this.sessions.get(addr);
      if (!s) {
        const ns = new Session(pc, this, this.connectRetryMs);
        const ps = new PeerState(addr, ns, this.localAs);
        this.sessions.set(addr, ns);
        this.peerStates.set(ns, ps);
        this.rib.addPeer(ps);
        this.log.info({ peer: addr, asNumber: pc.asNumber, type: pc.type }, 'BGP peer added');
        if (this.started) ns.start();
        continue;
      }
      const old = s.cfg;
      const reset = RESET_FIELDS.some((f) => old[f] !== pc[f]);
      s.cfg = pc;
      const ps = this.peerStates.get(s)!;
      if (old.routeReflectorClient !== pc.routeReflectorClient || old.keepOriginalNextHop !== pc.keepOriginalNextHop || old.clusterId !== pc.clusterId) {
        exportPolicyChanged = true;
      }
      ps.rrClient = !!pc.routeReflectorClient;
      if (reset) {
        this.log.info({ peer: addr }, 'BGP peer session parameters changed: resetting the session');
        ps.asNumber = pc.asNumber;
        ps.ebgp = pc.asNumber !== this.localAs;
        if (this.started) {
          s.stop(cease(CeaseSubcode.OTHER_CONFIGURATION_CHANGE), 'configuration changed');
          s.start();
        }
      } else if (old.passive !== pc.passive && this.started && !s.established) {
        s.stop(undefined, 'passive mode changed');
        s.start();
      }
    }
    if (this.server) this.applyListenerKeys(removed);
    if (exportPolicyChanged) {
      for (const ps of this.peerStates.values()) {
        ps.outCache = new WeakMap();
        if (ps.session.established) for (const p of this.rib.best.keys()) ps.dirty.add(p);
        for (const p of ps.adjOut.keys()) ps.dirty.add(p);
      }
      this.scheduleExport();
    }
    // Held incoming connections from peers we did not know yet (kube-router#272).
    for (const [sock, t] of this.pending) {
      const s = this.sessions.get(normAddr(sock.remoteAddress ?? '') ?? '');
      if (s) {
        clearTimeout(t);
        this.pending.delete(sock);
        sock.removeAllListeners('error');
        sock.removeAllListeners('close');
        s.accept(sock);
      }
    }
    this.checkSync();
  }

  private onIncoming(sock: net.Socket): void {
    const addr = normAddr(sock.remoteAddress ?? '');
    const s = addr ? this.sessions.get(addr) : undefined;
    if (s) {
      s.accept(sock);
      return;
    }
    // Not (yet) a configured peer: hold the connection a while instead of resetting it; a
    // node we have not learned about yet gets its session as soon as configure() names it.
    this.log.info({ peer: addr }, 'connection from an unknown peer held for 30s');
    sock.on('error', () => undefined);
    sock.on('close', () => {
      const t = this.pending.get(sock);
      if (t) clearTimeout(t);
      this.pending.delete(sock);
    });
    const t = setTimeout(() => {
      this.pending.delete(sock);
      sock.destroy();
    }, 30_000);
    t.unref();
    this.pending.set(sock, t);
  }

  /** The prefixes this node originates (next hop self). The first call unlocks advertising. */
  setExports(prefixes: ExportPrefix[]): void {
    const want = new Map<Prefix, Path>();
    for (const e of prefixes) {
      const p = parsePrefix(e.prefix);
      if (p === undefined) {
        this.log.warn({ prefix: e.prefix }, 'ignoring export with an invalid prefix');
        continue;
      }
      want.set(p, this.localPath(typeof p === 'number' ? 4 : 6, e.communities));
    }
    const touched: Prefix[] = [];
    for (const [p, path] of this.rib.local) {
      if (want.get(p) !== path) touched.push(p);
    }
    for (const [p, path] of want) if (this.rib.local.get(p) !== path) touched.push(p);
    this.rib.changing(touched, () => {
      this.rib.local.clear();
      for (const [p, path] of want) this.rib.local.set(p, path);
    });
    const first = !this.exportsReady;
    this.exportsReady = true;
    if (first) {
      for (const ps of this.peerStates.values()) if (ps.session.established) this.startDump(ps);
    }
    this.emitChanges();
    this.scheduleExport();
  }

  private localPath(family: 4 | 6, communities?: (string | number)[]): Path {
    const comms = (communities ?? [])
      .map((c) => (typeof c === 'number' ? c >>> 0 : parseCommunity(c)))
      .filter((c): c is number => c !== undefined);
    const key = `${family}|${comms.join(',')}`;
    let p = this.localPaths.get(key);
    if (!p) {
      const attrs: PathAttributes = { origin: Origin.IGP, asPath: [] };
      if (comms.length) attrs.communities = comms;
      p = new Path(null, attrs);
      this.localPaths.set(key, p);
    }
    return p;
  }

  // ----------------------------------------------------------------------------------------
  // Events and queries

  /**
   * Loc-RIB best-path changes, in batches (a function registered twice is called once). Returns
   * an unsubscribe function.
   */
  onBestRoutes(cb: (changes: RouteChange[]) => void): () => void {
    this.bestListeners.add(cb);
    return () => {
      this.bestListeners.delete(cb);
    };
  }

  /** Called once, when the initial sync is done (End-of-RIB from every peer, or the deferral timer). */
  onInitialSync(cb: () => void): void {
    if (this.syncDone) queueMicrotask(cb);
    else this.syncListeners.push(cb);
  }

  initialSyncDone(): boolean {
    return this.syncDone;
  }

  /** The whole Loc-RIB as RouteChanges (for a consumer that starts late). */
  bestRoutes(): RouteChange[] {
    const out: RouteChange[] = [];
    for (const [p, path] of this.rib.best) out.push(this.change(p, path));
    return out;
  }

  /** Readiness: every configured peer Established or within its grace period. */
  ready(now = Date.now()): { ready: boolean; reason?: string } {
    const bad: string[] = [];
    for (const s of this.sessions.values()) {
      if (s.state === 'Established') continue;
      const ps = this.peerStates.get(s)!;
      const since = Math.max(ps.notUpSince, this.startedAt);
      if (now - since < this.readyGraceMs) continue;
      bad.push(`${s.address} ${s.state}${s.info ? ` (${s.info})` : ''}`);
    }
    if (!this.started) return { ready: false, reason: 'BGP speaker not started' };
    return bad.length ? { ready: false, reason: `BGP peers not established: ${bad.join(', ')}` } : { ready: true };
  }

  status(): BgpStatus {
    const peers: BgpPeerStatus[] = [];
    for (const s of this.sessions.values()) {
      const ps = this.peerStates.get(s)!;
      const conn = s.established;
      const caps: string[] = [];
      if (s.peerCaps && conn) {
        for (const f of conn.families) caps.push(f.afi === Afi.IPV6 ? 'ipv6-unicast' : 'ipv4-unicast');
        if (s.peerCaps.fourOctetAs !== undefined) caps.push('4-octet-as');
        if (s.peerCaps.routeRefresh) caps.push('route-refresh');
        if (s.peerCaps.gracefulRestart) caps.push('graceful-restart');
      }
      peers.push({
        address: s.address,
        asNumber: s.cfg.asNumber,
        type: s.cfg.type,
        state: s.state,
        since: s.since.toISOString(),
        info: s.state === 'Established' ? 'Established' : s.info || s.state,
        prefixesReceived: ps.adjIn.size + (ps.stale ? ps.stale.size : 0),
        prefixesAdvertised: ps.adjOut.size,
        ...(conn ? { holdTime: conn.holdMs / 1000, keepaliveTime: conn.keepaliveMs / 1000, capabilities: caps } : {}),
      });
    }
    peers.sort((a, b) => (a.address < b.address ? -1 : 1));
    return { asNumber: this.localAs, routerId: this.routerId, peers };
  }

  /** Number of best routes in the Loc-RIB. */
  locRibSize(): number {
    return this.rib.best.size;
  }

  /** Refreshes the per-peer gauges (called at scrape time). */
  updateMetrics(): void {
    for (const s of this.sessions.values()) {
      const ps = this.peerStates.get(s)!;
      mState.set({ peer: s.address }, STATE_NUM[s.state]);
      mRecv.set({ peer: s.address }, ps.adjIn.size + (ps.stale ? ps.stale.size : 0));
      mAdv.set({ peer: s.address }, ps.adjOut.size);
    }
  }

  // ----------------------------------------------------------------------------------------
  // SessionHost

  capabilities(_peer: PeerConfig, family: 4 | 6): Capability[] {
    const afi = family === 6 ? Afi.IPV6 : Afi.IPV4;
    // R bit while we are re-acquiring our routes after a (re)start (RFC 4724 §4.1).
    const restarting = !this.syncDone;
    return [
      { code: CapabilityCode.MULTIPROTOCOL, afi, safi: Safi.UNICAST },
      { code: CapabilityCode.ROUTE_REFRESH },
      { code: CapabilityCode.FOUR_OCTET_AS, asn: this.localAs },
      {
        code: CapabilityCode.GRACEFUL_RESTART,
        restarting,
        notification: false,
        restartTime: this.restartTime,
        families: [{ afi, safi: Safi.UNICAST, forwardingState: true }],
      },
    ];
  }

  stateChanged(s: Session): void {
    mState.set({ peer: s.address }, STATE_NUM[s.state]);
    this.log.info({ peer: s.address, state: s.state, info: s.info || undefined }, 'BGP session state');
  }

  established(s: Session): void {
    const ps = this.peerStates.get(s);
    if (!ps) return;
    const conn = s.established!;
    ps.bgpId = conn.open!.bgpId;
    ps.asNumber = s.cfg.asNumber;
    ps.ebgp = s.cfg.asNumber !== this.localAs;
    ps.outCache = new WeakMap();
    ps.paths = new Map();
    ps.adjOut.clear();
    ps.dirty.clear();
    ps.queue = [];
    ps.qHead = 0;
    ps.waitDrain = false;
    ps.eorFamilies.clear();
    const gr = conn.caps?.gracefulRestart;
    ps.peerRestarting = !!gr?.restarting;
    if (ps.stale) {
      if (ps.restartTimer) clearTimeout(ps.restartTimer);
      ps.restartTimer = null;
      const kept = gr && conn.families.every((f) => gr.families.some((g) => g.afi === f.afi && g.safi === f.safi && g.forwardingState));
      if (!kept) {
        this.flushStale(ps, 'peer did not preserve forwarding state');
      } else {
        // Wait for its End-of-RIB (RFC 4724 stale timer).
        const ms = Math.max(this.restartTime, 120) * 1000;
        ps.restartTimer = setTimeout(() => this.flushStale(ps, 'no End-of-RIB in time'), ms);
        ps.restartTimer.unref();
      }
    }
    ps.needEor = true;
    if (this.exportsReady) this.startDump(ps);
    this.log.info({ peer: s.address, holdTime: conn.holdMs / 1000, families: conn.families }, 'BGP session established');
  }

  down(s: Session, graceful: boolean, reason: string): void {
    const ps = this.peerStates.get(s);
    if (!ps) return;
    mFlaps.inc({ peer: s.address });
    ps.notUpSince = Date.now();
    ps.queue = [];
    ps.qHead = 0;
    this.busy.delete(ps);
    ps.adjOut.clear();
    ps.dirty.clear();
    ps.waitDrain = false;
    ps.needEor = false;
    const gr = s.peerCaps?.gracefulRestart;
    let restartTime = gr ? gr.restartTime : 0;
    if (s.cfg.maxRestartTime !== undefined) restartTime = Math.min(restartTime, s.cfg.maxRestartTime);
    if (graceful && restartTime > 0) {
      // Helper: keep the routes, stale, for the peer's restart time (RFC 4724 §4.2). Routes
      // already stale from an earlier restart stay stale (felix#1592: consecutive restarts).
      const stale = ps.stale ?? new PrefixMap<Path>();
      for (const [p, path] of ps.adjIn) stale.set(p, path);
      ps.stale = stale;
      ps.adjIn = new PrefixMap();
      if (ps.restartTimer) clearTimeout(ps.restartTimer);
      ps.restartTimer = setTimeout(() => this.flushStale(ps, 'restart time expired'), restartTime * 1000);
      ps.restartTimer.unref();
      this.log.info({ peer: s.address, reason, routes: stale.size, restartTime }, 'BGP peer down: keeping its routes stale');
      // Best paths did not change, but consumers may want to know they are stale: not signalled.
    } else {
      this.log.info({ peer: s.address, reason }, 'BGP peer down: withdrawing its routes');
      this.flushPeer(ps, false);
    }
    this.emitChanges();
    this.scheduleExport();
  }

  received(s: Session, msg: RawMessage): void {
    const ps = this.peerStates.get(s);
    if (!ps) return;
    ps.queue.push(msg);
    if (ps.queued >= QUEUE_HIGH) s.established?.pause();
    this.busy.add(ps);
    this.schedulePump();
  }

  // ----------------------------------------------------------------------------------------
  // Input processing (in slices)

  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => this.pump());
  }

  private pump(): void {
    this.pumpScheduled = false;
    const deadline = performance.now() + SLICE_MS;
    let n = 0;
    while (this.busy.size) {
      for (const ps of this.busy) {
        // Round-robin between peers, a few messages each, checking the clock per message.
        for (let i = 0; i < 8 && ps.qHead < ps.queue.length; i++) {
          const m = ps.queue[ps.qHead]!;
          (ps.queue as any)[ps.qHead++] = undefined;
          try {
            this.process(ps, m);
          } catch (e) {
            const conn = ps.session.established;
            if (conn) ps.session.internalError(conn, e);
          }
          n++;
          if (this.rib.changed.length >= EMIT_BATCH) this.emitChanges();
          if ((n & 3) === 0 && performance.now() >= deadline) break;
        }
        if (ps.updatesIn !== 0) {
          mUpdIn.inc({ peer: ps.address }, ps.updatesIn);
          ps.updatesIn = 0;
        }
        if (ps.qHead >= ps.queue.length) {
          ps.queue = [];
          ps.qHead = 0;
          this.busy.delete(ps);
        } else if (ps.qHead > 4096) {
          ps.queue = ps.queue.slice(ps.qHead);
          ps.qHead = 0;
        }
        if (ps.queued <= QUEUE_LOW) ps.session.established?.resume();
      }
      if (performance.now() >= deadline) break;
    }
    this.processedSinceTrim += n;
    this.emitChanges();
    this.scheduleExport();
    if (this.busy.size) this.schedulePump();
    else this.scheduleTrim();
  }

  /**
   * After a large table load or dump (over 1,000 prefixes processed since the last trim): shrink
   * the prefix tables that grew fast for it to their fitting size, and hand the freed TCP buffers
   * back to the OS (glibc keeps freed malloc memory in its arenas).
   */
  private scheduleTrim(): void {
    if (this.trimTimer || this.processedSinceTrim <= 1000) return;
    this.trimTimer = setTimeout(() => {
      this.trimTimer = null;
      if (this.busy.size) return;
      this.processedSinceTrim = 0;
      this.rib.best.compact();
      this.rib.local.compact();
      for (const ps of this.peerStates.values()) {
        ps.adjIn.compact();
        ps.stale?.compact();
        ps.adjOut.compact();
        ps.dirty.compact();
      }
      native?.trimMemory?.();
    }, 2000);
    this.trimTimer.unref();
  }

  private process(ps: PeerState, m: RawMessage): void {
    const conn = ps.session.established;
    if (!conn) return;
    if (m.type === MessageType.ROUTE_REFRESH) {
      const rr = decodeRouteRefresh(m.body, m.raw);
      if (rr instanceof BgpNotification) {
        conn.close(rr, `bad ROUTE-REFRESH: ${rr.toString()}`);
        return;
      }
      if (rr.subtype !== 0) return;
      ps.adjOut.clear();
      ps.outCache = new WeakMap();
      this.startDump(ps, false);
      return;
    }
    const u = decodeUpdate(m.body, conn.ctx);
    if (u instanceof BgpNotification) {
      this.log.warn({ peer: ps.address, error: u.toString() }, 'malformed UPDATE: closing the session');
      conn.close(u, `malformed UPDATE: ${u.toString()}`);
      return;
    }
    ps.updatesIn++;
    if (u.problems.length) {
      this.log.warn({ peer: ps.address, problems: u.problems.map((p) => p.reason) }, 'UPDATE problems (RFC 7606)');
    }
    if (u.endOfRib) {
      this.onEndOfRib(ps, u.endOfRib.afi);
      return;
    }
    const rib = this.rib;
    forEachWithdrawn(u, (p) => rib.withdraw(ps, p));
    const attrs = u.attrs;
    if (u.treatAsWithdraw || !attrs || this.rejected(ps, attrs)) {
      forEachNlri(u, (p) => rib.withdraw(ps, p));
      return;
    }
    const path = internPath(ps, attrs);
    // The per-prefix loop of a table load: plain loops over the codec's arrays (what
    // forEachNlri visits), the family checked once per list.
    if (u.nlri.length !== 0 && this.familyOk(ps, Afi.IPV4)) this.announce(ps, u.nlri, path);
    const mp = u.mpReach;
    if (mp && !mp.unsupported && mp.nlri.length !== 0 && this.familyOk(ps, mp.afi)) this.announce(ps, mp.nlri, path);
  }

  private announce(ps: PeerState, list: readonly Prefix[], path: Path): void {
    const rib = this.rib;
    for (let i = 0; i < list.length; i++) rib.announce(ps, list[i]!, path);
  }

  private familyOk(ps: PeerState, afi: number): boolean {
    const fams = ps.session.established?.families;
    if (!fams) return false;
    for (let i = 0; i < fams.length; i++) if (fams[i]!.afi === afi) return true;
    return false;
  }

  /** Loop prevention: our AS in an eBGP path, our router ID / cluster ID in reflected routes. */
  private rejected(ps: PeerState, a: PathAttributes): boolean {
    if (ps.ebgp) {
      for (const seg of a.asPath ?? []) if (seg.asns.includes(this.localAs)) return true;
    } else {
      if (a.originatorId !== undefined && a.originatorId === this.routerIdNum) return true;
      if (a.clusterList && a.clusterList.includes(this.clusterIdNum())) return true;
    }
    return false;
  }

  private clusterIdNum(): number {
    for (const s of this.sessions.values()) {
      if (s.cfg.routeReflectorClient && s.cfg.clusterId) {
        const n = parseIp4(s.cfg.clusterId) ?? (Number(s.cfg.clusterId) >>> 0);
        if (n) return n;
      }
    }
    return this.routerIdNum;
  }

  private onEndOfRib(ps: PeerState, afi: number): void {
    ps.eorFamilies.add(afi);
    const fams = ps.session.established?.families ?? [];
    if (fams.every((f) => ps.eorFamilies.has(f.afi))) {
      if (ps.stale) this.flushStale(ps, 'End-of-RIB received');
      if (!ps.eorReceived) {
        ps.eorReceived = true;
        this.checkSync();
      }
    }
  }

  private flushStale(ps: PeerState, why: string): void {
    if (ps.restartTimer) clearTimeout(ps.restartTimer);
    ps.restartTimer = null;
    const stale = ps.stale;
    if (!stale) return;
    const keys = [...stale.keys()];
    this.log.info({ peer: ps.address, routes: keys.length, why }, 'flushing stale routes');
    this.rib.changing(keys, () => {
      ps.stale = null;
    });
    this.emitChanges();
    this.scheduleExport();
  }

  /** Drops every route of a peer. */
  private flushPeer(ps: PeerState, alsoOut: boolean): void {
    const adj = ps.adjIn;
    const stale = ps.stale;
    const keys = [...adj.keys()];
    if (stale) for (const p of stale.keys()) if (!adj.has(p)) keys.push(p);
    ps.paths = new Map();
    if (ps.restartTimer) clearTimeout(ps.restartTimer);
    ps.restartTimer = null;
    this.rib.changing(keys, () => {
      ps.adjIn = new PrefixMap();
      ps.stale = null;
    });
    if (alsoOut) ps.adjOut.clear();
    this.emitChanges();
    this.scheduleExport();
  }

  private checkSync(): void {
    if (this.syncDone || !this.started || !this.configured) return;
    for (const ps of this.peerStates.values()) if (!ps.eorReceived) return;
    this.markSyncDone('End-of-RIB from every peer');
  }

  private markSyncDone(why: string): void {
    if (this.syncDone) return;
    this.syncDone = true;
    if (this.deferralTimer) clearTimeout(this.deferralTimer);
    this.log.info({ why }, 'BGP initial sync done');
    for (const cb of this.syncListeners.splice(0)) {
      try {
        cb();
      } catch (e) {
        this.log.error({ err: (e as Error).message }, 'initial-sync listener failed');
      }
    }
    // End-of-RIB markers we held back.
    this.scheduleExport();
  }

  private change(p: Prefix, best: Path | undefined): RouteChange {
    const prefix = formatPrefix(p);
    if (!best) return { prefix, withdrawn: true };
    const src = best.src as PeerState | null;
    const stale = !!src && src.stale !== null && src.stale.get(p) === best && src.adjIn.get(p) !== best;
    const a = best.attrs;
    const c: RouteChange = { prefix, withdrawn: false, nextHop: best.nextHop, peer: src?.address, asPath: best.asPathFlat() };
    if (stale) c.stale = true;
    if (a.med !== undefined) c.med = a.med;
    if (a.localPref !== undefined) c.localPref = a.localPref;
    if (a.communities) c.communities = best.communityTexts();
    return c;
  }

  private emitChanges(): void {
    const log = this.rib.changed;
    if (log.length === 0) return;
    // Changes made while this batch is handed out (a listener may cause some) go to another log;
    // this one, drained, becomes the spare.
    this.rib.changed = this.spareLog ?? new ChangeLog();
    this.spareLog = null;
    const want = this.bestListeners.size > 0;
    const changes: RouteChange[] = want ? [] : (undefined as any);
    const established: PeerState[] = [];
    for (const ps of this.peerStates.values()) if (ps.session.established) established.push(ps);
    const best = this.rib.best;
    const { prefixes, olds, length } = log.firsts();
    // While no prefix repeats, the log knows each current best (no table lookup per prefix).
    const news = log.mayRepeat ? undefined : log.news;
    for (let j = 0; j < length; j++) {
      const p = prefixes[j]!;
      const old = olds[j];
      const b = news !== undefined ? news[j] : best.get(p);
      if (want) {
        // Learned best routes only: our own prefixes are the routes component's business, so a
        // prefix whose best became local (or vanished) is a withdrawal of the learned route.
        if (b !== undefined && b.src !== null) changes.push(this.change(p, b));
        else if (old !== undefined && old.src !== null) changes.push(this.change(p, undefined));
      }
      for (let i = 0; i < established.length; i++) {
        const ps = established[i]!;
        if (b !== undefined && b.src === ps && !ps.adjOut.has(p)) continue;
        ps.dirty.add(p);
      }
    }
    log.clear();
    this.spareLog = log;
    if (want && changes.length) {
      for (const cb of this.bestListeners) {
        try {
          cb(changes);
        } catch (e) {
          this.log.error({ err: (e as Error).message }, 'best-route listener failed');
        }
      }
    }
  }

  // ----------------------------------------------------------------------------------------
  // Output (Adj-RIB-Out)

  private startDump(ps: PeerState, eor = true): void {
    for (const p of this.rib.best.keys()) ps.dirty.add(p);
    if (eor) ps.needEor = true;
    this.scheduleExport();
  }

  private scheduleExport(): void {
    if (this.exportScheduled) return;
    this.exportScheduled = true;
    setImmediate(() => this.exportPump());
  }

  private exportPump(): void {
    this.exportScheduled = false;
    if (!this.exportsReady) return;
    const deadline = performance.now() + SLICE_MS;
    let more = false;
    for (const ps of this.peerStates.values()) {
      const conn = ps.session.established;
      if (!conn || ps.waitDrain) continue;
      try {
        while (ps.dirty.size && performance.now() < deadline && !ps.waitDrain) this.exportSome(ps, 2000);
      } catch (e) {
        ps.dirty.clear();
        ps.session.internalError(conn, e);
        continue;
      }
      if (ps.dirty.size) {
        if (!ps.waitDrain) more = true;
        continue;
      }
      if (ps.needEor && (this.syncDone || ps.peerRestarting)) {
        ps.needEor = false;
        for (const f of conn.families) this.write(ps, encodeEndOfRib(f.afi, f.safi), false);
      }
    }
    if (more) this.scheduleExport();
    else this.scheduleTrim();
  }

  private write(ps: PeerState, buf: Buffer, update = true): void {
    const conn = ps.session.established;
    if (!conn) return;
    if (update) mUpdOut.inc({ peer: ps.address });
    if (!conn.send(buf) && !ps.waitDrain) {
      ps.waitDrain = true;
      conn.socket?.once('drain', () => {
        ps.waitDrain = false;
        this.scheduleExport();
      });
    }
  }

  private exportSome(ps: PeerState, max: number): void {
    const conn = ps.session.established!;
    const groups = new Map<PathAttributes, Prefix[]>();
    const wd4: Prefix[] = [];
    const wd6: Prefix[] = [];
    let n = 0;
    for (const p of ps.dirty) {
      ps.dirty.delete(p);
      const best = this.rib.best.get(p);
      const afi = typeof p === 'number' ? Afi.IPV4 : Afi.IPV6;
      let out: PathAttributes | null = null;
      if (best && conn.families.some((f) => f.afi === afi) && (best.src === null || this.learnedExportable(p))) {
        out = this.exportAttrs(ps, best, afi);
      }
      const cur = ps.adjOut.get(p);
      if (out) {
        if (out !== cur) {
          ps.adjOut.set(p, out);
          let g = groups.get(out);
          if (!g) groups.set(out, (g = []));
          g.push(p);
        }
      } else if (cur) {
        ps.adjOut.delete(p);
        (afi === Afi.IPV4 ? wd4 : wd6).push(p);
      }
      if (++n >= max) break;
    }
    this.processedSinceTrim += n;
    if (wd4.length) for (const b of packWithdrawals(wd4, Afi.IPV4, { maxSize: conn.ctx.maxMessageSize })) this.write(ps, b);
    if (wd6.length) for (const b of packWithdrawals(wd6, Afi.IPV6, { maxSize: conn.ctx.maxMessageSize })) this.write(ps, b);
    for (const [attrs, list] of groups) for (const b of packUpdates(attrs, list, conn.ctx)) this.write(ps, b);
  }

  private learnedExportable(p: Prefix): boolean {
    const w = this.exportLearnedWithin;
    if (!w) return true;
    for (const c of w) if (within(p, c)) return true;
    return false;
  }

  private exportAttrs(ps: PeerState, best: Path, afi: number): PathAttributes | null {
    let c = ps.outCache.get(best);
    if (c === undefined) {
      c = this.computeExport(ps, best, afi);
      ps.outCache.set(best, c);
    }
    return c;
  }

  /** Export policy for one path toward one peer (null: not advertised). */
  private computeExport(ps: PeerState, best: Path, afi: number): PathAttributes | null {
    const src = best.src as PeerState | null;
    const a = best.attrs;
    const toEbgp = ps.ebgp;
    if (src === ps) return null;
    const comms = a.communities;
    if (comms) {
      if (comms.includes(COMMUNITY_NO_ADVERTISE)) return null;
      if (toEbgp && (comms.includes(COMMUNITY_NO_EXPORT) || comms.includes(COMMUNITY_NO_EXPORT_SUBCONFED))) return null;
    }
    let reflect = false;
    if (src && !src.ebgp && !toEbgp) {
      // iBGP to iBGP only by reflection (RFC 4456 §6): client routes to everyone, non-client
      // routes to clients only.
      if (!src.rrClient && !ps.rrClient) return null;
      reflect = true;
    }
    const conn = ps.session.established;
    const self = ps.session.cfg.sourceAddress ?? conn?.localAddress ?? '';
    let asPath: AsPathSegment[] = a.asPath ?? [];
    if (toEbgp) {
      asPath = prependAs(asPath, this.localAs);
      for (const seg of asPath) if (seg.asns.includes(ps.asNumber)) return null;
    }
    let nextHop: string;
    const learnedNh = best.nextHop;
    if (!src) nextHop = self;
    else if (ps.session.cfg.keepOriginalNextHop && learnedNh) nextHop = learnedNh;
    else if (toEbgp) nextHop = self;
    else nextHop = learnedNh ?? self;
    if (!nextHop) return null;
    const out: PathAttributes = { origin: a.origin ?? Origin.IGP, asPath };
    if (afi === Afi.IPV4 && !nextHop.includes(':')) out.nextHop = nextHop;
    else out.mpNextHop = nextHop;
    if (afi === Afi.IPV4 && nextHop.includes(':')) return null;
    if (afi === Afi.IPV6 && !nextHop.includes(':')) return null;
    if (!toEbgp) {
      out.localPref = src && !src.ebgp ? (a.localPref ?? 100) : 100;
      if (a.med !== undefined) out.med = a.med;
    }
    if (a.atomicAggregate) out.atomicAggregate = true;
    if (a.aggregator) out.aggregator = a.aggregator;
    if (comms) out.communities = comms;
    if (a.largeCommunities) out.largeCommunities = a.largeCommunities;
    if (a.unknown) out.unknown = a.unknown;
    if (reflect) {
      out.originatorId = a.originatorId ?? src!.bgpId;
      out.clusterList = [this.clusterIdNum(), ...(a.clusterList ?? [])];
    }
    return out;
  }
}

function prependAs(path: AsPathSegment[], asn: number): AsPathSegment[] {
  const first = path[0];
  if (first && first.type === AsPathSegmentType.AS_SEQUENCE && first.asns.length < 255) {
    return [{ type: AsPathSegmentType.AS_SEQUENCE, asns: [asn, ...first.asns] }, ...path.slice(1)];
  }
  return [{ type: AsPathSegmentType.AS_SEQUENCE, asns: [asn] }, ...path];
}

function parseCommunity(c: string): number | undefined {
  const wk: Record<string, number> = {
    'no-export': COMMUNITY_NO_EXPORT,
    'no-advertise': COMMUNITY_NO_ADVERTISE,
    'no-export-subconfed': COMMUNITY_NO_EXPORT_SUBCONFED,
  };
  if (wk[c.toLowerCase()] !== undefined) return wk[c.toLowerCase()];
  const m = /^(\d+):(\d+)$/.exec(c.trim());
  if (!m) return undefined;
  const hi = Number(m[1]);
  const lo = Number(m[2]);
  if (hi > 0xffff || lo > 0xffff) return undefined;
  return ((hi << 16) | lo) >>> 0;
}

/** Canonical peer address text (IPv4-mapped IPv6 folded to IPv4), or undefined. */
export function normAddr(a: string): string | undefined {
  const s = a.replace(/^::ffff:/i, '');
  if (net.isIPv4(s)) return s;
  if (net.isIPv6(s)) {
    const p = parsePrefix(`${s}/128`);
    return typeof p === 'string' ? p.slice(0, -4) : s.toLowerCase();
  }
  return undefined;
}
