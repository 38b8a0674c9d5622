// Raw rtnetlink encoding and decoding for the few message kinds Petrel needs (routes, links,
// addresses, neighbours/FDB). The `netlink` package gives us the socket; we write the messages
// ourselves so that thousands of them go into one sendmsg() (one datagram), which is what makes a
// 50,000-route load as fast as `ip -batch`.
import { isIPv4 } from 'node:net';
import { canonicalCidr, formatIp, parseIp } from '../datastore/net.js';

export const AF_INET = 2;
export const AF_INET6 = 10;
export const AF_BRIDGE = 7;

export const NLMSG_NOOP = 1;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;

export const NLM_F_REQUEST = 0x1;
export const NLM_F_MULTI = 0x2;
export const NLM_F_ACK = 0x4;
export const NLM_F_DUMP = 0x300;
export const NLM_F_REPLACE = 0x100;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;

export const RTM_NEWLINK = 16;
export const RTM_DELLINK = 17;
export const RTM_GETLINK = 18;
export const RTM_NEWADDR = 20;
export const RTM_DELADDR = 21;
export const RTM_GETADDR = 22;
export const RTM_NEWROUTE = 24;
export const RTM_DELROUTE = 25;
export const RTM_GETROUTE = 26;
export const RTM_NEWNEIGH = 28;
export const RTM_DELNEIGH = 29;
export const RTM_GETNEIGH = 30;

export const RTA_DST = 1;
export const RTA_OIF = 4;
export const RTA_GATEWAY = 5;
export const RTA_PRIORITY = 6;
export const RTA_PREFSRC = 7;
export const RTA_METRICS = 8;
export const RTA_TABLE = 15;
export const RTAX_MTU = 2;

export const RTN_UNICAST = 1;
export const RTN_LOCAL = 2;
export const RTN_BLACKHOLE = 6;
export const RTN_UNREACHABLE = 7;

export const RT_SCOPE_UNIVERSE = 0;
export const RT_SCOPE_LINK = 253;
export const RT_TABLE_MAIN = 254;
export const RTNH_F_ONLINK = 4;

export const IFLA_ADDRESS = 1;
export const IFLA_IFNAME = 3;
export const IFLA_MTU = 4;
export const IFLA_LINK = 5;
export const IFLA_LINKINFO = 18;
export const IFLA_INFO_KIND = 1;
export const IFLA_INFO_DATA = 2;
export const IFF_UP = 0x1;
export const IFF_RUNNING = 0x40;
export const IFF_LOWER_UP = 0x10000;

export const IFLA_VXLAN_ID = 1;
export const IFLA_VXLAN_LINK = 3;
export const IFLA_VXLAN_LOCAL = 4;
export const IFLA_VXLAN_LEARNING = 7;
export const IFLA_VXLAN_PORT = 15;
export const IFLA_VXLAN_LOCAL6 = 17;

export const IFA_ADDRESS = 1;
export const IFA_LOCAL = 2;

export const NDA_DST = 1;
export const NDA_LLADDR = 2;
export const NUD_PERMANENT = 0x80;
export const NTF_SELF = 0x02;

export const RTNLGRP_LINK = 1;
export const RTNLGRP_IPV4_ROUTE = 7;
export const RTNLGRP_IPV6_ROUTE = 11;

export const NLA_F_NESTED = 0x8000;

