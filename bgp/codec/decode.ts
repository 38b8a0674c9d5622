// Decoders. Total functions: every input yields a message or a BgpNotification, never a throw.
// UPDATE error handling follows RFC 7606 (see README.md for the table).
import { formatIp4, formatIp6Bytes } from './prefix.js';
import { checkHeader } from './reader.js';
import {
  AS_TRANS,
  AsPathSegmentType,
  AttrFlag,
  AttrType,
  BGP_VERSION,
  BgpNotification,
  CapabilityCode,
  ErrorAction,
  ErrorCode,
  HEADER_LENGTH,
  HeaderSubcode,
  MAX_MESSAGE_LENGTH,
  MessageType,
  OpenSubcode,
  RouteRefreshSubcode,
  UpdateSubcode,
  type Aggregator,
  type AsPathSegment,
  type Capability,
  type CodecContext,
  type DecodedAttributes,
  type GracefulRestartFamily,
  type Message,
  type MpReach,
  type MpUnreach,
  type NotificationMessage,
  type OpenMessage,
  type Prefix,
  type Prefix4,
  type RawMessage,
  type RouteRefreshMessage,
  type UpdateMessage,
  type UpdateProblem,
} from './types.js';

/** Decode a framed message (from MessageReader). */
export function decodeMessage(msg: RawMessage, ctx: CodecContext): Message | BgpNotification {
  try {
    switch (msg.type) {
      case MessageType.UPDATE:
        return decodeUpdate(msg.body, ctx);
      case MessageType.KEEPALIVE:
        return msg.body.length === 0 ? KEEPALIVE : badLength(msg.body.length + HEADER_LENGTH);
      case MessageType.OPEN:
        return decodeOpen(msg.body);
      case MessageType.NOTIFICATION:
        return decodeNotification(msg.body);
      case MessageType.ROUTE_REFRESH:
        return decodeRouteRefresh(msg.body, msg.raw);
      default:
        return new BgpNotification(
          ErrorCode.MESSAGE_HEADER,
          HeaderSubcode.BAD_MESSAGE_TYPE,
          Buffer.from([msg.type & 255]),
          `unknown message type ${msg.type}`,
        );
    }
  } catch (e) {
    // Defence in depth: the decoders are written to be total; if one ever throws, the session
    // is reset with a generic error instead of the process dying.
    return new BgpNotification(
      msg.type === MessageType.OPEN ? ErrorCode.OPEN_MESSAGE : ErrorCode.UPDATE_MESSAGE,
      0,
      undefined,
      `internal decode error: ${(e as Error).message}`,
    );
  }
}
const KEEPALIVE = Object.freeze({ type: MessageType.KEEPALIVE }) as Message;

function badLength(len: number): BgpNotification {
  return new BgpNotification(
    ErrorCode.MESSAGE_HEADER,
    HeaderSubcode.BAD_MESSAGE_LENGTH,
    Buffer.from([(len >> 8) & 255, len & 255]),
    `bad message length ${len}`,
  );
}

/** Frame + decode one complete wire message (header included; trailing bytes are an error). */
export function decodeWire(buf: Buffer, ctx: CodecContext): Message | BgpNotification {
  if (buf.length < HEADER_LENGTH) return badLength(buf.length);
  const len = checkHeader(buf, 0, ctx.maxMessageSize ?? MAX_MESSAGE_LENGTH);
  if (typeof len !== 'number') return len;
  if (len !== buf.length) return badLength(len);
  return decodeMessage(
    { type: buf[18] as MessageType, body: buf.subarray(HEADER_LENGTH), raw: buf },
    ctx,
  );
}

// ---- OPEN ------------------------------------------------------------------------------------

function openError(sub: number, reason: string, data?: Buffer): BgpNotification {
  return new BgpNotification(ErrorCode.OPEN_MESSAGE, sub, data, reason);
}

