// BGP wire codec: value types shared by the decoder, the encoders and their callers.
// No sockets, no state. See bgp/codec/README.md for the representation choices.
//
// Representations (chosen for RIB memory and decode speed):
//  - IPv4 prefix (`Prefix4`): a plain number `addr * 64 + len`, addr = network address as an
//    unsigned 32-bit integer with host bits cleared, len 0..32. Fits exactly in a double; arrays
//    of them are unboxed. Helpers: prefix4(), prefix4Addr(), prefix4Len(), formatPrefix4(),
//    parsePrefix4().
//  - IPv6 prefix (`Prefix6`): canonical RFC 5952 text with host bits cleared, e.g. "fd00:1::/64".
//  - `Prefix` = Prefix4 | Prefix6: a number is always IPv4, a string always IPv6.
//  - BGP identifiers, ORIGINATOR_ID, CLUSTER_LIST entries, AGGREGATOR address: unsigned 32-bit
//    numbers (compare numerically, format with formatIp4()).
//  - Next hops: text ("192.0.2.1", "fd00::1").
//  - Communities: unsigned 32-bit numbers (high 16 bits = AS). Large communities: a flat number
//    array of triples [global, local1, local2, global, ...].

/** BGP message type codes (RFC 4271 §4.1, RFC 2918). */
export enum MessageType {
  OPEN = 1,
  UPDATE = 2,
  NOTIFICATION = 3,
  KEEPALIVE = 4,
  ROUTE_REFRESH = 5,
}

export const BGP_VERSION = 4;
export const HEADER_LENGTH = 19;
export const MAX_MESSAGE_LENGTH = 4096;
/** RFC 8654 extended message size (only if the session negotiated it). */
export const EXTENDED_MAX_MESSAGE_LENGTH = 65535;
/** RFC 6793 AS_TRANS. */
export const AS_TRANS = 23456;

export enum Afi {
  IPV4 = 1,
  IPV6 = 2,
}
export enum Safi {
  UNICAST = 1,
}

export type Prefix4 = number;
export type Prefix6 = string;
export type Prefix = Prefix4 | Prefix6;

// ---------------------------------------------------------------------------------------------
// Errors

/** NOTIFICATION error codes (RFC 4271 §4.5, RFC 6608, RFC 7313). */
export enum ErrorCode {
  MESSAGE_HEADER = 1,
  OPEN_MESSAGE = 2,
  UPDATE_MESSAGE = 3,
  HOLD_TIMER_EXPIRED = 4,
  FSM = 5,
  CEASE = 6,
  ROUTE_REFRESH_MESSAGE = 7,
}

export enum HeaderSubcode {
  CONNECTION_NOT_SYNCHRONIZED = 1,
  BAD_MESSAGE_LENGTH = 2,
  BAD_MESSAGE_TYPE = 3,
}

export enum OpenSubcode {
  UNSPECIFIC = 0,
  UNSUPPORTED_VERSION = 1,
  BAD_PEER_AS = 2,
  BAD_BGP_IDENTIFIER = 3,
  UNSUPPORTED_OPTIONAL_PARAMETER = 4,
  UNACCEPTABLE_HOLD_TIME = 6,
  UNSUPPORTED_CAPABILITY = 7,
}

export enum UpdateSubcode {
  UNSPECIFIC = 0,
  MALFORMED_ATTRIBUTE_LIST = 1,
  UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE = 2,
  MISSING_WELL_KNOWN_ATTRIBUTE = 3,
  ATTRIBUTE_FLAGS_ERROR = 4,
  ATTRIBUTE_LENGTH_ERROR = 5,
  INVALID_ORIGIN = 6,
  INVALID_NEXT_HOP = 8,
  OPTIONAL_ATTRIBUTE_ERROR = 9,
  INVALID_NETWORK_FIELD = 10,
  MALFORMED_AS_PATH = 11,
}

/** RFC 6608 FSM error subcodes. */
export enum FsmSubcode {
  UNSPECIFIC = 0,
  UNEXPECTED_IN_OPENSENT = 1,
  UNEXPECTED_IN_OPENCONFIRM = 2,
  UNEXPECTED_IN_ESTABLISHED = 3,
}

/** RFC 4486 / RFC 8538 Cease subcodes. */
export enum CeaseSubcode {
  UNSPECIFIC = 0,
  MAX_PREFIXES = 1,
  ADMINISTRATIVE_SHUTDOWN = 2,
  PEER_DECONFIGURED = 3,
  ADMINISTRATIVE_RESET = 4,
  CONNECTION_REJECTED = 5,
  OTHER_CONFIGURATION_CHANGE = 6,
  CONNECTION_COLLISION_RESOLUTION = 7,
  OUT_OF_RESOURCES = 8,
  HARD_RESET = 9,
  BFD_DOWN = 10,
}

