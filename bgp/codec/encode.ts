// Encoders. They return complete wire messages (header included).
// Invalid caller input (a malformed next-hop string, a message that cannot fit 65535 octets) is
// a programming error and throws TypeError/RangeError; nothing received from a peer can make an
// encoder throw when its decoded form is re-encoded.
import { parseIp4, parseIp6Into, prefix4Len, prefix6Parts } from './prefix.js';
import {
  AS_TRANS,
  AsPathSegmentType,
  AttrFlag,
  AttrType,
  BGP_VERSION,
  CapabilityCode,
  HEADER_LENGTH,
  MAX_MESSAGE_LENGTH,
  MessageType,
  type AsPathSegment,
  type Capability,
  type CodecContext,
  type OpenSpec,
  type PathAttributes,
  type Prefix,
  type Prefix4,
  type UpdateSpec,
} from './types.js';

function header(buf: Buffer, len: number, type: MessageType): void {
  buf.fill(0xff, 0, 16);
  buf[16] = len >> 8;
  buf[17] = len & 255;
  buf[18] = type;
}

function message(type: MessageType, body: Buffer | Uint8Array): Buffer {
  const len = HEADER_LENGTH + body.length;
  if (len > 65535) throw new RangeError(`BGP message of ${len} octets cannot be encoded`);
  const buf = Buffer.allocUnsafe(len);
  header(buf, len, type);
  buf.set(body, HEADER_LENGTH);
  return buf;
}

// ---- OPEN ------------------------------------------------------------------------------------

function encodeCapability(c: Capability): Buffer {
  let v: Buffer;
  if ('unknown' in c) v = c.value;
  else {
    switch (c.code) {
      case CapabilityCode.MULTIPROTOCOL:
        v = Buffer.from([c.afi >> 8, c.afi & 255, 0, c.safi]);
        break;
      case CapabilityCode.FOUR_OCTET_AS:
        v = Buffer.alloc(4);
        v.writeUInt32BE(c.asn >>> 0);
        break;
      case CapabilityCode.GRACEFUL_RESTART: {
        v = Buffer.alloc(2 + 4 * c.families.length);
        v.writeUInt16BE((c.restarting ? 0x8000 : 0) | (c.notification ? 0x4000 : 0) | (c.restartTime & 0x0fff));
        c.families.forEach((f, i) => {
          v.writeUInt16BE(f.afi, 2 + 4 * i);
          v[4 + 4 * i] = f.safi;
          v[5 + 4 * i] = f.forwardingState ? 0x80 : 0;
        });
        break;
      }
      default:
        v = Buffer.alloc(0);
    }
  }
  if (v.length > 255) throw new RangeError(`capability ${c.code} value too long`);
  return Buffer.concat([Buffer.from([c.code, v.length]), v]);
}

export function encodeOpen(open: OpenSpec): Buffer {
  const bgpId = typeof open.bgpId === 'number' ? open.bgpId : parseIp4(open.bgpId);
  if (bgpId === undefined) throw new TypeError(`invalid BGP identifier ${String(open.bgpId)}`);
  // Capabilities, several per optional parameter (each parameter ≤ 255 octets); if they do not
  // fit 255 octets of optional parameters, the RFC 9072 extended format is used.
  const encoded = open.capabilities.map(encodeCapability);
  const params: Buffer[] = [];
  let cur: Buffer[] = [];
  let curLen = 0;
  for (const e of encoded) {
    if (curLen + e.length > 255) {
      params.push(Buffer.concat([Buffer.from([2, curLen]), ...cur]));
      cur = [];
      curLen = 0;
    }
    cur.push(e);
    curLen += e.length;
  }
  if (cur.length) params.push(Buffer.concat([Buffer.from([2, curLen]), ...cur]));
  let opt = Buffer.concat(params);
  let optLenField = opt.length;
  if (opt.length > 255) {
    const caps = Buffer.concat(encoded);
    const p = Buffer.alloc(3);
    p[0] = 2;
    p.writeUInt16BE(caps.length, 1);
    const total = 3 + caps.length;
    const head = Buffer.alloc(3);
    head[0] = 255;
    head.writeUInt16BE(total, 1);
    opt = Buffer.concat([head, p, caps]);
    optLenField = 255;
  }
  const body = Buffer.alloc(10 + opt.length);
  body[0] = BGP_VERSION;
  body.writeUInt16BE(open.asn > 0xffff ? AS_TRANS : open.asn, 1);
  body.writeUInt16BE(open.holdTime, 3);
  body.writeUInt32BE(bgpId >>> 0, 5);
  body[9] = optLenField;
  opt.copy(body, 10);
  return message(MessageType.OPEN, body);
}