export function decodeOpen(body: Buffer): OpenMessage | BgpNotification {
  if (body.length < 10) return badLength(body.length + HEADER_LENGTH);
  const version = body[0]!;
  if (version !== BGP_VERSION) {
    return openError(OpenSubcode.UNSUPPORTED_VERSION, `unsupported version ${version}`, Buffer.from([0, BGP_VERSION]));
  }
  const myAs = body.readUInt16BE(1);
  const holdTime = body.readUInt16BE(3);
  const bgpId = body.readUInt32BE(5);
  if (myAs === 0) return openError(OpenSubcode.BAD_PEER_AS, 'peer AS 0 (RFC 7607)');
  if (holdTime === 1 || holdTime === 2) {
    return openError(OpenSubcode.UNACCEPTABLE_HOLD_TIME, `hold time ${holdTime}`);
  }
  if (bgpId === 0) return openError(OpenSubcode.BAD_BGP_IDENTIFIER, 'BGP identifier 0.0.0.0');

  let optLen = body[9]!;
  let p = 10;
  let extended = false;
  // RFC 9072 extended optional parameters: length 255 and first parameter type 255.
  if (optLen === 255 && body.length >= 13 && body[10] === 255) {
    extended = true;
    optLen = body.readUInt16BE(11);
    p = 13;
  }
  if (p + optLen !== body.length) {
    return badLength(body.length + HEADER_LENGTH);
  }
  const end = body.length;
  const capabilities: Capability[] = [];
  while (p < end) {
    const hdr = extended ? 3 : 2;
    if (p + hdr > end) return openError(OpenSubcode.UNSPECIFIC, 'truncated optional parameter');
    const ptype = body[p]!;
    const plen = extended ? body.readUInt16BE(p + 1) : body[p + 1]!;
    p += hdr;
    if (p + plen > end) return openError(OpenSubcode.UNSPECIFIC, 'optional parameter overruns OPEN');
    if (ptype !== 2) {
      return openError(OpenSubcode.UNSUPPORTED_OPTIONAL_PARAMETER, `optional parameter type ${ptype}`);
    }
    const err = parseCapabilities(body, p, p + plen, capabilities);
    if (err) return err;
    p += plen;
  }
  let asn = myAs;
  for (const c of capabilities) {
    if (c.code === CapabilityCode.FOUR_OCTET_AS && !('unknown' in c)) {
      asn = c.asn;
      break;
    }
  }
  if (asn === 0) return openError(OpenSubcode.BAD_PEER_AS, '4-octet AS capability carries AS 0');
  return { type: MessageType.OPEN, version, myAs, asn, holdTime, bgpId, capabilities };
}

function parseCapabilities(b: Buffer, p: number, end: number, out: Capability[]): BgpNotification | null {
  while (p < end) {
    if (p + 2 > end) return openError(OpenSubcode.UNSPECIFIC, 'truncated capability');
    const code = b[p]!;
    const len = b[p + 1]!;
    p += 2;
    if (p + len > end) return openError(OpenSubcode.UNSPECIFIC, `capability ${code} overruns its parameter`);
    const bad = (): BgpNotification =>
      openError(OpenSubcode.UNSPECIFIC, `capability ${code} has invalid length ${len}`);
    switch (code) {
      case CapabilityCode.MULTIPROTOCOL:
        if (len !== 4) return bad();
        out.push({ code, afi: b.readUInt16BE(p), safi: b[p + 3]! });
        break;
      case CapabilityCode.ROUTE_REFRESH:
      case CapabilityCode.ROUTE_REFRESH_OLD:
        out.push({ code });
        break;
      case CapabilityCode.ENHANCED_ROUTE_REFRESH:
        out.push({ code });
        break;
      case CapabilityCode.FOUR_OCTET_AS:
        if (len !== 4) return bad();
        out.push({ code, asn: b.readUInt32BE(p) });
        break;
      case CapabilityCode.GRACEFUL_RESTART: {
        if (len < 2 || (len - 2) % 4 !== 0) return bad();
        const w = b.readUInt16BE(p);
        const families: GracefulRestartFamily[] = [];
        for (let q = p + 2; q < p + len; q += 4) {
          families.push({ afi: b.readUInt16BE(q), safi: b[q + 2]!, forwardingState: (b[q + 3]! & 0x80) !== 0 });
        }
        out.push({
          code,
          restarting: (w & 0x8000) !== 0,
          notification: (w & 0x4000) !== 0,
          restartTime: w & 0x0fff,
          families,
        });
        break;
      }
      default:
        out.push({ code, value: Buffer.from(b.subarray(p, p + len)), unknown: true });
    }
    p += len;
  }
  return null;
}

// ---- NOTIFICATION / ROUTE-REFRESH -------------------------------------------------------------

export function decodeNotification(body: Buffer): NotificationMessage | BgpNotification {
  if (body.length < 2) return badLength(body.length + HEADER_LENGTH);
  return {
    type: MessageType.NOTIFICATION,
    code: body[0]!,
    subcode: body[1]!,
    data: Buffer.from(body.subarray(2)),
  };
}

export function decodeRouteRefresh(body: Buffer, raw?: Buffer): RouteRefreshMessage | BgpNotification {
  if (body.length < 4) return badLength(body.length + HEADER_LENGTH);
  const subtype = body[2]!;
  // RFC 7313 §5: BoRR/EoRR must be exactly 4 octets; subtype 0 may carry ORF entries (ignored).
  if (body.length !== 4 && subtype !== 0) {
    return new BgpNotification(
      ErrorCode.ROUTE_REFRESH_MESSAGE,
      RouteRefreshSubcode.INVALID_MESSAGE_LENGTH,
      raw ? Buffer.from(raw) : Buffer.from(body),
      `ROUTE-REFRESH subtype ${subtype} with length ${body.length + HEADER_LENGTH}`,
    );
  }
  return { type: MessageType.ROUTE_REFRESH, afi: body.readUInt16BE(0), subtype, safi: body[3]! };
}

// ---- UPDATE ----------------------------------------------------------------------------------

function updateError(sub: number, reason: string, data?: Buffer): BgpNotification {
  return new BgpNotification(ErrorCode.UPDATE_MESSAGE, sub, data, reason);
}

