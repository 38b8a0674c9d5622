// One BGP session per configured peer: the RFC 4271 §8 FSM over up to two TCP connections
// (outgoing and incoming, resolved by §6.8 collision detection), its timers (ConnectRetry,
// Hold negotiated to the lower of both, Keepalive = Hold/3, Hold 0 honoured, a send-hold timer
// for sockets that stop draining) and capability negotiation. Routes are the speaker's business:
// the session hands it framed UPDATEs and tells it when the session comes up or goes down.
import net from 'node:net';
import type { Logger } from '../agent/log.js';
import {
  BgpNotification,
  CapabilityCode,
  CeaseSubcode,
  ErrorCode,
  MessageReader,
  MessageType,
  cease,
  decodeNotification,
  decodeOpen,
  encodeKeepalive,
  encodeNotification,
  encodeOpen,
  fsmError,
  holdTimerExpired,
  notificationName,
  parseIp4,
  summarizeCapabilities,
  validateOpen,
  type AfiSafi,
  type Capability,
  type CapabilitySummary,
  type CodecContext,
  type OpenMessage,
  type RawMessage,
} from './codec/index.js';
import { native } from './native.js';
import type { PeerConfig, SessionState } from './types.js';

export const DEFAULT_HOLD_TIME = 90;
const OPEN_HOLD_MS = 240_000; // RFC 4271 §8: large hold timer while waiting for OPEN
const MIN_SEND_HOLD_MS = 480_000; // RFC 9687: max(8 min, 2 x hold)

/** What a session needs from the speaker. */
export interface SessionHost {
  readonly log: Logger;
  localAs: number;
  routerIdNum: number;
  /** Capabilities we send to this peer. */
  capabilities(peer: PeerConfig, family: 4 | 6): Capability[];
  established(s: Session): void;
  /** The established session ended. graceful: no NOTIFICATION either way, peer GR-capable. */
  down(s: Session, graceful: boolean, reason: string): void;
  /** A framed UPDATE / ROUTE-REFRESH on the established connection (queued; processed in slices). */
  received(s: Session, msg: RawMessage): void;
  stateChanged(s: Session): void;
}

type ConnState = 'Connect' | 'OpenSent' | 'OpenConfirm' | 'Established';

let connIds = 0;

/** One TCP connection of a session and its position in the FSM. */
export class Conn {
  readonly id = ++connIds;
  state: ConnState;
  socket: net.Socket | null = null;
  reader = new MessageReader();
  open: OpenMessage | null = null;
  caps: CapabilitySummary | null = null;
  holdMs = OPEN_HOLD_MS;
  keepaliveMs = 0;
  private holdTimer: NodeJS.Timeout | null = null;
  private keepaliveTimer: NodeJS.Timeout | null = null;
  private sendHoldTimer: NodeJS.Timeout | null = null;
  closed = false;
  /** A NOTIFICATION was sent or received on this connection. */
  notified = false;
  readonly ctx: CodecContext = { fourOctetAs: false, attrCache: new Map() };
  localAddress = '';
  families: AfiSafi[] = [];
  /** Pause count for input flow control. */
  paused = false;

  constructor(
    readonly session: Session,
    readonly outbound: boolean,
  ) {
    this.state = outbound ? 'Connect' : 'OpenSent';
  }

  attach(sock: net.Socket): void {
    this.socket = sock;
    sock.setNoDelay(true);
    this.localAddress = (sock.localAddress ?? '').replace(/^::ffff:/, '');
    sock.on('data', (d: Buffer) => this.onData(d));
    sock.on('error', (e) => this.close(undefined, `socket error: ${e.message}`));
    sock.on('close', () => this.close(undefined, 'connection closed by peer'));
    sock.on('drain', () => this.armSendHold());
    const fd = (sock as any)._handle?.fd;
    if (native && typeof fd === 'number' && fd >= 0) {
      // Dead peers behind a silent network: let the kernel give up on unacknowledged data
      // (metallb#777) well before any send queue could hide it.
      native.setUserTimeout(fd, Math.max(this.session.holdTimeCfg * 1000, 30_000));
    }
  }