// ---- KEEPALIVE / NOTIFICATION / ROUTE-REFRESH -----------------------------------------------

const KEEPALIVE_BYTES = message(MessageType.KEEPALIVE, Buffer.alloc(0));

export function encodeKeepalive(): Buffer {
  return Buffer.from(KEEPALIVE_BYTES);
}

export function encodeNotification(n: { code: number; subcode: number; data?: Buffer }): Buffer {
  const data = n.data ?? Buffer.alloc(0);
  const max = MAX_MESSAGE_LENGTH - HEADER_LENGTH - 2;
  const d = data.length > max ? data.subarray(0, max) : data;
  const body = Buffer.alloc(2 + d.length);
  body[0] = n.code;
  body[1] = n.subcode;
  d.copy(body, 2);
  return message(MessageType.NOTIFICATION, body);
}

export function encodeRouteRefresh(afi: number, safi: number, subtype = 0): Buffer {
  return message(MessageType.ROUTE_REFRESH, Buffer.from([afi >> 8, afi & 255, subtype, safi]));
}

// ---- attributes --------------------------------------------------------------------------------

function attr(flags: number, type: number, value: Buffer | Uint8Array): Buffer {
  const ext = value.length > 255;
  const h = ext ? 4 : 3;
  const out = Buffer.allocUnsafe(h + value.length);
  out[0] = (flags & ~AttrFlag.EXTENDED_LENGTH & 0xf0) | (ext ? AttrFlag.EXTENDED_LENGTH : 0);
  out[1] = type;
  if (ext) out.writeUInt16BE(value.length, 2);
  else out[2] = value.length;
  out.set(value, h);
  return out;
}

function u32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

function u32list(list: readonly number[]): Buffer {
  const b = Buffer.allocUnsafe(4 * list.length);
  for (let i = 0; i < list.length; i++) b.writeUInt32BE(list[i]! >>> 0, 4 * i);
  return b;
}

function encodeAsPathValue(path: readonly AsPathSegment[], width: 2 | 4, mapTrans: boolean): Buffer {
  const parts: Buffer[] = [];
  for (const s of path) {
    // Segments of more than 255 ASes are split; empty segments (malformed) are never emitted.
    for (let off = 0; off < s.asns.length; off += 255) {
      const chunk = s.asns.slice(off, off + 255);
      const b = Buffer.allocUnsafe(2 + width * chunk.length);
      b[0] = s.type;
      b[1] = chunk.length;
      for (let i = 0; i < chunk.length; i++) {
        const asn = chunk[i]! >>> 0;
        if (width === 4) b.writeUInt32BE(asn, 2 + 4 * i);
        else b.writeUInt16BE(mapTrans && asn > 0xffff ? AS_TRANS : asn & 0xffff, 2 + 2 * i);
      }
      parts.push(b);
    }
  }
  return Buffer.concat(parts);
}

const RECOGNISED_PASSTHROUGH = new Set<number>([AttrType.EXTENDED_COMMUNITIES]);

/**
 * Encode the attribute list (without MP_REACH/MP_UNREACH) for the session: 4-octet AS_PATH and
 * AGGREGATOR for 4-octet sessions; AS_TRANS + AS4_PATH/AS4_AGGREGATOR for 2-octet sessions.
 * Set `omitNextHop` for MP-only UPDATEs.
 */