/** RFC 7313 ROUTE-REFRESH error subcodes. */
export enum RouteRefreshSubcode {
  INVALID_MESSAGE_LENGTH = 1,
}

/**
 * A NOTIFICATION to send (decode failure) or that was received. A value, not an Error: decoders
 * return it instead of throwing. `reason` is a human-readable explanation for logs (never sent).
 */
export class BgpNotification {
  constructor(
    readonly code: number,
    readonly subcode: number,
    readonly data: Buffer = EMPTY,
    readonly reason: string = '',
  ) {}
  toString(): string {
    return `${this.code}/${this.subcode}${this.reason ? ` (${this.reason})` : ''}`;
  }
}
const EMPTY = Buffer.alloc(0);

export function isBgpNotification(x: unknown): x is BgpNotification {
  return x instanceof BgpNotification;
}

// ---------------------------------------------------------------------------------------------
// Session context

/** Per-session facts the codec needs. Pass the same object for the life of a session. */
export interface CodecContext {
  /** Both sides advertised the 4-octet AS capability (RFC 6793): AS numbers are 4 octets wide. */
  fourOctetAs: boolean;
  /** The peer is external (eBGP): LOCAL_PREF is discarded, confederation segments in AS_PATH are
   *  malformed (RFC 7606 §7.2, §7.5). Default false. */
  external?: boolean;
  /** Maximum message size (default 4096; 65535 only if RFC 8654 was negotiated). */
  maxMessageSize?: number;
  /** Optional interning table for decoded attribute sets, keyed by `PathAttributes.key`.
   *  When given, decodeUpdate returns the cached object for an identical attribute block and
   *  stores newly decoded clean ones (only error-free sets are stored). A Map works. */
  attrCache?: AttrCache;
}

export interface AttrCache {
  get(key: string): DecodedAttributes | undefined;
  set(key: string, attrs: DecodedAttributes): unknown;
}

// ---------------------------------------------------------------------------------------------
// Capabilities (RFC 5492)

export enum CapabilityCode {
  MULTIPROTOCOL = 1,
  ROUTE_REFRESH = 2,
  EXTENDED_MESSAGE = 6,
  GRACEFUL_RESTART = 64,
  FOUR_OCTET_AS = 65,
  ADD_PATH = 69,
  ENHANCED_ROUTE_REFRESH = 70,
  ROUTE_REFRESH_OLD = 128,
}

export interface AfiSafi {
  afi: number;
  safi: number;
}

export interface MultiprotocolCapability extends AfiSafi {
  code: CapabilityCode.MULTIPROTOCOL;
}
export interface RouteRefreshCapability {
  /** 2 (RFC 2918) or 128 (pre-standard Cisco code). */
  code: CapabilityCode.ROUTE_REFRESH | CapabilityCode.ROUTE_REFRESH_OLD;
}
export interface EnhancedRouteRefreshCapability {
  code: CapabilityCode.ENHANCED_ROUTE_REFRESH;
}
export interface FourOctetAsCapability {
  code: CapabilityCode.FOUR_OCTET_AS;
  asn: number;
}
export interface GracefulRestartFamily extends AfiSafi {
  /** F bit: forwarding state preserved for this family. */
  forwardingState: boolean;
}
export interface GracefulRestartCapability {
  code: CapabilityCode.GRACEFUL_RESTART;
  /** R bit: the sender has restarted. */
  restarting: boolean;
  /** N bit (RFC 8538, notification support); informational. */
  notification: boolean;
  /** Restart time in seconds (12 bits). */
  restartTime: number;
  families: GracefulRestartFamily[];
}
/** Any other capability: kept raw and otherwise ignored. */
export interface UnknownCapability {
  code: number;
  value: Buffer;
  unknown: true;
}
export type Capability =
  | MultiprotocolCapability
  | RouteRefreshCapability
  | EnhancedRouteRefreshCapability
  | FourOctetAsCapability
  | GracefulRestartCapability
  | UnknownCapability;