  send(buf: Buffer): boolean {
    if (this.closed || !this.socket) return false;
    const ok = this.socket.write(buf);
    if (!ok) this.armSendHold();
    return ok;
  }

  get writableLength(): number {
    return this.socket?.writableLength ?? 0;
  }

  private armSendHold(): void {
    if (this.closed) return;
    if (this.sendHoldTimer) clearTimeout(this.sendHoldTimer);
    this.sendHoldTimer = null;
    if (this.socket && this.socket.writableLength > 0) {
      const ms = Math.max(MIN_SEND_HOLD_MS, 2 * this.holdMs);
      this.sendHoldTimer = setTimeout(() => this.close(new BgpNotification(8, 0, undefined, 'send hold timer expired'), 'send hold timer expired'), ms);
      this.sendHoldTimer.unref();
    }
  }

  resetHold(): void {
    if (this.holdTimer) this.holdTimer.refresh();
  }

  startHold(ms: number): void {
    if (this.holdTimer) clearTimeout(this.holdTimer);
    this.holdTimer = null;
    this.holdMs = ms;
    if (ms > 0) {
      this.holdTimer = setTimeout(() => this.close(holdTimerExpired(), `hold timer expired (${ms / 1000}s)`), ms);
    }
  }

  startKeepalive(ms: number): void {
    if (this.keepaliveTimer) clearInterval(this.keepaliveTimer);
    this.keepaliveTimer = null;
    this.keepaliveMs = ms;
    if (ms > 0) this.keepaliveTimer = setInterval(() => this.send(encodeKeepalive()), ms);
  }

  private onData(d: Buffer): void {
    if (this.closed) return;
    try {
      this.reader.push(d);
      for (;;) {
        if (this.closed) return;
        const m = this.reader.next();
        if (m === null) return;
        if (m instanceof BgpNotification) {
          this.close(m, `framing error: ${m.toString()}`);
          return;
        }
        this.resetHold();
        this.session.onMessage(this, m);
      }
    } catch (e) {
      // A bug must cost this one session, never the process or another session.
      this.session.internalError(this, e);
    }
  }

  pause(): void {
    if (!this.paused && this.socket) {
      this.paused = true;
      this.socket.pause();
    }
  }

  resume(): void {
    if (this.paused && this.socket) {
      this.paused = false;
      this.socket.resume();
    }
  }

  /**
   * Ends the connection. With `n`, a NOTIFICATION is sent first (never on a graceful stop).
   * `silent`: close without NOTIFICATION and without telling the session (it already knows).
   */
  close(n: BgpNotification | undefined, reason: string, silent = false): void {
    if (this.closed) return;
    this.closed = true;
    if (this.holdTimer) clearTimeout(this.holdTimer);
    if (this.keepaliveTimer) clearInterval(this.keepaliveTimer);
    if (this.sendHoldTimer) clearTimeout(this.sendHoldTimer);
    const sock = this.socket;
    if (sock) {
      if (n && this.state !== 'Connect') {
        this.notified = true;
        try {
          sock.end(encodeNotification(n));
        } catch {
          /* socket already broken */
        }
        // Give the NOTIFICATION a moment to leave, then make sure the socket is gone.
        setTimeout(() => sock.destroy(), 500).unref();
      } else {
        sock.destroy();
      }
    }
    if (!silent) this.session.onConnClosed(this, n, reason);
  }
}

/** The FSM of one configured peer. */
export class Session {
  state: SessionState = 'Idle';
  since = new Date();
  info = '';
  conns = new Set<Conn>();
  established: Conn | null = null;
  /** Last OPEN of the established connection. */
  peerOpen: OpenMessage | null = null;
  peerCaps: CapabilitySummary | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private connecting: { cancel(): void } | null = null;
  private running = false;
  flaps = 0;
  readonly family: 4 | 6;

  constructor(
    public cfg: PeerConfig,
    private readonly host: SessionHost,
    private readonly connectRetryMs: number,
  ) {
    this.family = cfg.address.includes(':') ? 6 : 4;
  }

  get address(): string {
    return this.cfg.address;
  }

  get holdTimeCfg(): number {
    return this.cfg.holdTime ?? DEFAULT_HOLD_TIME;
  }

