// Public types of the BGP speaker (bgp/index.ts re-exports them). The speaker is configured
// from the datastore by agent/calc/bgp.ts; the agent applies SpeakerConfig live.

/** Peer kinds as `calicoctl node status` / CONTRACT §2 name them. */
export type PeerType = 'node-mesh' | 'global' | 'node-specific' | 'rr-client';

/** RFC 4271 §8.2.2 state names. */
export type SessionState = 'Idle' | 'Connect' | 'Active' | 'OpenSent' | 'OpenConfirm' | 'Established';

export interface PeerConfig {
  /** Peer IP address (IPv4 or IPv6 text). Identifies the peer. */
  address: string;
  /** Peer TCP port (default 179). */
  port?: number;
  asNumber: number;
  type: PeerType;
  /** Local address to connect from (and the next hop we advertise on this session). */
  sourceAddress?: string;
  /** TCP-MD5 (RFC 2385) key. Never logged. */
  password?: string;
  /** Do not rewrite the next hop of routes learned from other peers (ours are always self). */
  keepOriginalNextHop?: boolean;
  /** Cap (seconds) on how long this peer's routes are kept stale while it restarts. */
  maxRestartTime?: number;
  /** Seconds; default holdTime/3. */
  keepaliveTime?: number;
  /** Seconds; default 90. 0 disables keepalives and the hold timer (if the peer agrees). */
  holdTime?: number;
  /** GTSM (RFC 5082): maximum hop count; the peer must also send with TTL 255. */
  ttlSecurity?: number;
  /** Never dial; wait for the peer to connect. */
  passive?: boolean;
  /** We are a route reflector and this peer is our client (RFC 4456). */
  routeReflectorClient?: boolean;
  /** Our cluster ID toward this peer (IPv4 text or number); required to reflect. */
  clusterId?: string;
}

export interface SpeakerConfig {
  asNumber: number;
  routerId: string;
  listenPort: number;
  peers: PeerConfig[];
  /**
   * Learned routes are re-advertised (eBGP transit, route reflection) only when inside one of
   * these CIDRs (Calico exports only what lies in enabled IP pools). Undefined: no restriction.
   */
  exportLearnedWithin?: string[];
}

/** A prefix this node originates (next hop self). */
export interface ExportPrefix {
  /** CIDR text, e.g. "10.65.3.0/26" or "fd00:10::/122". */
  prefix: string;
  /** RFC 1997 communities as "AS:value" text or numbers. */
  communities?: (string | number)[];
}

/** One Loc-RIB best-path change. */
export interface RouteChange {
  /** CIDR text. */
  prefix: string;
  /** true: no best route any more (remove it). */
  withdrawn: boolean;
  /** Next hop (IP text) of the new best route; undefined when withdrawn. */
  nextHop?: string;
  /** Address of the peer the best route came from. */
  peer?: string;
  asPath?: number[];
  /** The best route is held stale (peer restarting, RFC 4724). */
  stale?: boolean;
  /** MULTI_EXIT_DISC, LOCAL_PREF and RFC 1997 communities ("AS:value") when present. */
  med?: number;
  localPref?: number;
  communities?: string[];
}

export interface BgpPeerStatus {
  address: string;
  asNumber: number;
  type: PeerType;
  state: SessionState;
  /** ISO time of the last state change. */
  since: string;
  /** Free text: state, or the last error (calicoctl's INFO column). */
  info: string;
  prefixesReceived: number;
  prefixesAdvertised: number;
  holdTime?: number;
  keepaliveTime?: number;
  capabilities?: string[];
}

export interface BgpStatus {
  asNumber: number;
  routerId: string;
  peers: BgpPeerStatus[];
}

export interface GracefulRestartOptions {
  /** Seconds we ask peers to keep our routes while we restart (default 120). */
  restartTime: number;
  /**
   * Seconds to wait for End-of-RIB from every peer before declaring the initial sync done
   * (RFC 4724 selection deferral). Default: restartTime.
   */
  deferralTime?: number;
}

export interface BgpSpeakerOptions {
  routerId: string;
  asNumber: number;
  listenPort: number;
  /** Default: all addresses (dual stack). */
  listenAddress?: string;
  gracefulRestart: GracefulRestartOptions;
  log?: import('../agent/log.js').Logger;
  /** ms between connection attempts (default 5000, Calico's `connect retry time 5`). */
  connectRetryMs?: number;
}