/** Parse IPv4 NLRI b[i..end) into out. Returns false on a syntax error (RFC 7606 §5.3). */
function parseNlri4(b: Buffer, i: number, end: number, out: Prefix4[]): boolean {
  while (i < end) {
    const len = b[i]!;
    if (len > 32) return false;
    const nb = (len + 7) >> 3;
    if (i + 1 + nb > end) return false;
    let a: number;
    switch (nb) {
      case 0:
        a = 0;
        break;
      case 1:
        a = b[i + 1]! << 24;
        break;
      case 2:
        a = (b[i + 1]! << 24) | (b[i + 2]! << 16);
        break;
      case 3:
        a = (b[i + 1]! << 24) | (b[i + 2]! << 16) | (b[i + 3]! << 8);
        break;
      default:
        a = (b[i + 1]! << 24) | (b[i + 2]! << 16) | (b[i + 3]! << 8) | b[i + 4]!;
    }
    if (len === 0) a = 0;
    else if (len < 32) a &= 0xffffffff << (32 - len);
    out.push((a >>> 0) * 64 + len);
    i += 1 + nb;
  }
  return true;
}

const scratch6 = new Uint8Array(16);

function parseNlri6(b: Buffer, i: number, end: number, out: Prefix[]): boolean {
  while (i < end) {
    const len = b[i]!;
    if (len > 128) return false;
    const nb = (len + 7) >> 3;
    if (i + 1 + nb > end) return false;
    scratch6.fill(0);
    for (let k = 0; k < nb; k++) scratch6[k] = b[i + 1 + k]!;
    if (len & 7) scratch6[nb - 1] = scratch6[nb - 1]! & (0xff << (8 - (len & 7)));
    out.push(`${formatIp6Bytes(scratch6, 0)}/${len}`);
    i += 1 + nb;
  }
  return true;
}

/** Parse an AS_PATH-shaped value. Returns segments or a reason string when malformed. */
function parseAsPath(b: Buffer, i: number, end: number, width: 2 | 4): AsPathSegment[] | string {
  const segs: AsPathSegment[] = [];
  while (i < end) {
    if (end - i < 2) return 'segment header truncated';
    const type = b[i]!;
    const n = b[i + 1]!;
    if (type < 1 || type > 4) return `bad segment type ${type}`;
    if (n === 0) return 'zero-length segment';
    i += 2;
    if (i + n * width > end) return 'segment overruns attribute';
    const asns = new Array<number>(n);
    if (width === 4) for (let k = 0; k < n; k++, i += 4) asns[k] = b.readUInt32BE(i);
    else for (let k = 0; k < n; k++, i += 2) asns[k] = (b[i]! << 8) | b[i + 1]!;
    segs.push({ type, asns });
  }
  return segs;
}

function pathCount(path: readonly AsPathSegment[]): number {
  let n = 0;
  for (const s of path) {
    if (s.type === AsPathSegmentType.AS_SEQUENCE) n += s.asns.length;
    else if (s.type === AsPathSegmentType.AS_SET) n += 1;
  }
  return n;
}

/** RFC 6793 §4.2.3: reconstruct the path from AS_PATH (2-octet) and AS4_PATH. */
function mergeAs4Path(asPath: AsPathSegment[], as4: AsPathSegment[]): AsPathSegment[] {
  const n2 = pathCount(asPath);
  const n4 = pathCount(as4);
  if (n2 < n4) return asPath;
  let keep = n2 - n4;
  const out: AsPathSegment[] = [];
  for (const s of asPath) {
    if (keep <= 0 && s.type !== AsPathSegmentType.AS_CONFED_SEQUENCE && s.type !== AsPathSegmentType.AS_CONFED_SET) break;
    if (s.type === AsPathSegmentType.AS_SEQUENCE) {
      if (s.asns.length <= keep) {
        out.push(s);
        keep -= s.asns.length;
      } else {
        out.push({ type: s.type, asns: s.asns.slice(0, keep) });
        keep = 0;
      }
    } else if (s.type === AsPathSegmentType.AS_SET) {
      out.push(s);
      keep -= 1;
    } else {
      out.push(s); // confederation segments (front of the path) are kept whole
    }
  }
  // join a trailing kept AS_SEQUENCE with a leading AS4 AS_SEQUENCE (cosmetic, same semantics)
  for (const s of as4) {
    const last = out[out.length - 1];
    if (
      last &&
      last.type === AsPathSegmentType.AS_SEQUENCE &&
      s.type === AsPathSegmentType.AS_SEQUENCE &&
      last.asns.length + s.asns.length <= 255
    ) {
      out[out.length - 1] = { type: last.type, asns: last.asns.concat(s.asns) };
    } else {
      out.push(s);
    }
  }
  return out;
}