/** A growable buffer that netlink messages are appended to, one after another. */
export class NlWriter {
  buf: Buffer;
  len = 0;
  constructor(size = 64 * 1024) {
    this.buf = Buffer.allocUnsafe(size);
  }
  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const b = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(b, 0, 0, this.len);
    this.buf = b;
  }
  /** Starts a message; returns its offset for `end()`. */
  begin(type: number, flags: number, seq: number, pid = 0): number {
    this.ensure(16);
    const o = this.len;
    this.buf.writeUInt32LE(0, o);
    this.buf.writeUInt16LE(type, o + 4);
    this.buf.writeUInt16LE(flags, o + 6);
    this.buf.writeUInt32LE(seq >>> 0, o + 8);
    this.buf.writeUInt32LE(pid >>> 0, o + 12);
    this.len += 16;
    return o;
  }
  end(start: number): void {
    this.buf.writeUInt32LE(this.len - start, start);
    this.align();
  }
  align(): void {
    const pad = (4 - (this.len & 3)) & 3;
    if (pad) {
      this.ensure(pad);
      this.buf.fill(0, this.len, this.len + pad);
      this.len += pad;
    }
  }
  bytes(b: Uint8Array | number[]): void {
    this.ensure(b.length);
    for (let i = 0; i < b.length; i++) this.buf[this.len + i] = b[i];
    this.len += b.length;
  }
  u8(v: number): void {
    this.ensure(1);
    this.buf[this.len++] = v & 255;
  }
  u16(v: number): void {
    this.ensure(2);
    this.buf.writeUInt16LE(v, this.len);
    this.len += 2;
  }
  u32(v: number): void {
    this.ensure(4);
    this.buf.writeUInt32LE(v >>> 0, this.len);
    this.len += 4;
  }
  zero(n: number): void {
    this.ensure(n);
    this.buf.fill(0, this.len, this.len + n);
    this.len += n;
  }
  attr(type: number, data: Uint8Array | number[]): void {
    this.ensure(4 + data.length + 3);
    this.buf.writeUInt16LE(4 + data.length, this.len);
    this.buf.writeUInt16LE(type, this.len + 2);
    this.len += 4;
    this.bytes(data);
    this.align();
  }
  /** An address attribute from its text; IPv4 written straight into the buffer. */
  attrIp(type: number, ip: string): void {
    if (!ip.includes(':')) {
      this.ensure(8);
      const b = this.buf;
      let o = this.len;
      b.writeUInt16LE(8, o);
      b.writeUInt16LE(type, o + 2);
      o += 4;
      let v = 0;
      let n = 0;
      for (let i = 0; i < ip.length; i++) {
        const c = ip.charCodeAt(i);
        if (c === 46) {
          b[o + n++] = v;
          v = 0;
        } else v = v * 10 + (c - 48);
      }
      b[o + n++] = v;
      if (n === 4 && v <= 255) {
        this.len += 8;
        return;
      }
    }
    this.attr(type, ipBytes(ip));
  }
  attrU32(type: number, v: number): void {
    this.ensure(8);
    this.buf.writeUInt16LE(8, this.len);
    this.buf.writeUInt16LE(type, this.len + 2);
    this.buf.writeUInt32LE(v >>> 0, this.len + 4);
    this.len += 8;
  }
  attrU8(type: number, v: number): void {
    this.attr(type, [v & 255]);
  }
  attrStr(type: number, s: string): void {
    this.attr(type, Buffer.from(s + '\0', 'utf8'));
  }
  nestBegin(type: number): number {
    this.ensure(4);
    const o = this.len;
    this.buf.writeUInt16LE(0, o);
    this.buf.writeUInt16LE(type | NLA_F_NESTED, o + 2);
    this.len += 4;
    return o;
  }
  nestEnd(o: number): void {
    this.buf.writeUInt16LE(this.len - o, o);
  }
  /** The bytes written (a view, valid until the next write). */
  view(): Buffer {
    return this.buf.subarray(0, this.len);
  }
  reset(): void {
    this.len = 0;
  }
}

/** Dotted-quad text to its four octets (undefined when not a plain IPv4 address). */
export function v4Octets(ip: string): number[] | undefined {
  const a = ip.split('.');
  if (a.length !== 4) return undefined;
  const out = new Array<number>(4);
  for (let i = 0; i < 4; i++) {
    const t = a[i];
    if (t.length === 0 || t.length > 3) return undefined;
    let v = 0;
    for (let j = 0; j < t.length; j++) {
      const c = t.charCodeAt(j) - 48;
      if (c < 0 || c > 9) return undefined;
      v = v * 10 + c;
    }
    if (v > 255 || (t.length > 1 && t[0] === '0')) return undefined;
    out[i] = v;
  }
  return out;
}

/** Address text to its network-order bytes. */
export function ipBytes(ip: string): number[] {
  const v4 = v4Octets(ip);
  if (v4) return v4;
  const p = parseIp(ip);
  if (!p) throw new Error(`invalid IP address ${JSON.stringify(ip)}`);
  const n = p.version === 4 ? 4 : 16;
  const out = new Array<number>(n);
  let v = p.addr;
  for (let i = n - 1; i >= 0; i--) {
    out[i] = Number(v & 255n);
    v >>= 8n;
  }
  return out;
}

export function ipFromBytes(b: Buffer, off: number, len: number): string {
  if (len === 4) return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;
  // IPv6, RFC 5952 text via the shared formatter
  let v = 0n;
  for (let i = 0; i < 16; i++) v = (v << 8n) | BigInt(b[off + i]);
  return formatIp(6, v);
}