export function encodeAttributeList(attrs: PathAttributes, ctx: CodecContext, omitNextHop = false): Buffer[] {
  const out: Buffer[] = [];
  const T = AttrFlag.TRANSITIVE;
  const O = AttrFlag.OPTIONAL;
  if (attrs.origin !== undefined) out.push(attr(T, AttrType.ORIGIN, Buffer.from([attrs.origin])));
  let as4: Buffer | undefined;
  if (attrs.asPath !== undefined) {
    if (ctx.fourOctetAs) out.push(attr(T, AttrType.AS_PATH, encodeAsPathValue(attrs.asPath, 4, false)));
    else {
      out.push(attr(T, AttrType.AS_PATH, encodeAsPathValue(attrs.asPath, 2, true)));
      const big = attrs.asPath.some(
        (s) =>
          s.type !== AsPathSegmentType.AS_CONFED_SEQUENCE &&
          s.type !== AsPathSegmentType.AS_CONFED_SET &&
          s.asns.some((a) => a > 0xffff),
      );
      if (big) {
        const noConfed = attrs.asPath.filter(
          (s) => s.type === AsPathSegmentType.AS_SEQUENCE || s.type === AsPathSegmentType.AS_SET,
        );
        as4 = attr(O | T, AttrType.AS4_PATH, encodeAsPathValue(noConfed, 4, false));
      }
    }
  }
  if (attrs.nextHop !== undefined && !omitNextHop) {
    const nh = parseIp4(attrs.nextHop);
    if (nh === undefined) throw new TypeError(`invalid IPv4 next hop ${attrs.nextHop}`);
    out.push(attr(T, AttrType.NEXT_HOP, u32(nh)));
  }
  if (attrs.med !== undefined) out.push(attr(O, AttrType.MULTI_EXIT_DISC, u32(attrs.med)));
  if (attrs.localPref !== undefined) out.push(attr(T, AttrType.LOCAL_PREF, u32(attrs.localPref)));
  if (attrs.atomicAggregate) out.push(attr(T, AttrType.ATOMIC_AGGREGATE, Buffer.alloc(0)));
  let as4agg: Buffer | undefined;
  if (attrs.aggregator) {
    const { asn, address } = attrs.aggregator;
    if (ctx.fourOctetAs) {
      const v = Buffer.allocUnsafe(8);
      v.writeUInt32BE(asn >>> 0, 0);
      v.writeUInt32BE(address >>> 0, 4);
      out.push(attr(O | T, AttrType.AGGREGATOR, v));
    } else {
      const v = Buffer.allocUnsafe(6);
      v.writeUInt16BE(asn > 0xffff ? AS_TRANS : asn, 0);
      v.writeUInt32BE(address >>> 0, 2);
      out.push(attr(O | T, AttrType.AGGREGATOR, v));
      if (asn > 0xffff) {
        const v4 = Buffer.allocUnsafe(8);
        v4.writeUInt32BE(asn >>> 0, 0);
        v4.writeUInt32BE(address >>> 0, 4);
        as4agg = attr(O | T, AttrType.AS4_AGGREGATOR, v4);
      }
    }
  }
  if (attrs.communities && attrs.communities.length) {
    out.push(attr(O | T, AttrType.COMMUNITIES, u32list(attrs.communities)));
  }
  if (attrs.originatorId !== undefined) out.push(attr(O, AttrType.ORIGINATOR_ID, u32(attrs.originatorId)));
  if (attrs.clusterList && attrs.clusterList.length) {
    out.push(attr(O, AttrType.CLUSTER_LIST, u32list(attrs.clusterList)));
  }
  const unknown = (attrs.unknown ?? [])
    .filter((u) => u.flags & AttrFlag.OPTIONAL && u.flags & AttrFlag.TRANSITIVE)
    .slice()
    .sort((x, y) => x.type - y.type);
  const pushUnknownBelow = (limit: number): void => {
    while (unknown.length && unknown[0]!.type < limit) {
      const u = unknown.shift()!;
      const f = RECOGNISED_PASSTHROUGH.has(u.type) ? u.flags : u.flags | AttrFlag.PARTIAL;
      out.push(attr(f, u.type, u.value));
    }
  };
  pushUnknownBelow(AttrType.AS4_PATH);
  if (as4) out.push(as4);
  if (as4agg) out.push(as4agg);
  pushUnknownBelow(AttrType.LARGE_COMMUNITIES);
  if (attrs.largeCommunities && attrs.largeCommunities.length) {
    const n = attrs.largeCommunities.length - (attrs.largeCommunities.length % 3);
    if (n > 0) out.push(attr(O | T, AttrType.LARGE_COMMUNITIES, u32list(attrs.largeCommunities.slice(0, n))));
  }
  pushUnknownBelow(256);
  return out;
}

/** Encode a path attribute block (no MP attributes) for the session. */
export function encodeAttributes(attrs: PathAttributes, ctx: CodecContext): Buffer {
  return Buffer.concat(encodeAttributeList(attrs, ctx));
}