/** Expected Optional|Transitive bits per known attribute type (0xff = unknown). */
const EXPECTED_FLAGS = new Uint8Array(256).fill(0xff);
EXPECTED_FLAGS[AttrType.ORIGIN] = AttrFlag.TRANSITIVE;
EXPECTED_FLAGS[AttrType.AS_PATH] = AttrFlag.TRANSITIVE;
EXPECTED_FLAGS[AttrType.NEXT_HOP] = AttrFlag.TRANSITIVE;
EXPECTED_FLAGS[AttrType.MULTI_EXIT_DISC] = AttrFlag.OPTIONAL;
EXPECTED_FLAGS[AttrType.LOCAL_PREF] = AttrFlag.TRANSITIVE;
EXPECTED_FLAGS[AttrType.ATOMIC_AGGREGATE] = AttrFlag.TRANSITIVE;
EXPECTED_FLAGS[AttrType.AGGREGATOR] = AttrFlag.OPTIONAL | AttrFlag.TRANSITIVE;
EXPECTED_FLAGS[AttrType.COMMUNITIES] = AttrFlag.OPTIONAL | AttrFlag.TRANSITIVE;
EXPECTED_FLAGS[AttrType.ORIGINATOR_ID] = AttrFlag.OPTIONAL;
EXPECTED_FLAGS[AttrType.CLUSTER_LIST] = AttrFlag.OPTIONAL;
EXPECTED_FLAGS[AttrType.MP_REACH_NLRI] = AttrFlag.OPTIONAL;
EXPECTED_FLAGS[AttrType.MP_UNREACH_NLRI] = AttrFlag.OPTIONAL;
EXPECTED_FLAGS[AttrType.EXTENDED_COMMUNITIES] = AttrFlag.OPTIONAL | AttrFlag.TRANSITIVE;
EXPECTED_FLAGS[AttrType.AS4_PATH] = AttrFlag.OPTIONAL | AttrFlag.TRANSITIVE;
EXPECTED_FLAGS[AttrType.AS4_AGGREGATOR] = AttrFlag.OPTIONAL | AttrFlag.TRANSITIVE;
EXPECTED_FLAGS[AttrType.LARGE_COMMUNITIES] = AttrFlag.OPTIONAL | AttrFlag.TRANSITIVE;

const ATTR_NAMES: Record<number, string> = {
  1: 'ORIGIN',
  2: 'AS_PATH',
  3: 'NEXT_HOP',
  4: 'MULTI_EXIT_DISC',
  5: 'LOCAL_PREF',
  6: 'ATOMIC_AGGREGATE',
  7: 'AGGREGATOR',
  8: 'COMMUNITIES',
  9: 'ORIGINATOR_ID',
  10: 'CLUSTER_LIST',
  14: 'MP_REACH_NLRI',
  15: 'MP_UNREACH_NLRI',
  16: 'EXTENDED_COMMUNITIES',
  17: 'AS4_PATH',
  18: 'AS4_AGGREGATOR',
  32: 'LARGE_COMMUNITIES',
};
export function attrName(t: number): string {
  return ATTR_NAMES[t] ?? `attribute ${t}`;
}

/** RFC 4271 §6.3 "not a valid IP host address" for NEXT_HOP. */
function invalidNextHop4(a: number): boolean {
  const first = a >>> 24;
  return first === 0 || first === 127 || first >= 224;
}

/** First character of an attribute key: session kind, and whether the key is the raw block
 *  (fast path) or the MP-reduced form, so the two forms can never collide. */
function contextTag(ctx: CodecContext, mp = false): string {
  return String.fromCharCode((mp ? 0x40 : 0x30) + (ctx.fourOctetAs ? 1 : 0) + (ctx.external ? 2 : 0));
}

function newAttrs(): MutableAttrs {
  return {
    key: '',
    origin: undefined,
    asPath: undefined,
    nextHop: undefined,
    med: undefined,
    localPref: undefined,
    atomicAggregate: undefined,
    aggregator: undefined,
    communities: undefined,
    largeCommunities: undefined,
    originatorId: undefined,
    clusterList: undefined,
    mpNextHop: undefined,
    mpNextHopLinkLocal: undefined,
    unknown: undefined,
  };
}
type MutableAttrs = { -readonly [K in keyof DecodedAttributes]: DecodedAttributes[K] };

/**
 * Decode an UPDATE body. Session-reset conditions return a BgpNotification; RFC 7606
 * treat-as-withdraw and attribute-discard outcomes are reported in the message.
 */