export function macBytes(mac: string): number[] {
  const parts = mac.split(/[:-]/);
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{1,2}$/.test(p))) throw new Error(`invalid MAC address ${JSON.stringify(mac)}`);
  return parts.map((p) => parseInt(p, 16));
}

export function macFromBytes(b: Buffer, off: number, len: number): string {
  const out: string[] = [];
  for (let i = 0; i < len; i++) out.push(b[off + i].toString(16).padStart(2, '0'));
  return out.join(':');
}

/** One parsed netlink message: header plus a view of its payload. */
export interface NlMsg {
  type: number;
  flags: number;
  seq: number;
  pid: number;
  /** the whole datagram */
  buf: Buffer;
  /** payload offset and end inside `buf` */
  off: number;
  end: number;
}

/** Splits a datagram into its messages. */
export function parseMessages(buf: Buffer): NlMsg[] {
  const out: NlMsg[] = [];
  let o = 0;
  while (o + 16 <= buf.length) {
    const len = buf.readUInt32LE(o);
    if (len < 16 || o + len > buf.length) break;
    out.push({
      type: buf.readUInt16LE(o + 4),
      flags: buf.readUInt16LE(o + 6),
      seq: buf.readUInt32LE(o + 8),
      pid: buf.readUInt32LE(o + 12),
      buf,
      off: o + 16,
      end: o + len,
    });
    o += (len + 3) & ~3;
  }
  return out;
}

/** Calls `fn(type, off, len)` for each attribute in [off, end). */
export function forEachAttr(buf: Buffer, off: number, end: number, fn: (type: number, off: number, len: number) => void): void {
  let o = off;
  while (o + 4 <= end) {
    const len = buf.readUInt16LE(o);
    if (len < 4 || o + len > end) break;
    fn(buf.readUInt16LE(o + 2) & 0x3fff, o + 4, len - 4);
    o += (len + 3) & ~3;
  }
}

/** The errno of an NLMSG_ERROR message (0 = ACK) and the seq of the request it answers. */
export function parseError(m: NlMsg): { errno: number; seq: number } {
  const err = m.buf.readInt32LE(m.off);
  const seq = m.buf.readUInt32LE(m.off + 4 + 8);
  return { errno: -err, seq };
}

// ------------------------------------------------------------------------------------------
// Routes

export type RouteType = 'unicast' | 'blackhole' | 'unreachable';

/** A route as the kernel holds it, decoded from RTM_NEWROUTE. */
export interface KernelRoute {
  family: number;
  /** canonical CIDR */
  dst: string;
  table: number;
  protocol: number;
  /** RTN_* */
  rtype: number;
  scope: number;
  flags: number;
  oif?: number;
  gateway?: string;
  prefsrc?: string;
  priority: number;
  mtu?: number;
  tos: number;
  /** multipath route (RTA_MULTIPATH): never ours */
  multipath?: boolean;
}

/** Reads the rtmsg header's protocol byte without a full decode (cheap event filtering). */
export function routeProtocolOf(m: NlMsg): number {
  return m.buf[m.off + 5];
}

export function decodeRoute(m: NlMsg): KernelRoute | undefined {
  const b = m.buf;
  const o = m.off;
  if (m.end - o < 12) return undefined;
  const family = b[o];
  if (family !== AF_INET && family !== AF_INET6) return undefined;
  const dstLen = b[o + 1];
  const r: KernelRoute = {
    family,
    dst: '',
    tos: b[o + 3],
    table: b[o + 4],
    protocol: b[o + 5],
    scope: b[o + 6],
    rtype: b[o + 7],
    flags: b.readUInt32LE(o + 8),
    priority: 0,
  };
  let dst: string | undefined;
  const alen = family === AF_INET ? 4 : 16;
  forEachAttr(b, o + 12, m.end, (t, ao, al) => {
    switch (t) {
      case RTA_DST:
        if (al === alen) dst = ipFromBytes(b, ao, al);
        break;
      case RTA_OIF:
        r.oif = b.readUInt32LE(ao);
        break;
      case RTA_GATEWAY:
        if (al === alen) r.gateway = ipFromBytes(b, ao, al);
        break;
      case RTA_PREFSRC:
        if (al === alen) r.prefsrc = ipFromBytes(b, ao, al);
        break;
      case RTA_PRIORITY:
        r.priority = b.readUInt32LE(ao);
        break;
      case RTA_TABLE:
        r.table = b.readUInt32LE(ao);
        break;
      case 9: // RTA_MULTIPATH
        r.multipath = true;
        break;
      case RTA_METRICS:
        forEachAttr(b, ao, ao + al, (mt, mo) => {
          if (mt === RTAX_MTU) r.mtu = b.readUInt32LE(mo);
        });
        break;
    }
  });
  if (dst === undefined) dst = family === AF_INET ? '0.0.0.0' : '::';
  r.dst = `${dst}/${dstLen}`;
  return r;
}