// ---- prefixes ----------------------------------------------------------------------------------

function prefix4Size(p: Prefix4): number {
  return 1 + ((prefix4Len(p) + 7) >> 3);
}

function writePrefix4(buf: Buffer, o: number, p: Prefix4): number {
  const a = Math.floor(p / 64);
  const len = p - a * 64;
  buf[o++] = len;
  if (len > 0) buf[o++] = a >>> 24;
  if (len > 8) buf[o++] = (a >>> 16) & 255;
  if (len > 16) buf[o++] = (a >>> 8) & 255;
  if (len > 24) buf[o++] = a & 255;
  return o;
}

/** Wire bytes of an IPv6 Prefix6 ("fd00::/64"). */
function prefix6Bytes(p: string): Buffer {
  const parts = prefix6Parts(p);
  if (!parts) throw new TypeError(`invalid IPv6 prefix ${p}`);
  const nb = (parts.len + 7) >> 3;
  const b = Buffer.allocUnsafe(1 + nb);
  b[0] = parts.len;
  b.set(parts.bytes.subarray(0, nb), 1);
  return b;
}

function prefixBytes(p: Prefix): Buffer {
  if (typeof p === 'string') return prefix6Bytes(p);
  const b = Buffer.allocUnsafe(prefix4Size(p));
  writePrefix4(b, 0, p);
  return b;
}

function nlriBlock(prefixes: readonly Prefix[]): Buffer {
  return Buffer.concat(prefixes.map(prefixBytes));
}

function mpNextHopBytes(afi: number, attrs: PathAttributes | null | undefined): Buffer {
  const nh = attrs?.mpNextHop ?? (afi === 1 ? attrs?.nextHop : undefined);
  if (nh === undefined) throw new TypeError('MP_REACH_NLRI needs attrs.mpNextHop');
  if (afi === 1 && !nh.includes(':')) {
    const a = parseIp4(nh);
    if (a === undefined) throw new TypeError(`invalid next hop ${nh}`);
    return u32(a);
  }
  const ll = attrs?.mpNextHopLinkLocal;
  const b = Buffer.alloc(ll ? 32 : 16);
  if (!parseIp6Into(nh, b, 0)) throw new TypeError(`invalid IPv6 next hop ${nh}`);
  if (ll && !parseIp6Into(ll, b, 16)) throw new TypeError(`invalid IPv6 link-local next hop ${ll}`);
  return b;
}

function mpReachHead(afi: number, safi: number, nh: Buffer): Buffer {
  const b = Buffer.allocUnsafe(5 + nh.length);
  b.writeUInt16BE(afi, 0);
  b[2] = safi;
  b[3] = nh.length;
  nh.copy(b, 4);
  b[4 + nh.length] = 0;
  return b;
}

function mpAttr(type: number, value: Buffer): Buffer {
  // Always extended length for MP attributes: their size is not known in advance when packing.
  const out = Buffer.allocUnsafe(4 + value.length);
  out[0] = AttrFlag.OPTIONAL | AttrFlag.EXTENDED_LENGTH;
  out[1] = type;
  out.writeUInt16BE(value.length, 2);
  value.copy(out, 4);
  return out;
}

function updateMessage(withdrawn: Buffer, attrs: Buffer, nlri: Buffer): Buffer {
  const bodyLen = 4 + withdrawn.length + attrs.length + nlri.length;
  const len = HEADER_LENGTH + bodyLen;
  if (len > 65535) throw new RangeError(`UPDATE of ${len} octets cannot be encoded`);
  const buf = Buffer.allocUnsafe(len);
  header(buf, len, MessageType.UPDATE);
  let o = HEADER_LENGTH;
  buf.writeUInt16BE(withdrawn.length, o);
  o += 2;
  withdrawn.copy(buf, o);
  o += withdrawn.length;
  buf.writeUInt16BE(attrs.length, o);
  o += 2;
  attrs.copy(buf, o);
  o += attrs.length;
  nlri.copy(buf, o);
  return buf;
}

/**
 * Encode one UPDATE as given (no splitting; use packUpdates/packWithdrawals for large sets).
 * IPv6 (or ipv4-in-MP) reachability goes in `mpReach` with its next hop in attrs.mpNextHop.
 */