export function decodeUpdate(body: Buffer, ctx: CodecContext): UpdateMessage | BgpNotification {
  const blen = body.length;
  if (blen < 4) return badLength(blen + HEADER_LENGTH);
  const wlen = (body[0]! << 8) | body[1]!;
  if (2 + wlen + 2 > blen) {
    return updateError(UpdateSubcode.MALFORMED_ATTRIBUTE_LIST, `withdrawn routes length ${wlen} overruns message`);
  }
  const aoff = 4 + wlen;
  const alen = (body[2 + wlen]! << 8) | body[3 + wlen]!;
  const aend = aoff + alen;
  if (aend > blen) {
    return updateError(UpdateSubcode.MALFORMED_ATTRIBUTE_LIST, `total attribute length ${alen} overruns message`);
  }

  const withdrawn: Prefix4[] = [];
  if (wlen > 0 && !parseNlri4(body, 2, 2 + wlen, withdrawn)) {
    return updateError(UpdateSubcode.INVALID_NETWORK_FIELD, 'malformed withdrawn routes field');
  }
  const nlri: Prefix4[] = [];
  if (aend < blen && !parseNlri4(body, aend, blen, nlri)) {
    return updateError(UpdateSubcode.INVALID_NETWORK_FIELD, 'malformed NLRI field');
  }

  const msg: UpdateMessage = {
    type: MessageType.UPDATE,
    withdrawn,
    attrs: null,
    nlri,
    mpReach: undefined,
    mpUnreach: undefined,
    treatAsWithdraw: false,
    problems: NO_PROBLEMS,
    endOfRib: undefined,
  };
  if (alen === 0) {
    if (wlen === 0 && nlri.length === 0) msg.endOfRib = { afi: 1, safi: 1 };
    else if (nlri.length > 0) {
      msg.treatAsWithdraw = true;
      msg.problems = [{ action: ErrorAction.TREAT_AS_WITHDRAW, attrType: 0, reason: 'NLRI without path attributes' }];
    }
    return msg;
  }

  // Pass 1: walk attribute headers. Fast path when the block is well-framed and has no MP attrs:
  // the key is the raw block and the cache may already hold the decoded set.
  let p = aoff;
  let hasMp = false;
  let framed = true;
  while (p < aend) {
    if (aend - p < 3) {
      framed = false;
      break;
    }
    const f = body[p]!;
    const t = body[p + 1]!;
    let l: number;
    let h: number;
    if (f & AttrFlag.EXTENDED_LENGTH) {
      if (aend - p < 4) {
        framed = false;
        break;
      }
      l = (body[p + 2]! << 8) | body[p + 3]!;
      h = 4;
    } else {
      l = body[p + 2]!;
      h = 3;
    }
    if (p + h + l > aend) {
      framed = false;
      break;
    }
    if (t === AttrType.MP_REACH_NLRI || t === AttrType.MP_UNREACH_NLRI) hasMp = true;
    p += h + l;
  }
  const cache = ctx.attrCache;
  if (framed && !hasMp) {
    const key = contextTag(ctx) + body.toString('latin1', aoff, aend);
    const hit = cache?.get(key);
    if (hit) {
      msg.attrs = hit;
      return finishUpdate(msg, ctx, hit);
    }
    const r = decodeAttributes(body, aoff, aend, ctx, msg, key);
    if (r) return r;
    if (msg.attrs && cache && msg.problems.length === 0 && !msg.treatAsWithdraw) cache.set(key, msg.attrs);
    return finishUpdate(msg, ctx, msg.attrs);
  }
  const r = decodeAttributes(body, aoff, aend, ctx, msg, undefined);
  if (r) return r;
  return finishUpdate(msg, ctx, msg.attrs);
}
const NO_PROBLEMS: UpdateProblem[] = [];

function addProblem(msg: UpdateMessage, action: ErrorAction, attrType: number, reason: string): void {
  if (msg.problems === NO_PROBLEMS) msg.problems = [];
  msg.problems.push({ action, attrType, reason });
  if (action === ErrorAction.TREAT_AS_WITHDRAW) msg.treatAsWithdraw = true;
}

/** Mandatory attribute checks (RFC 7606 §3 d) and End-of-RIB detection. */
function finishUpdate(msg: UpdateMessage, ctx: CodecContext, a: DecodedAttributes | null): UpdateMessage {
  void ctx;
  const reach = msg.nlri.length > 0 || (msg.mpReach !== undefined && msg.mpReach.nlri.length > 0);
  if (reach && !msg.treatAsWithdraw) {
    const missing: string[] = [];
    if (a?.origin === undefined) missing.push('ORIGIN');
    if (a?.asPath === undefined) missing.push('AS_PATH');
    if (msg.nlri.length > 0 && a?.nextHop === undefined) missing.push('NEXT_HOP');
    if (missing.length) {
      addProblem(msg, ErrorAction.TREAT_AS_WITHDRAW, 0, `missing well-known attribute ${missing.join(', ')}`);
    }
  }
  if (msg.treatAsWithdraw) msg.attrs = null;
  // RFC 4724 §2: End-of-RIB for other families is an UPDATE with only an empty MP_UNREACH.
  const u = msg.mpUnreach;
  if (
    u &&
    u.withdrawn.length === 0 &&
    !msg.mpReach &&
    msg.nlri.length === 0 &&
    msg.withdrawn.length === 0 &&
    !u.unsupported &&
    isOnlyMpUnreach(a)
  ) {
    msg.endOfRib = { afi: u.afi, safi: u.safi };
  }
  return msg;
}

function isOnlyMpUnreach(a: DecodedAttributes | null): boolean {
  if (!a) return true;
  return (
    a.origin === undefined &&
    a.asPath === undefined &&
    a.nextHop === undefined &&
    a.med === undefined &&
    a.localPref === undefined &&
    a.communities === undefined &&
    a.largeCommunities === undefined
  );
}

/**
 * Pass 2: decode every attribute. Returns a BgpNotification for session-reset conditions,
 * otherwise null after filling msg.attrs / msg.mpReach / msg.mpUnreach / msg.problems.
 */