/** What a capability list says, digested (see summarizeCapabilities). */
export interface CapabilitySummary {
  /** AFI/SAFIs from MP capabilities; [] if none were advertised (then IPv4 unicast is implied). */
  families: AfiSafi[];
  routeRefresh: boolean;
  enhancedRouteRefresh: boolean;
  /** The 4-octet AS from capability 65, if present. */
  fourOctetAs?: number;
  gracefulRestart?: GracefulRestartCapability;
  extendedMessage: boolean;
}

// ---------------------------------------------------------------------------------------------
// Messages

export interface OpenMessage {
  type: MessageType.OPEN;
  version: number;
  /** The 2-octet "My Autonomous System" field as sent (AS_TRANS for 4-octet ASNs). */
  myAs: number;
  /** The peer's real ASN: the 4-octet capability's value if present, else myAs. */
  asn: number;
  holdTime: number;
  /** BGP identifier as unsigned 32-bit number. */
  bgpId: number;
  capabilities: Capability[];
}

export enum Origin {
  IGP = 0,
  EGP = 1,
  INCOMPLETE = 2,
}

export enum AsPathSegmentType {
  AS_SET = 1,
  AS_SEQUENCE = 2,
  AS_CONFED_SEQUENCE = 3,
  AS_CONFED_SET = 4,
}

export interface AsPathSegment {
  type: AsPathSegmentType;
  asns: number[];
}

export interface Aggregator {
  asn: number;
  /** IPv4 address as unsigned 32-bit number. */
  address: number;
}

/** Attribute type codes. */
export enum AttrType {
  ORIGIN = 1,
  AS_PATH = 2,
  NEXT_HOP = 3,
  MULTI_EXIT_DISC = 4,
  LOCAL_PREF = 5,
  ATOMIC_AGGREGATE = 6,
  AGGREGATOR = 7,
  COMMUNITIES = 8,
  ORIGINATOR_ID = 9,
  CLUSTER_LIST = 10,
  MP_REACH_NLRI = 14,
  MP_UNREACH_NLRI = 15,
  EXTENDED_COMMUNITIES = 16,
  AS4_PATH = 17,
  AS4_AGGREGATOR = 18,
  LARGE_COMMUNITIES = 32,
}

export enum AttrFlag {
  OPTIONAL = 0x80,
  TRANSITIVE = 0x40,
  PARTIAL = 0x20,
  EXTENDED_LENGTH = 0x10,
}

/** RFC 1997 well-known communities. */
export const COMMUNITY_NO_EXPORT = 0xffffff01;
export const COMMUNITY_NO_ADVERTISE = 0xffffff02;
export const COMMUNITY_NO_EXPORT_SUBCONFED = 0xffffff03;
/** RFC 3765. */
export const COMMUNITY_NO_PEER = 0xffffff04;

/** An attribute the codec does not interpret, kept with its flags (value is a private copy). */
export interface RawAttribute {
  /** Optional / Transitive / Partial bits as received (Extended Length is an encoding detail and
   *  is recomputed on encode). */
  flags: number;
  type: number;
  value: Buffer;
}

/**
 * A path attribute set. Build one to encode; decodeUpdate returns DecodedAttributes (adds `key`).
 * AS numbers are always full 4-octet values here: the codec maps to/from AS_TRANS + AS4_PATH for
 * 2-octet sessions. AS4_PATH/AS4_AGGREGATOR never appear here (merged on decode, generated on
 * encode).
 */
export interface PathAttributes {
  origin?: Origin;
  /** [] = empty AS_PATH (iBGP-originated). undefined = attribute absent. */
  asPath?: AsPathSegment[];
  /** NEXT_HOP attribute (IPv4 text). */
  nextHop?: string;
  med?: number;
  localPref?: number;
  atomicAggregate?: boolean;
  aggregator?: Aggregator;
  communities?: number[];
  /** Flat triples. */
  largeCommunities?: number[];
  originatorId?: number;
  clusterList?: number[];
  /** Next hop of MP_REACH_NLRI (IPv6 text for AFI 2; IPv4 or IPv6 text for AFI 1). */
  mpNextHop?: string;
  /** Optional IPv6 link-local next hop (MP_REACH next-hop length 32). */
  mpNextHopLinkLocal?: string;
  /** Unrecognised optional transitive attributes (and EXTENDED_COMMUNITIES), passed on. On
   *  encode the Partial bit is set on the unrecognised ones (RFC 4271 §5). */
  unknown?: RawAttribute[];
}

export interface DecodedAttributes extends PathAttributes {
  /**
   * Interning key: equal keys ⇔ identical attribute sets from the same kind of session
   * (latin1 string of the raw attribute bytes, MP_REACH replaced by its next hop, MP_UNREACH
   * left out, prefixed by a context tag). Use it to share one attribute object between routes.
   */
  readonly key: string;
}