/** What one route message carries (already resolved to an interface index). */
export interface RouteSpec {
  family: number;
  dst: string;
  table: number;
  protocol: number;
  rtype: number;
  scope: number;
  flags: number;
  oif?: number;
  gateway?: string;
  prefsrc?: string;
  priority?: number;
  mtu?: number;
  tos?: number;
}

export function encodeRoute(w: NlWriter, type: number, flags: number, seq: number, r: RouteSpec): void {
  const slash = r.dst.indexOf('/');
  const addr = r.dst.slice(0, slash);
  const plen = Number(r.dst.slice(slash + 1));
  const start = w.begin(type, flags, seq);
  w.u8(r.family);
  w.u8(plen);
  w.u8(0); // src_len
  w.u8(r.tos ?? 0);
  w.u8(r.table < 256 ? r.table : 0);
  w.u8(r.protocol);
  w.u8(r.scope);
  w.u8(r.rtype);
  w.u32(r.flags);
  w.attrIp(RTA_DST, addr);
  if (r.table >= 256) w.attrU32(RTA_TABLE, r.table);
  if (r.priority !== undefined) w.attrU32(RTA_PRIORITY, r.priority);
  if (r.oif !== undefined) w.attrU32(RTA_OIF, r.oif);
  if (r.gateway !== undefined) w.attrIp(RTA_GATEWAY, r.gateway);
  if (r.prefsrc !== undefined) w.attrIp(RTA_PREFSRC, r.prefsrc);
  if (r.mtu !== undefined) {
    const n = w.nestBegin(RTA_METRICS);
    w.attrU32(RTAX_MTU, r.mtu);
    w.nestEnd(n);
  }
  w.end(start);
}

export function encodeRouteDump(w: NlWriter, seq: number, family: number): void {
  const s = w.begin(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, seq);
  w.u8(family);
  w.zero(11);
  w.end(s);
}

// ------------------------------------------------------------------------------------------
// Links, addresses, neighbours

export interface KernelLink {
  index: number;
  name: string;
  flags: number;
  mtu: number;
  mac?: string;
  kind?: string;
  /** vxlan details when kind === 'vxlan' */
  vxlan?: { vni?: number; port?: number; local?: string; link?: number; learning?: boolean };
  /** IFLA_LINK: the peer/parent index */
  link?: number;
}

export function decodeLink(m: NlMsg): KernelLink | undefined {
  const b = m.buf;
  const o = m.off;
  if (m.end - o < 16) return undefined;
  const l: KernelLink = { index: b.readInt32LE(o + 4), flags: b.readUInt32LE(o + 8), name: '', mtu: 0 };
  forEachAttr(b, o + 16, m.end, (t, ao, al) => {
    switch (t) {
      case IFLA_IFNAME:
        l.name = b.toString('utf8', ao, ao + al).replace(/\0.*$/s, '');
        break;
      case IFLA_MTU:
        l.mtu = b.readUInt32LE(ao);
        break;
      case IFLA_ADDRESS:
        if (al === 6) l.mac = macFromBytes(b, ao, al);
        break;
      case IFLA_LINK:
        l.link = b.readUInt32LE(ao);
        break;
      case IFLA_LINKINFO:
        forEachAttr(b, ao, ao + al, (it, io, il) => {
          if (it === IFLA_INFO_KIND) l.kind = b.toString('utf8', io, io + il).replace(/\0.*$/s, '');
          if (it === IFLA_INFO_DATA) {
            const vx: NonNullable<KernelLink['vxlan']> = {};
            forEachAttr(b, io, io + il, (vt, vo, vl) => {
              if (vt === IFLA_VXLAN_ID) vx.vni = b.readUInt32LE(vo);
              else if (vt === IFLA_VXLAN_PORT) vx.port = b.readUInt16BE(vo);
              else if (vt === IFLA_VXLAN_LOCAL && vl === 4) vx.local = ipFromBytes(b, vo, 4);
              else if (vt === IFLA_VXLAN_LOCAL6 && vl === 16) vx.local = ipFromBytes(b, vo, 16);
              else if (vt === IFLA_VXLAN_LINK) vx.link = b.readUInt32LE(vo);
              else if (vt === IFLA_VXLAN_LEARNING) vx.learning = b[vo] !== 0;
            });
            l.vxlan = vx;
          }
        });
        break;
    }
  });
  return l;
}