function decodeAttributes(
  b: Buffer,
  aoff: number,
  aend: number,
  ctx: CodecContext,
  msg: UpdateMessage,
  fastKey: string | undefined,
): BgpNotification | null {
  const four = ctx.fourOctetAs;
  const a = newAttrs();
  // "seen" marks without allocating per UPDATE: a type is seen when seenGen[type] === gen.
  const gen = nextGen();
  let as4Path: AsPathSegment[] | undefined;
  let as4Aggregator: Aggregator | undefined;
  let keyParts: string[] | undefined = fastKey === undefined ? [contextTag(ctx, true)] : undefined;
  let sawAttr = false; // any attribute other than MP_UNREACH_NLRI

  let p = aoff;
  while (p < aend) {
    if (aend - p < 3) {
      addProblem(msg, ErrorAction.TREAT_AS_WITHDRAW, 0, 'attribute header truncated (RFC 7606 §4)');
      break;
    }
    const start = p;
    const flags = b[p]!;
    const type = b[p + 1]!;
    let len: number;
    if (flags & AttrFlag.EXTENDED_LENGTH) {
      if (aend - p < 4) {
        addProblem(msg, ErrorAction.TREAT_AS_WITHDRAW, type, 'attribute header truncated (RFC 7606 §4)');
        break;
      }
      len = (b[p + 2]! << 8) | b[p + 3]!;
      p += 4;
    } else {
      len = b[p + 2]!;
      p += 3;
    }
    const v = p;
    const vend = p + len;
    if (vend > aend) {
      addProblem(msg, ErrorAction.TREAT_AS_WITHDRAW, type, `${attrName(type)} length ${len} overruns the attributes (RFC 7606 §4)`);
      break;
    }
    p = vend;
    if (type !== AttrType.MP_UNREACH_NLRI) sawAttr = true;
    const whole = (): Buffer => Buffer.from(b.subarray(start, vend));
    const isMp = type === AttrType.MP_REACH_NLRI || type === AttrType.MP_UNREACH_NLRI;

    if (seenGen[type] === gen) {
      if (isMp) {
        return updateError(UpdateSubcode.MALFORMED_ATTRIBUTE_LIST, `${attrName(type)} appears twice`);
      }
      addProblem(msg, ErrorAction.ATTRIBUTE_DISCARD, type, `duplicate ${attrName(type)} discarded`);
      continue;
    }
    seenGen[type] = gen;
    if (keyParts && !isMp) keyParts.push(b.toString('latin1', start, vend));

    const expected = EXPECTED_FLAGS[type]!;
    if (expected === 0xff) {
      // Unknown attribute.
      if (!(flags & AttrFlag.OPTIONAL)) {
        return updateError(
          UpdateSubcode.UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE,
          `unrecognized well-known attribute ${type}`,
          whole(),
        );
      }
      if (flags & AttrFlag.TRANSITIVE) {
        (a.unknown ??= []).push({ flags: flags & 0xe0, type, value: Buffer.from(b.subarray(v, vend)) });
      }
      continue;
    }
    const flagsOk = (flags & 0xc0) === expected;

    switch (type) {
      case AttrType.ORIGIN:
        if (!flagsOk || len !== 1) twa(msg, type, flagsOk ? `ORIGIN length ${len}` : 'ORIGIN flags');
        else if (b[v]! > 2) twa(msg, type, `invalid ORIGIN value ${b[v]}`);
        else a.origin = b[v]!;
        break;
      case AttrType.AS_PATH: {
        if (!flagsOk) {
          twa(msg, type, 'AS_PATH flags');
          break;
        }
        const r = parseAsPath(b, v, vend, four ? 4 : 2);
        if (typeof r === 'string') {
          twa(msg, type, `malformed AS_PATH: ${r}`);
          break;
        }
        if (ctx.external && r.some((s) => s.type >= AsPathSegmentType.AS_CONFED_SEQUENCE)) {
          twa(msg, type, 'AS_PATH from an external peer contains confederation segments');
          break;
        }
        a.asPath = r;
        break;
      }
      case AttrType.NEXT_HOP: {
        // RFC 4760 §3: without IPv4 NLRI in the NLRI field, NEXT_HOP is ignored.
        const bad = (why: string): void =>
          msg.nlri.length ? twa(msg, type, why) : discard(msg, type, `${why} (ignored: no NLRI field, RFC 4760 §3)`);
        if (!flagsOk || len !== 4) {
          bad(flagsOk ? `NEXT_HOP length ${len}` : 'NEXT_HOP flags');
          break;
        }
        const nh = b.readUInt32BE(v);
        if (invalidNextHop4(nh)) bad(`invalid NEXT_HOP ${formatIp4(nh)}`);
        else a.nextHop = formatIp4(nh);
        break;
      }
      case AttrType.MULTI_EXIT_DISC:
        if (!flagsOk || len !== 4) twa(msg, type, flagsOk ? `MED length ${len}` : 'MED flags');
        else a.med = b.readUInt32BE(v);
        break;
      case AttrType.LOCAL_PREF:
        if (ctx.external) discard(msg, type, 'LOCAL_PREF from an external peer');
        else if (!flagsOk || len !== 4) twa(msg, type, flagsOk ? `LOCAL_PREF length ${len}` : 'LOCAL_PREF flags');
        else a.localPref = b.readUInt32BE(v);
        break;
      case AttrType.ATOMIC_AGGREGATE:
        if (!flagsOk || len !== 0) discard(msg, type, flagsOk ? `ATOMIC_AGGREGATE length ${len}` : 'ATOMIC_AGGREGATE flags');
        else a.atomicAggregate = true;
        break;
      case AttrType.AGGREGATOR:
        if (!flagsOk || len !== (four ? 8 : 6)) {
          discard(msg, type, flagsOk ? `AGGREGATOR length ${len}` : 'AGGREGATOR flags');
        } else if (four) a.aggregator = { asn: b.readUInt32BE(v), address: b.readUInt32BE(v + 4) };
        else a.aggregator = { asn: b.readUInt16BE(v), address: b.readUInt32BE(v + 2) };
        break;
      case AttrType.COMMUNITIES:
        if (!flagsOk || len === 0 || len % 4 !== 0) {
          twa(msg, type, flagsOk ? `COMMUNITIES length ${len}` : 'COMMUNITIES flags');
        } else {
          const c = new Array<number>(len / 4);
          for (let k = 0; k < c.length; k++) c[k] = b.readUInt32BE(v + 4 * k);
          a.communities = c;
        }
        break;
      case AttrType.ORIGINATOR_ID:
        if (!flagsOk || len !== 4) twa(msg, type, flagsOk ? `ORIGINATOR_ID length ${len}` : 'ORIGINATOR_ID flags');
        else a.originatorId = b.readUInt32BE(v);
        break;
      case AttrType.CLUSTER_LIST:
        if (!flagsOk || len === 0 || len % 4 !== 0) {
          twa(msg, type, flagsOk ? `CLUSTER_LIST length ${len}` : 'CLUSTER_LIST flags');
        } else {
          const c = new Array<number>(len / 4);
          for (let k = 0; k < c.length; k++) c[k] = b.readUInt32BE(v + 4 * k);
          a.clusterList = c;
        }
        break;
      case AttrType.LARGE_COMMUNITIES:
        if (!flagsOk || len === 0 || len % 12 !== 0) {
          twa(msg, type, flagsOk ? `LARGE_COMMUNITIES length ${len}` : 'LARGE_COMMUNITIES flags');
        } else {
          const c = new Array<number>(len / 4);
          for (let k = 0; k < c.length; k++) c[k] = b.readUInt32BE(v + 4 * k);
          a.largeCommunities = c;
        }
        break;
      case AttrType.EXTENDED_COMMUNITIES:
        if (!flagsOk || len === 0 || len % 8 !== 0) {
          twa(msg, type, flagsOk ? `EXTENDED_COMMUNITIES length ${len}` : 'EXTENDED_COMMUNITIES flags');
        } else {
          (a.unknown ??= []).push({ flags: flags & 0xe0, type, value: Buffer.from(b.subarray(v, vend)) });
        }
        break;
      case AttrType.AS4_PATH: {
        if (four) {
          discard(msg, type, 'AS4_PATH from a 4-octet peer (RFC 6793 §4.1)');
          break;
        }
        if (!flagsOk) {
          discard(msg, type, 'AS4_PATH flags');
          break;
        }
        const r = parseAsPath(b, v, vend, 4);
        if (typeof r === 'string') discard(msg, type, `malformed AS4_PATH: ${r}`);
        else if (r.some((s) => s.type >= AsPathSegmentType.AS_CONFED_SEQUENCE)) {
          discard(msg, type, 'AS4_PATH with confederation segments');
        } else as4Path = r;
        break;
      }
      case AttrType.AS4_AGGREGATOR:
        if (four) discard(msg, type, 'AS4_AGGREGATOR from a 4-octet peer (RFC 6793 §4.1)');
        else if (!flagsOk || len !== 8) discard(msg, type, flagsOk ? `AS4_AGGREGATOR length ${len}` : 'AS4_AGGREGATOR flags');
        else as4Aggregator = { asn: b.readUInt32BE(v), address: b.readUInt32BE(v + 4) };
        break;
      case AttrType.MP_REACH_NLRI: {
        const r = decodeMpReach(b, v, vend, flagsOk, whole);
        if (r instanceof BgpNotification) return r;
        msg.mpReach = r;
        if (!r.unsupported) {
          a.mpNextHop = r.nextHop;
          a.mpNextHopLinkLocal = r.nextHopLinkLocal;
        }
        if (keyParts) keyParts.push('\0', b.toString('latin1', v, Math.min(vend, v + 4 + b[v + 3]!)));
        break;
      }
      case AttrType.MP_UNREACH_NLRI: {
        const r = decodeMpUnreach(b, v, vend, flagsOk, whole);
        if (r instanceof BgpNotification) return r;
        msg.mpUnreach = r;
        break;
      }
    }
  }

  // RFC 6793 §4.2.3: merge AS4_AGGREGATOR / AS4_PATH received over a 2-octet session.
  if (!four && (as4Path || as4Aggregator)) {
    if (a.aggregator && a.aggregator.asn !== AS_TRANS) {
      // AGGREGATOR from a NEW speaker's aggregation: AS4 attributes are ignored.
    } else {
      if (as4Aggregator) a.aggregator = as4Aggregator;
      if (as4Path && a.asPath) a.asPath = mergeAs4Path(a.asPath, as4Path);
    }
  }

  if (sawAttr) {
    a.key = fastKey ?? keyParts!.join('');
    msg.attrs = a as DecodedAttributes;
  }
  return null;
}