export function encodeUpdate(u: UpdateSpec, ctx: CodecContext): Buffer {
  const withdrawn = nlriBlock(u.withdrawn ?? []);
  const nlri = nlriBlock(u.nlri ?? []);
  const parts: Buffer[] = [];
  if (u.mpReach) {
    const head = mpReachHead(u.mpReach.afi, u.mpReach.safi, mpNextHopBytes(u.mpReach.afi, u.attrs));
    parts.push(mpAttr(AttrType.MP_REACH_NLRI, Buffer.concat([head, nlriBlock(u.mpReach.nlri)])));
  }
  if (u.mpUnreach) {
    const head = Buffer.from([u.mpUnreach.afi >> 8, u.mpUnreach.afi & 255, u.mpUnreach.safi]);
    parts.push(mpAttr(AttrType.MP_UNREACH_NLRI, Buffer.concat([head, nlriBlock(u.mpUnreach.withdrawn)])));
  }
  if (u.attrs) parts.push(...encodeAttributeList(u.attrs, ctx, nlri.length === 0 && !!u.mpReach));
  return updateMessage(withdrawn, Buffer.concat(parts), nlri);
}

export interface PackOptions {
  /** Default ctx.maxMessageSize ?? 4096. */
  maxSize?: number;
  /** Send IPv4 prefixes in MP_REACH (AFI 1) instead of the NLRI field. */
  ipv4InMp?: boolean;
  /** SAFI for MP attributes (default 1, unicast). */
  safi?: number;
  /**
   * packUpdates only: called when the attribute set cannot be sent at all (its encoding leaves
   * no room for a prefix in `maxSize`, e.g. a huge AS_PATH received from a peer and widened to
   * 4 octets). Those prefixes are then sent as withdrawals instead, so the peer never keeps an
   * older version of the route; the speaker may log / count it here. Never throws.
   */
  onOversize?: (prefixes: readonly Prefix[], reason: string) => void;
}

/**
 * Build as few UPDATEs as possible announcing `prefixes` with one attribute set: IPv4 numbers
 * in the NLRI field (attributes encoded once, copied per message), IPv6 strings in MP_REACH_NLRI
 * (next hop attrs.mpNextHop [+ mpNextHopLinkLocal]). Mixed input yields both kinds.
 */
export function packUpdates(
  attrs: PathAttributes,
  prefixes: readonly Prefix[],
  ctx: CodecContext,
  opts: PackOptions = {},
): Buffer[] {
  const max = opts.maxSize ?? ctx.maxMessageSize ?? MAX_MESSAGE_LENGTH;
  const safi = opts.safi ?? 1;
  const v4: Prefix4[] = [];
  const v6: string[] = [];
  for (const p of prefixes) (typeof p === 'number' ? v4 : v6).push(p as never);
  const out: Buffer[] = [];

  const oversize = (list: readonly Prefix[], afi: number, reason: string): void => {
    opts.onOversize?.(list, reason);
    out.push(...packWithdrawals(list, afi, { maxSize: max, ipv4InMp: opts.ipv4InMp, safi }));
  };

  if (v4.length && !opts.ipv4InMp) {
    let block: Buffer | undefined;
    try {
      block = encodeAttributes(attrs, ctx);
    } catch (e) {
      if (!(e instanceof RangeError)) throw e;
    }
    const fixed = HEADER_LENGTH + 4 + (block?.length ?? 65535);
    if (!block || fixed + 5 > max) {
      oversize(v4, 1, `path attributes of ${block?.length ?? '>65535'} octets leave no room for NLRI in ${max}`);
    } else {
      let i = 0;
      while (i < v4.length) {
        let size = 0;
        let j = i;
        while (j < v4.length && fixed + size + prefix4Size(v4[j]!) <= max) size += prefix4Size(v4[j++]!);
        const len = fixed + size;
        const buf = Buffer.allocUnsafe(len);
        header(buf, len, MessageType.UPDATE);
        let o = HEADER_LENGTH;
        buf[o++] = 0;
        buf[o++] = 0;
        buf.writeUInt16BE(block.length, o);
        o += 2;
        block.copy(buf, o);
        o += block.length;
        for (let k = i; k < j; k++) o = writePrefix4(buf, o, v4[k]!);
        out.push(buf);
        i = j;
      }
    }
  }
  const mpGroups: Array<[number, readonly Prefix[]]> = [];
  if (v4.length && opts.ipv4InMp) mpGroups.push([1, v4]);
  if (v6.length) mpGroups.push([2, v6]);
  for (const [afi, list] of mpGroups) {
    let rest: Buffer;
    try {
      rest = Buffer.concat(encodeAttributeList(attrs, ctx, true));
    } catch (e) {
      if (!(e instanceof RangeError)) throw e;
      oversize(list, afi, 'path attributes exceed 65535 octets');
      continue;
    }
    const head = mpReachHead(afi, safi, mpNextHopBytes(afi, attrs));
    const fixed = HEADER_LENGTH + 4 + 4 + head.length + rest.length;
    if (fixed + 17 > max) {
      oversize(list, afi, `path attributes of ${rest.length} octets leave no room for NLRI in ${max}`);
      continue;
    }
    const encoded = list.map(prefixBytes);
    let i = 0;
    while (i < encoded.length) {
      let size = 0;
      let j = i;
      while (j < encoded.length && fixed + size + encoded[j]!.length <= max) size += encoded[j++]!.length;
      const mp = mpAttr(AttrType.MP_REACH_NLRI, Buffer.concat([head, ...encoded.slice(i, j)]));
      out.push(updateMessage(Buffer.alloc(0), Buffer.concat([mp, rest]), Buffer.alloc(0)));
      i = j;
    }
  }
  return out;
}