export function encodeLinkDump(w: NlWriter, seq: number): void {
  const s = w.begin(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, seq);
  w.u8(0);
  w.zero(15);
  w.end(s);
}

/** ifinfomsg header. */
export function ifinfo(w: NlWriter, index: number, flags: number, change: number): void {
  w.u8(0);
  w.u8(0);
  w.u16(0);
  w.u32(index >>> 0);
  w.u32(flags);
  w.u32(change);
}

export interface KernelAddr {
  family: number;
  index: number;
  prefixLen: number;
  address: string;
}

export function decodeAddr(m: NlMsg): KernelAddr | undefined {
  const b = m.buf;
  const o = m.off;
  if (m.end - o < 8) return undefined;
  const family = b[o];
  const a: KernelAddr = { family, prefixLen: b[o + 1], index: b.readUInt32LE(o + 4), address: '' };
  let local: string | undefined;
  let address: string | undefined;
  const alen = family === AF_INET ? 4 : 16;
  forEachAttr(b, o + 8, m.end, (t, ao, al) => {
    if (al !== alen) return;
    if (t === IFA_LOCAL) local = ipFromBytes(b, ao, al);
    if (t === IFA_ADDRESS) address = ipFromBytes(b, ao, al);
  });
  a.address = local ?? address ?? '';
  return a.address ? a : undefined;
}

export function encodeAddrDump(w: NlWriter, seq: number, family: number): void {
  const s = w.begin(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, seq);
  w.u8(family);
  w.zero(7);
  w.end(s);
}

export function encodeAddr(w: NlWriter, type: number, flags: number, seq: number, index: number, cidr: string): void {
  const [addr, plen] = cidr.split('/');
  const family = isIPv4(addr) ? AF_INET : AF_INET6;
  const s = w.begin(type, flags, seq);
  w.u8(family);
  w.u8(Number(plen));
  w.u8(family === AF_INET6 ? 0x02 : 0); // IFA_F_NODAD for v6
  w.u8(0);
  w.u32(index);
  w.attr(IFA_LOCAL, ipBytes(addr));
  w.attr(IFA_ADDRESS, ipBytes(addr));
  w.end(s);
}

export interface NeighSpec {
  family: number;
  index: number;
  dst: string;
  lladdr: string;
  state: number;
  flags: number;
}

export function encodeNeigh(w: NlWriter, type: number, flags: number, seq: number, n: NeighSpec): void {
  const s = w.begin(type, flags, seq);
  w.u8(n.family);
  w.u8(0);
  w.u16(0);
  w.u32(n.index);
  w.u16(n.state);
  w.u8(n.flags);
  w.u8(0);
  w.attr(NDA_DST, ipBytes(n.dst));
  w.attr(NDA_LLADDR, macBytes(n.lladdr));
  w.end(s);
}

export interface KernelNeigh {
  family: number;
  index: number;
  state: number;
  flags: number;
  dst?: string;
  lladdr?: string;
}

export function decodeNeigh(m: NlMsg): KernelNeigh | undefined {
  const b = m.buf;
  const o = m.off;
  if (m.end - o < 12) return undefined;
  const n: KernelNeigh = { family: b[o], index: b.readInt32LE(o + 4), state: b.readUInt16LE(o + 8), flags: b[o + 10] };
  forEachAttr(b, o + 12, m.end, (t, ao, al) => {
    if (t === NDA_DST && (al === 4 || al === 16)) n.dst = ipFromBytes(b, ao, al);
    if (t === NDA_LLADDR && al === 6) n.lladdr = macFromBytes(b, ao, al);
  });
  return n;
}

export function encodeNeighDump(w: NlWriter, seq: number, family: number): void {
  const s = w.begin(RTM_GETNEIGH, NLM_F_REQUEST | NLM_F_DUMP, seq);
  w.u8(family);
  w.zero(11);
  w.end(s);
}

/** Canonical CIDR text, tolerant: a bare address becomes /32 or /128. */
export function canon(cidr: string): string {
  return canonicalCidr(cidr);
}