const seenGen = new Uint32Array(256);
let genCounter = 0;
function nextGen(): number {
  genCounter = (genCounter + 1) >>> 0;
  if (genCounter === 0) {
    seenGen.fill(0);
    genCounter = 1;
  }
  return genCounter;
}

function twa(msg: UpdateMessage, type: number, reason: string): void {
  addProblem(msg, ErrorAction.TREAT_AS_WITHDRAW, type, reason);
}
function discard(msg: UpdateMessage, type: number, reason: string): void {
  addProblem(msg, ErrorAction.ATTRIBUTE_DISCARD, type, reason);
}

function isUnicastV4V6(afi: number, safi: number): boolean {
  return safi === 1 && (afi === 1 || afi === 2);
}

function mpError(reason: string, data: Buffer): BgpNotification {
  // RFC 4760 §7 / RFC 7606 §7.11: session reset, UPDATE Message Error / Optional Attribute Error.
  return updateError(UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR, reason, data);
}

function decodeMpReach(
  b: Buffer,
  v: number,
  vend: number,
  flagsOk: boolean,
  whole: () => Buffer,
): MpReach | BgpNotification {
  if (!flagsOk) return updateError(UpdateSubcode.ATTRIBUTE_FLAGS_ERROR, 'MP_REACH_NLRI flags', whole());
  if (vend - v < 5) return mpError('MP_REACH_NLRI too short', whole());
  const afi = b.readUInt16BE(v);
  const safi = b[v + 2]!;
  const nhLen = b[v + 3]!;
  if (v + 4 + nhLen + 1 > vend) return mpError(`MP_REACH_NLRI next hop length ${nhLen} overruns attribute`, whole());
  if (!isUnicastV4V6(afi, safi)) {
    return { afi, safi, nextHop: '', nlri: [], unsupported: true };
  }
  const nh = v + 4;
  let nextHop: string;
  let nextHopLinkLocal: string | undefined;
  if (afi === 1 && nhLen === 4) {
    nextHop = formatIp4(b.readUInt32BE(nh));
  } else if (nhLen === 16 || nhLen === 32) {
    nextHop = formatIp6Bytes(b, nh);
    if (nhLen === 32) nextHopLinkLocal = formatIp6Bytes(b, nh + 16);
  } else {
    return mpError(`MP_REACH_NLRI next hop length ${nhLen} invalid for AFI ${afi}`, whole());
  }
  const nlri: Prefix[] = [];
  const start = nh + nhLen + 1; // skip reserved octet
  const ok = afi === 1 ? parseNlri4(b, start, vend, nlri as Prefix4[]) : parseNlri6(b, start, vend, nlri);
  if (!ok) return mpError('malformed NLRI in MP_REACH_NLRI', whole());
  const r: MpReach = { afi, safi, nextHop, nlri };
  if (nextHopLinkLocal !== undefined) r.nextHopLinkLocal = nextHopLinkLocal;
  return r;
}