/**
 * Withdraw `prefixes` in as few UPDATEs as possible: IPv4 numbers in the withdrawn routes field
 * (or MP_UNREACH with opts.ipv4InMp), IPv6 strings in MP_UNREACH_NLRI. `afi` is the family of
 * the input (used for an empty list: nothing is sent).
 */
export function packWithdrawals(prefixes: readonly Prefix[], afi: number, opts: PackOptions = {}): Buffer[] {
  void afi;
  const max = opts.maxSize ?? MAX_MESSAGE_LENGTH;
  const safi = opts.safi ?? 1;
  const v4: Prefix4[] = [];
  const v6: string[] = [];
  for (const p of prefixes) (typeof p === 'number' ? v4 : v6).push(p as never);
  const out: Buffer[] = [];
  if (v4.length && !opts.ipv4InMp) {
    const fixed = HEADER_LENGTH + 4;
    let i = 0;
    while (i < v4.length) {
      let size = 0;
      let j = i;
      while (j < v4.length && fixed + size + prefix4Size(v4[j]!) <= max) size += prefix4Size(v4[j++]!);
      const len = fixed + size;
      const buf = Buffer.allocUnsafe(len);
      header(buf, len, MessageType.UPDATE);
      let o = HEADER_LENGTH;
      buf.writeUInt16BE(size, o);
      o += 2;
      for (let k = i; k < j; k++) o = writePrefix4(buf, o, v4[k]!);
      buf[o++] = 0;
      buf[o++] = 0;
      out.push(buf);
      i = j;
    }
  }
  const groups: Array<[number, readonly Prefix[]]> = [];
  if (v4.length && opts.ipv4InMp) groups.push([1, v4]);
  if (v6.length) groups.push([2, v6]);
  for (const [gafi, list] of groups) {
    const fixed = HEADER_LENGTH + 4 + 4 + 3;
    const encoded = list.map(prefixBytes);
    let i = 0;
    while (i < encoded.length) {
      let size = 0;
      let j = i;
      while (j < encoded.length && fixed + size + encoded[j]!.length <= max) size += encoded[j++]!.length;
      const v = Buffer.concat([Buffer.from([gafi >> 8, gafi & 255, safi]), ...encoded.slice(i, j)]);
      out.push(updateMessage(Buffer.alloc(0), mpAttr(AttrType.MP_UNREACH_NLRI, v), Buffer.alloc(0)));
      i = j;
    }
  }
  return out;
}

/** RFC 4724 End-of-RIB marker for a family. */
export function encodeEndOfRib(afi: number, safi: number): Buffer {
  if (afi === 1 && safi === 1) return updateMessage(Buffer.alloc(0), Buffer.alloc(0), Buffer.alloc(0));
  const v = Buffer.from([afi >> 8, afi & 255, safi]);
  return updateMessage(Buffer.alloc(0), attr(AttrFlag.OPTIONAL, AttrType.MP_UNREACH_NLRI, v), Buffer.alloc(0));
}