/** The outcome class an attribute problem leads to (RFC 7606 §2). */
export enum ErrorAction {
  /** Attribute dropped, routes otherwise fine. */
  ATTRIBUTE_DISCARD = 1,
  /** All NLRI of the UPDATE (NLRI field and MP_REACH) are handled as withdrawn. */
  TREAT_AS_WITHDRAW = 2,
}

/** A non-fatal problem in an UPDATE (for logs / counters). */
export interface UpdateProblem {
  action: ErrorAction;
  /** Attribute type concerned, 0 if not attribute-specific. */
  attrType: number;
  reason: string;
}

export interface MpReach {
  afi: number;
  safi: number;
  nextHop: string;
  nextHopLinkLocal?: string;
  /** Prefix4 numbers for AFI 1, Prefix6 strings for AFI 2; [] for families we do not parse. */
  nlri: Prefix[];
  /** true when the AFI/SAFI is not IPv4/IPv6 unicast (NLRI not parsed, ignore it). */
  unsupported?: boolean;
}

export interface MpUnreach {
  afi: number;
  safi: number;
  withdrawn: Prefix[];
  unsupported?: boolean;
}

export interface UpdateMessage {
  type: MessageType.UPDATE;
  /** IPv4 withdrawn routes field. */
  withdrawn: Prefix4[];
  /** Path attributes; null when the UPDATE carries none (pure withdrawal / End-of-RIB) or
   *  when treat-as-withdraw made them meaningless. Shared between all NLRI of the UPDATE. */
  attrs: DecodedAttributes | null;
  /** IPv4 NLRI field. */
  nlri: Prefix4[];
  mpReach?: MpReach;
  mpUnreach?: MpUnreach;
  /** RFC 7606 treat-as-withdraw: handle every prefix of `nlri` and `mpReach.nlri` as withdrawn. */
  treatAsWithdraw: boolean;
  /** Non-fatal problems found (discarded attributes, reason for treat-as-withdraw). */
  problems: UpdateProblem[];
  /** Set when this UPDATE is an End-of-RIB marker (RFC 4724 §2). */
  endOfRib?: AfiSafi;
}

export interface NotificationMessage {
  type: MessageType.NOTIFICATION;
  code: number;
  subcode: number;
  data: Buffer;
}

export interface KeepaliveMessage {
  type: MessageType.KEEPALIVE;
}

export enum RouteRefreshSubtype {
  NORMAL = 0,
  BEGIN = 1,
  END = 2,
}

export interface RouteRefreshMessage {
  type: MessageType.ROUTE_REFRESH;
  afi: number;
  /** RFC 7313 subtype (0 normal, 1 BoRR, 2 EoRR; others must be ignored). */
  subtype: number;
  safi: number;
}

export type Message =
  | OpenMessage
  | UpdateMessage
  | NotificationMessage
  | KeepaliveMessage
  | RouteRefreshMessage;

/** One framed message from MessageReader: header validated, body not yet decoded. */
export interface RawMessage {
  type: MessageType;
  /** Message body (after the 19-octet header). Valid as long as you hold it. */
  body: Buffer;
  /** Whole message including header (same memory as body). */
  raw: Buffer;
}

/** Input to encodeUpdate. */
export interface UpdateSpec {
  withdrawn?: readonly Prefix4[];
  attrs?: PathAttributes | null;
  nlri?: readonly Prefix4[];
  mpReach?: { afi: number; safi: number; nlri: readonly Prefix[] } | null;
  mpUnreach?: { afi: number; safi: number; withdrawn: readonly Prefix[] } | null;
}

/** Input to encodeOpen. */
export interface OpenSpec {
  /** Real ASN (4-octet allowed: myAs is sent as AS_TRANS and the capability carries it). */
  asn: number;
  holdTime: number;
  /** Unsigned 32-bit number or dotted text. */
  bgpId: number | string;
  capabilities: Capability[];
}

/** Validation inputs for validateOpen (session-level OPEN checks). */
export interface OpenExpectations {
  /** Expected peer ASN (undefined = accept any, e.g. dynamic peers). */
  peerAs?: number;
  /** Our BGP identifier: a peer with the same identifier is refused (eBGP and iBGP). */
  localBgpId?: number;
  /** Smallest hold time we accept besides 0 (RFC 4271 requires refusing 1 and 2). Default 3. */
  minHoldTime?: number;
}