  private setState(s: SessionState, info?: string): void {
    if (info !== undefined) this.info = info;
    if (s === this.state) return;
    this.state = s;
    this.since = new Date();
    this.host.stateChanged(this);
  }

  /** Recomputes the reported state from the connections. */
  private refreshState(): void {
    if (!this.running) return this.setState('Idle');
    if (this.established) return this.setState('Established');
    let best: SessionState | null = null;
    for (const c of this.conns) {
      if (c.state === 'OpenConfirm') best = 'OpenConfirm';
      else if (c.state === 'OpenSent' && best !== 'OpenConfirm') best = 'OpenSent';
    }
    if (best) return this.setState(best);
    this.setState(this.connecting ? 'Connect' : 'Active');
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.info = '';
    this.refreshState();
    // A small random delay spreads the first connects of a large mesh.
    this.scheduleConnect(this.cfg.passive ? null : 200 + Math.random() * 300);
  }

  /** Stops the session. notification: Cease to send (none on a graceful stop). */
  stop(n?: BgpNotification, reason = 'stopped'): void {
    if (!this.running) return;
    this.running = false;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.connecting?.cancel();
    this.connecting = null;
    for (const c of [...this.conns]) c.close(n, reason);
    this.setState('Idle', reason);
  }

  private scheduleConnect(delayMs: number | null): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (!this.running || this.cfg.passive || delayMs === null) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.connect();
    }, delayMs);
  }

  private connect(): void {
    if (!this.running || this.connecting || this.established) return;
    // Only one outbound connection at a time.
    for (const c of this.conns) if (c.outbound) return;
    const conn = new Conn(this, true);
    this.conns.add(conn);
    const port = this.cfg.port ?? 179;
    const fail = (why: string) => {
      this.connecting = null;
      this.conns.delete(conn);
      conn.closed = true;
      this.info = why;
      this.refreshState();
      this.scheduleConnect(this.connectRetryMs * (0.75 + Math.random() * 0.5));
    };
    const ok = (sock: net.Socket) => {
      this.connecting = null;
      if (!this.running) {
        sock.destroy();
        this.conns.delete(conn);
        return;
      }
      conn.attach(sock);
      this.sendOpen(conn);
      this.refreshState();
    };
    const timeout = setTimeout(() => {
      this.connecting?.cancel();
      fail('connect timeout');
    }, Math.max(this.connectRetryMs, 3000));
    const needNative = !!this.cfg.password || !!this.cfg.ttlSecurity;
    if (needNative) {
      if (!native) {
        clearTimeout(timeout);
        this.conns.delete(conn);
        this.info = 'TCP-MD5/TTL security needs the native addon (bgp/native), which is not built';
        this.setState('Active');
        this.scheduleConnect(this.connectRetryMs * 4);
        return;
      }
      const fd = native.connect(this.cfg.address, port, this.cfg.sourceAddress ?? '', this.cfg.password ?? '', this.cfg.ttlSecurity ?? 0);
      if (fd < 0) {
        clearTimeout(timeout);
        fail(`connect: errno ${-fd}`);
        return;
      }
      let poll: NodeJS.Timeout | null = null;
      let cancelled = false;
      const check = () => {
        if (cancelled) return;
        const st = native!.connectStatus(fd);
        if (st === 0) {
          poll = setTimeout(check, 20);
          return;
        }
        clearTimeout(timeout);
        if (st < 0) {
          native!.close(fd);
          fail(`connect: errno ${-st}`);
          return;
        }
        const sock = new net.Socket({ fd, readable: true, writable: true });
        ok(sock);
      };
      this.connecting = {
        cancel: () => {
          cancelled = true;
          if (poll) clearTimeout(poll);
          native!.close(fd);
        },
      };
      check();
    } else {
      const sock = net.connect({ host: this.cfg.address, port, localAddress: this.cfg.sourceAddress });
      const onErr = (e: Error) => {
        clearTimeout(timeout);
        sock.destroy();
        fail(`connect: ${(e as any).code ?? e.message}`);
      };
      sock.once('error', onErr);
      sock.once('connect', () => {
        clearTimeout(timeout);
        sock.removeListener('error', onErr);
        ok(sock);
      });
      this.connecting = { cancel: () => sock.destroy() };
    }
    this.refreshState();
  }

  /** An incoming TCP connection from this peer's address. */
  accept(sock: net.Socket): void {
    if (!this.running) {
      sock.destroy();
      return;
    }
    if (this.cfg.ttlSecurity && native) {
      const fd = (sock as any)._handle?.fd;
      if (typeof fd === 'number') native.setTtlSecurity(fd, this.cfg.ttlSecurity, this.family === 4);
    }
    const conn = new Conn(this, false);
    this.conns.add(conn);
    conn.attach(sock);
    this.sendOpen(conn);
    this.refreshState();
  }

  private sendOpen(conn: Conn): void {
    conn.state = 'OpenSent';
    let open: Buffer;
    try {
      open = encodeOpen({
        asn: this.host.localAs,
        holdTime: this.holdTimeCfg,
        bgpId: this.host.routerIdNum,
        capabilities: this.host.capabilities(this.cfg, this.family),
      });
    } catch (e) {
      this.internalError(conn, e);
      return;
    }
    conn.send(open);
    conn.startHold(OPEN_HOLD_MS);
  }

  /** An unexpected exception while handling this session: log it, reset only this connection. */
  internalError(conn: Conn, e: unknown): void {
    this.host.log.error({ peer: this.address, err: (e as Error)?.stack ?? String(e) }, 'internal error in BGP session; resetting it');
    conn.close(cease(CeaseSubcode.OUT_OF_RESOURCES), `internal error: ${(e as Error)?.message ?? e}`);
  }

  onMessage(conn: Conn, m: RawMessage): void {
    switch (m.type) {
      case MessageType.OPEN:
        return this.onOpen(conn, m);
      case MessageType.KEEPALIVE:
        if (conn.state === 'OpenConfirm') return this.onEstablished(conn);
        if (conn.state === 'OpenSent') return conn.close(fsmError('OpenSent', m.type), 'KEEPALIVE before OPEN');
        return;
      case MessageType.NOTIFICATION: {
        const n = decodeNotification(m.body);
        conn.notified = true;
        const why =
          n instanceof BgpNotification
            ? 'malformed NOTIFICATION received'
            : `received NOTIFICATION ${notificationName(n.code, n.subcode)}`;
        conn.close(undefined, why);
        return;
      }
      case MessageType.UPDATE:
      case MessageType.ROUTE_REFRESH:
        if (conn.state !== 'Established') {
          const st = conn.state === 'OpenSent' || conn.state === 'OpenConfirm' ? conn.state : 'other';
          return conn.close(fsmError(st, m.type), `unexpected message type ${m.type} in ${conn.state}`);
        }
        this.host.received(this, m);
        return;
      default:
        return conn.close(new BgpNotification(ErrorCode.MESSAGE_HEADER, 3, Buffer.from([m.type])), `bad message type ${m.type}`);
    }
  }

  private onOpen(conn: Conn, m: RawMessage): void {
    if (conn.state !== 'OpenSent') {
      const st = conn.state === 'OpenConfirm' || conn.state === 'Established' ? conn.state : 'other';
      return conn.close(fsmError(st, MessageType.OPEN), `OPEN in ${conn.state}`);
    }
    const open = decodeOpen(m.body);
    if (open instanceof BgpNotification) return conn.close(open, `bad OPEN: ${open.toString()}`);
    const bad = validateOpen(open, { peerAs: this.cfg.asNumber, localBgpId: this.host.routerIdNum });
    if (bad) return conn.close(bad, `OPEN refused: ${bad.reason || bad.toString()}`);
    conn.open = open;
    conn.caps = summarizeCapabilities(open.capabilities);
    conn.ctx.fourOctetAs = conn.caps.fourOctetAs !== undefined;
    conn.ctx.external = this.cfg.asNumber !== this.host.localAs;
    const ours = this.host.capabilities(this.cfg, this.family);
    const ourFams = ours.filter((c) => c.code === CapabilityCode.MULTIPROTOCOL) as unknown as AfiSafi[];
    const theirFams = conn.caps.families.length ? conn.caps.families : [{ afi: 1, safi: 1 }];
    conn.families = ourFams.filter((a) => theirFams.some((b) => a.afi === b.afi && a.safi === b.safi)).map((a) => ({ afi: a.afi, safi: a.safi }));

    // Collision detection (RFC 4271 §6.8).
    if (this.established && this.established !== conn) {
      if (conn.caps.gracefulRestart) {
        // RFC 4724 §4.2: the peer restarted while we still saw the old session up: the old
        // connection is dead; keep its routes stale and go on with the new one.
        const old = this.established;
        old.close(undefined, 'peer restarted (new OPEN with graceful restart)', true);
        this.conns.delete(old);
        this.established = null;
        this.host.down(this, true, 'peer restarted');
      } else {
        return conn.close(cease(CeaseSubcode.CONNECTION_COLLISION_RESOLUTION), 'collision with established session');
      }
    }
    for (const other of [...this.conns]) {
      if (other === conn || other.closed) continue;
      if (other.state === 'OpenConfirm' || (other.state === 'OpenSent' && other.open)) {
        // Keep the connection initiated by the speaker with the higher BGP identifier.
        const localWins = (this.host.routerIdNum >>> 0) > (open.bgpId >>> 0);
        const loser = localWins ? (conn.outbound ? other : conn) : conn.outbound ? conn : other;
        loser.close(cease(CeaseSubcode.CONNECTION_COLLISION_RESOLUTION), 'connection collision resolved', true);
        this.conns.delete(loser);
        if (loser === conn) {
          this.refreshState();
          return;
        }
      } else if (other.state === 'OpenSent' && !other.outbound === !conn.outbound) {
        // (cannot happen: one connection per direction)
      }
    }
    const hold = Math.min(this.holdTimeCfg, open.holdTime);
    conn.send(encodeKeepalive());
    conn.state = 'OpenConfirm';
    conn.startHold(hold * 1000);
    if (hold > 0) {
      const ka = this.cfg.keepaliveTime ? Math.min(this.cfg.keepaliveTime, hold / 3) : hold / 3;
      conn.startKeepalive(Math.max(ka, 1) * 1000);
    }
    this.refreshState();
  }

  private onEstablished(conn: Conn): void {
    conn.state = 'Established';
    for (const other of [...this.conns]) {
      if (other !== conn) {
        other.close(cease(CeaseSubcode.CONNECTION_COLLISION_RESOLUTION), 'connection collision resolved', true);
        this.conns.delete(other);
      }
    }
    this.connecting?.cancel();
    this.connecting = null;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.established = conn;
    this.peerOpen = conn.open;
    this.peerCaps = conn.caps;
    this.info = '';
    this.refreshState();
    this.host.established(this);
  }

  onConnClosed(conn: Conn, n: BgpNotification | undefined, reason: string): void {
    this.conns.delete(conn);
    const wasEstablished = this.established === conn;
    if (wasEstablished) {
      this.established = null;
      this.flaps++;
      const graceful = !conn.notified && !!conn.caps?.gracefulRestart && this.running;
      this.host.down(this, graceful, reason);
    }
    this.info = n ? `${reason}` : reason;
    if (n) this.host.log.info({ peer: this.address, reason }, 'BGP connection closed with NOTIFICATION');
    else this.host.log.info({ peer: this.address, reason }, 'BGP connection closed');
    this.refreshState();
    if (this.running && this.conns.size === 0 && !this.connecting) {
      // BIRD's "error wait time": do not hammer a peer that just refused us.
      this.scheduleConnect(wasEstablished ? 1000 + Math.random() * 1000 : this.connectRetryMs * (0.75 + Math.random() * 0.5));
    }
  }

  /** Sends on the established connection. False if the socket buffer is full (wait for drain). */
  send(buf: Buffer): boolean {
    return this.established ? this.established.send(buf) : false;
  }

  /** Resets the established connection (configuration changed). */
  reset(reason: string): void {
    for (const c of [...this.conns]) c.close(cease(CeaseSubcode.OTHER_CONFIGURATION_CHANGE), reason);
  }
}

export function routerIdToNum(id: string): number {
  return parseIp4(id) ?? 0;
}

export { ErrorCode };