function decodeMpUnreach(
  b: Buffer,
  v: number,
  vend: number,
  flagsOk: boolean,
  whole: () => Buffer,
): MpUnreach | BgpNotification {
  if (!flagsOk) return updateError(UpdateSubcode.ATTRIBUTE_FLAGS_ERROR, 'MP_UNREACH_NLRI flags', whole());
  if (vend - v < 3) return mpError('MP_UNREACH_NLRI too short', whole());
  const afi = b.readUInt16BE(v);
  const safi = b[v + 2]!;
  if (!isUnicastV4V6(afi, safi)) return { afi, safi, withdrawn: [], unsupported: true };
  const withdrawn: Prefix[] = [];
  const ok = afi === 1 ? parseNlri4(b, v + 3, vend, withdrawn as Prefix4[]) : parseNlri6(b, v + 3, vend, withdrawn);
  if (!ok) return mpError('malformed NLRI in MP_UNREACH_NLRI', whole());
  return { afi, safi, withdrawn };
}

/**
 * Visit every announced prefix of an UPDATE (NLRI field, then MP_REACH) without allocating.
 * Does not look at treatAsWithdraw: check it first.
 */
export function forEachNlri(u: UpdateMessage, cb: (p: Prefix, afi: number) => void): void {
  const n = u.nlri;
  for (let i = 0; i < n.length; i++) cb(n[i]!, 1);
  const m = u.mpReach;
  if (m && !m.unsupported) for (let i = 0; i < m.nlri.length; i++) cb(m.nlri[i]!, m.afi);
}

/** Visit every withdrawn prefix (withdrawn field, then MP_UNREACH). */
export function forEachWithdrawn(u: UpdateMessage, cb: (p: Prefix, afi: number) => void): void {
  const w = u.withdrawn;
  for (let i = 0; i < w.length; i++) cb(w[i]!, 1);
  const m = u.mpUnreach;
  if (m && !m.unsupported) for (let i = 0; i < m.withdrawn.length; i++) cb(m.withdrawn[i]!, m.afi);
}

