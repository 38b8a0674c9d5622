// The malformed-input table as data: each case is a complete wire message and the outcome
// RFC 4271 / RFC 7606 / RFC 4760 / RFC 6793 / RFC 7313 prescribe. Used by malformed.test.ts (codec
// level); session-level tests can replay the same cases over TCP and expect the NOTIFICATION
// (`notify`) on the wire, or the session staying up (`twa`, `discard`, `ok`).
import type { CodecContext } from './types.js';

export const CTX4: CodecContext = { fourOctetAs: true };
const CTX2: CodecContext = { fourOctetAs: false };
const EBGP: CodecContext = { fourOctetAs: true, external: true };

const b = (...x: number[]): Buffer => Buffer.from(x);
export function wire(type: number, body: Buffer, opts: { len?: number; marker?: Buffer } = {}): Buffer {
  const h = Buffer.alloc(19, 0xff);
  if (opts.marker) opts.marker.copy(h, 0);
  h.writeUInt16BE(opts.len ?? 19 + body.length, 16);
  h[18] = type;
  return Buffer.concat([h, body]);
}
/** attribute: flags, type, value (extended length when flags has 0x10) */
export function A(flags: number, type: number, value: Buffer | number[]): Buffer {
  const v = Buffer.isBuffer(value) ? value : Buffer.from(value);
  return flags & 0x10
    ? Buffer.concat([b(flags, type, v.length >> 8, v.length & 255), v])
    : Buffer.concat([b(flags, type, v.length), v]);
}
function updBody(attrs: Buffer[], nlri: Buffer = NLRI, withdrawn: Buffer = Buffer.alloc(0)): Buffer {
  const a = Buffer.concat(attrs);
  return Buffer.concat([b(withdrawn.length >> 8, withdrawn.length & 255), withdrawn, b(a.length >> 8, a.length & 255), a, nlri]);
}
const upd = (attrs: Buffer[], nlri?: Buffer, withdrawn?: Buffer): Buffer => wire(2, updBody(attrs, nlri, withdrawn));

const NLRI = b(24, 10, 1, 2);
const ORIGIN = A(0x40, 1, [0]);
const ASP4 = A(0x40, 2, [2, 1, 0, 0, 0xfd, 0xe9]); // 4-octet: AS_SEQUENCE 65001
const ASP2 = A(0x40, 2, [2, 1, 0xfd, 0xe9]); // 2-octet
const NH = A(0x40, 3, [10, 0, 0, 1]);
const BASE = [ORIGIN, ASP4, NH];
const MP6 = (nhLen: number, nlri: number[], flags = 0x80): Buffer =>
  A(flags, 14, [0, 2, 1, nhLen, ...Buffer.alloc(nhLen, 0xfd), 0, ...nlri]);

function openBody(o: { version?: number; as?: number; hold?: number; id?: number; opt?: Buffer; optLen?: number }): Buffer {
  const opt = o.opt ?? Buffer.alloc(0);
  const body = Buffer.alloc(10);
  body[0] = o.version ?? 4;
  body.writeUInt16BE(o.as ?? 65001, 1);
  body.writeUInt16BE(o.hold ?? 90, 3);
  body.writeUInt32BE(o.id ?? 0x0a000001, 5);
  body[9] = o.optLen ?? opt.length;
  return Buffer.concat([body, opt]);
}
const capParam = (...caps: Buffer[]): Buffer => {
  const c = Buffer.concat(caps);
  return Buffer.concat([b(2, c.length), c]);
};

export type Expect =
  | { notify: [number, number, string?] }
  | { twa: true }
  | { discard: number }
  | { ok: true };

export interface Row {
  name: string;
  msg: Buffer;
  ctx?: CodecContext;
  expect: Expect;
}

const rrBorrLong = wire(5, b(0, 1, 1, 1, 0));

export const MALFORMED_CASES: Row[] = [
  // ---- message header (RFC 4271 §6.1)
  { name: 'marker not all ones', msg: wire(4, Buffer.alloc(0), { marker: b(0xff, 0xfe) }), expect: { notify: [1, 1] } },
  { name: 'length 18 < 19', msg: wire(4, Buffer.alloc(0), { len: 18 }), expect: { notify: [1, 2, '0012'] } },
  { name: 'length 4097 > 4096', msg: wire(2, Buffer.alloc(4078), { len: 4097 }), expect: { notify: [1, 2, '1001'] } },
  { name: 'type 0', msg: wire(0, Buffer.alloc(0)), expect: { notify: [1, 3, '00'] } },
  { name: 'type 6 unknown', msg: wire(6, Buffer.alloc(4)), expect: { notify: [1, 3, '06'] } },
  { name: 'KEEPALIVE of length 20', msg: wire(4, b(0)), expect: { notify: [1, 2, '0014'] } },
  { name: 'OPEN shorter than 29', msg: wire(1, Buffer.alloc(9)), expect: { notify: [1, 2, '001c'] } },
  { name: 'UPDATE shorter than 23', msg: wire(2, b(0, 0, 0)), expect: { notify: [1, 2, '0016'] } },
  { name: 'NOTIFICATION shorter than 21', msg: wire(3, b(6)), expect: { notify: [1, 2, '0014'] } },
  { name: 'ROUTE-REFRESH shorter than 23', msg: wire(5, b(0, 1, 0)), expect: { notify: [1, 2, '0016'] } },
  {
    name: 'ROUTE-REFRESH BoRR not 4 octets (RFC 7313)',
    msg: rrBorrLong,
    expect: { notify: [7, 1, rrBorrLong.toString('hex')] },
  },
  // ---- OPEN (RFC 4271 §6.2, RFC 5492, RFC 6793, RFC 7607)
  { name: 'OPEN version 3', msg: wire(1, openBody({ version: 3 })), expect: { notify: [2, 1, '0004'] } },
  { name: 'OPEN hold time 1', msg: wire(1, openBody({ hold: 1 })), expect: { notify: [2, 6] } },
  { name: 'OPEN hold time 2', msg: wire(1, openBody({ hold: 2 })), expect: { notify: [2, 6] } },
  { name: 'OPEN hold time 0 accepted', msg: wire(1, openBody({ hold: 0 })), expect: { ok: true } },
  { name: 'OPEN BGP identifier 0', msg: wire(1, openBody({ id: 0 })), expect: { notify: [2, 3] } },
  { name: 'OPEN my AS 0', msg: wire(1, openBody({ as: 0 })), expect: { notify: [2, 2] } },
  {
    name: 'OPEN optional parameters length beyond message',
    msg: wire(1, openBody({ optLen: 8, opt: capParam(b(2, 0)) })),
    expect: { notify: [1, 2] },
  },
  {
    name: 'OPEN unsupported optional parameter (type 1)',
    msg: wire(1, openBody({ opt: b(1, 2, 0, 0) })),
    expect: { notify: [2, 4] },
  },
  {
    name: 'OPEN capability overruns its parameter',
    msg: wire(1, openBody({ opt: b(2, 3, 65, 4, 0) })),
    expect: { notify: [2, 0] },
  },
  {
    name: 'OPEN multiprotocol capability of length 3',
    msg: wire(1, openBody({ opt: capParam(b(1, 3, 0, 1, 1)) })),
    expect: { notify: [2, 0] },
  },
  {
    name: 'OPEN 4-octet AS capability carrying AS 0',
    msg: wire(1, openBody({ opt: capParam(b(65, 4, 0, 0, 0, 0)) })),
    expect: { notify: [2, 2] },
  },
  {
    name: 'OPEN unknown capability is ignored, not an error',
    msg: wire(1, openBody({ opt: capParam(b(73, 3, 1, 2, 3), b(2, 0)) })),
    expect: { ok: true },
  },
  // ---- UPDATE structure (RFC 4271 §6.3, RFC 7606 §4, §5.3)
  {
    name: 'withdrawn routes length overruns message',
    msg: wire(2, b(0, 50, 24, 10, 0, 0, 0, 0)),
    expect: { notify: [3, 1] },
  },
  {
    name: 'total attribute length overruns message',
    msg: wire(2, b(0, 0, 0, 40, 0x40, 1, 1, 0)),
    expect: { notify: [3, 1] },
  },
  { name: 'withdrawn prefix length 33', msg: upd([], b(), b(33, 10, 0, 0, 0, 0)), expect: { notify: [3, 10] } },
  { name: 'NLRI prefix length 33', msg: upd(BASE, b(33, 10, 0, 0, 0, 0)), expect: { notify: [3, 10] } },
  { name: 'truncated NLRI (/24 with 2 octets)', msg: upd(BASE, b(24, 10, 1)), expect: { notify: [3, 10] } },
  { name: 'truncated withdrawn prefix', msg: upd([], b(), b(16, 10)), expect: { notify: [3, 10] } },
  {
    name: 'attribute length overruns the attribute block',
    msg: upd([ORIGIN, ASP4, b(0x40, 3, 9, 10, 0, 0, 1)]),
    expect: { twa: true },
  },
  { name: 'attribute header truncated (2 octets left)', msg: upd([...BASE, b(0x80, 4)]), expect: { twa: true } },
  // ---- attributes (RFC 7606 §3, §7)
  { name: 'ORIGIN with the optional flag', msg: upd([A(0xc0, 1, [0]), ASP4, NH]), expect: { twa: true } },
  { name: 'ORIGIN of length 2', msg: upd([A(0x40, 1, [0, 0]), ASP4, NH]), expect: { twa: true } },
  { name: 'ORIGIN value 3', msg: upd([A(0x40, 1, [3]), ASP4, NH]), expect: { twa: true } },
  { name: 'AS_PATH segment type 5', msg: upd([ORIGIN, A(0x40, 2, [5, 1, 0, 0, 0, 1]), NH]), expect: { twa: true } },
  { name: 'AS_PATH zero-length segment', msg: upd([ORIGIN, A(0x40, 2, [2, 0]), NH]), expect: { twa: true } },
  {
    name: 'AS_PATH segment overruns attribute',
    msg: upd([ORIGIN, A(0x40, 2, [2, 3, 0, 0, 0, 1]), NH]),
    expect: { twa: true },
  },
  { name: 'AS_PATH one trailing octet', msg: upd([ORIGIN, A(0x40, 2, [2, 1, 0, 0, 0, 1, 2]), NH]), expect: { twa: true } },
  { name: 'AS_PATH with the optional flag', msg: upd([ORIGIN, A(0xc0, 2, [2, 1, 0, 0, 0, 1]), NH]), expect: { twa: true } },
  {
    name: 'AS_PATH 2-octet width on a 2-octet session with odd length',
    msg: upd([ORIGIN, A(0x40, 2, [2, 2, 0, 1, 0]), NH]),
    ctx: CTX2,
    expect: { twa: true },
  },
  {
    name: 'AS_PATH confederation segment from an external peer',
    msg: upd([ORIGIN, A(0x40, 2, [3, 1, 0, 0, 0, 1, 2, 1, 0, 0, 0, 2]), NH]),
    ctx: EBGP,
    expect: { twa: true },
  },
  { name: 'NEXT_HOP of length 5', msg: upd([ORIGIN, ASP4, A(0x40, 3, [10, 0, 0, 1, 0])]), expect: { twa: true } },
  { name: 'NEXT_HOP 0.0.0.0', msg: upd([ORIGIN, ASP4, A(0x40, 3, [0, 0, 0, 0])]), expect: { twa: true } },
  { name: 'NEXT_HOP multicast 224.0.0.1', msg: upd([ORIGIN, ASP4, A(0x40, 3, [224, 0, 0, 1])]), expect: { twa: true } },
  { name: 'NEXT_HOP loopback 127.0.0.1', msg: upd([ORIGIN, ASP4, A(0x40, 3, [127, 0, 0, 1])]), expect: { twa: true } },
  {
    name: 'NEXT_HOP 0.0.0.0 with only MP_REACH NLRI is ignored (RFC 4760 §3)',
    msg: upd([ORIGIN, ASP4, A(0x40, 3, [0, 0, 0, 0]), MP6(16, [64, 0xfd, 0, 0, 0, 0, 0, 0, 1])], b()),
    expect: { discard: 3 },
  },
  { name: 'MED of length 2', msg: upd([...BASE, A(0x80, 4, [0, 1])]), expect: { twa: true } },
  { name: 'MED flagged well-known', msg: upd([...BASE, A(0x40, 4, [0, 0, 0, 1])]), expect: { twa: true } },
  { name: 'LOCAL_PREF of length 3 (iBGP)', msg: upd([...BASE, A(0x40, 5, [0, 0, 100])]), expect: { twa: true } },
  { name: 'LOCAL_PREF from an eBGP peer', msg: upd([...BASE, A(0x40, 5, [0, 0, 0, 100])]), ctx: EBGP, expect: { discard: 5 } },
  { name: 'ATOMIC_AGGREGATE of length 1', msg: upd([...BASE, A(0x40, 6, [1])]), expect: { discard: 6 } },
  { name: 'AGGREGATOR of length 5', msg: upd([...BASE, A(0xc0, 7, [0, 0, 1, 10, 0])]), expect: { discard: 7 } },
  {
    name: 'AGGREGATOR without the transitive flag',
    msg: upd([...BASE, A(0x80, 7, [0, 0, 0, 1, 10, 0, 0, 1])]),
    expect: { discard: 7 },
  },
  {
    name: 'AGGREGATOR 8 octets on a 2-octet session',
    msg: upd([ORIGIN, ASP2, NH, A(0xc0, 7, [0, 0, 0, 1, 10, 0, 0, 1])]),
    ctx: CTX2,
    expect: { discard: 7 },
  },
  { name: 'COMMUNITIES of length 5', msg: upd([...BASE, A(0xc0, 8, [0, 0, 0, 1, 2])]), expect: { twa: true } },
  { name: 'COMMUNITIES of length 0', msg: upd([...BASE, A(0xc0, 8, [])]), expect: { twa: true } },
  { name: 'LARGE_COMMUNITIES of length 8', msg: upd([...BASE, A(0xc0, 32, Buffer.alloc(8))]), expect: { twa: true } },
  { name: 'EXTENDED_COMMUNITIES of length 7', msg: upd([...BASE, A(0xc0, 16, Buffer.alloc(7))]), expect: { twa: true } },
  { name: 'ORIGINATOR_ID of length 3', msg: upd([...BASE, A(0x80, 9, [1, 2, 3])]), expect: { twa: true } },
  { name: 'CLUSTER_LIST of length 6', msg: upd([...BASE, A(0x80, 10, Buffer.alloc(6, 1))]), expect: { twa: true } },
  { name: 'duplicate ORIGIN: repeat discarded', msg: upd([...BASE, A(0x40, 1, [2])]), expect: { discard: 1 } },
  {
    name: 'duplicate MP_REACH_NLRI',
    msg: upd([ORIGIN, ASP4, MP6(16, [64, 0xfd, 0, 0, 0, 0, 0, 0, 0]), MP6(16, [])], b()),
    expect: { notify: [3, 1] },
  },
  { name: 'missing ORIGIN', msg: upd([ASP4, NH]), expect: { twa: true } },
  { name: 'missing AS_PATH', msg: upd([ORIGIN, NH]), expect: { twa: true } },
  { name: 'missing NEXT_HOP with IPv4 NLRI', msg: upd([ORIGIN, ASP4]), expect: { twa: true } },
  { name: 'NLRI without any path attribute', msg: upd([]), expect: { twa: true } },
  {
    name: 'IPv4 NLRI with only an MP_UNREACH_NLRI attribute',
    msg: upd([A(0x90, 15, [0, 2, 1])]),
    expect: { twa: true },
  },
  {
    name: 'unrecognized well-known attribute 99',
    msg: upd([...BASE, A(0x40, 99, [1, 2])]),
    expect: { notify: [3, 2, '406302' + '0102'] },
  },
  { name: 'unknown optional non-transitive attribute dropped quietly', msg: upd([...BASE, A(0x80, 99, [1])]), expect: { ok: true } },
  {
    name: 'MP_REACH_NLRI next hop length 5 for IPv6',
    msg: upd([ORIGIN, ASP4, MP6(5, [])], b()),
    expect: { notify: [3, 9] },
  },
  {
    name: 'MP_REACH_NLRI next hop length overruns attribute',
    msg: upd([ORIGIN, ASP4, A(0x80, 14, [0, 2, 1, 40, 1, 2, 3])], b()),
    expect: { notify: [3, 9] },
  },
  {
    name: 'MP_REACH_NLRI flagged transitive',
    msg: upd([ORIGIN, ASP4, MP6(16, [], 0xc0)], b()),
    expect: { notify: [3, 4] },
  },
  {
    name: 'MP_REACH_NLRI IPv6 prefix length 129',
    msg: upd([ORIGIN, ASP4, MP6(16, [129, ...Buffer.alloc(17)])], b()),
    expect: { notify: [3, 9] },
  },
  {
    name: 'MP_REACH_NLRI truncated NLRI',
    msg: upd([ORIGIN, ASP4, MP6(16, [64, 0xfd, 0])], b()),
    expect: { notify: [3, 9] },
  },
  { name: 'MP_UNREACH_NLRI shorter than 3', msg: upd([A(0x80, 15, [0, 2])], b()), expect: { notify: [3, 9] } },
  {
    name: 'MP_REACH with malformed ORIGIN: IPv6 NLRI treated as withdrawn',
    msg: upd([A(0x40, 1, [7]), ASP4, MP6(16, [64, 0xfd, 0, 0, 0, 0, 0, 0, 1])], b()),
    expect: { twa: true },
  },
  {
    name: 'AS4_PATH malformed from a 2-octet peer',
    msg: upd([ORIGIN, ASP2, NH, A(0xc0, 17, [2, 2, 0, 0, 0, 1])]),
    ctx: CTX2,
    expect: { discard: 17 },
  },
  {
    name: 'AS4_PATH received from a 4-octet peer',
    msg: upd([...BASE, A(0xc0, 17, [2, 1, 0, 0, 0, 1])]),
    expect: { discard: 17 },
  },
  {
    name: 'AS4_AGGREGATOR of length 6',
    msg: upd([ORIGIN, ASP2, NH, A(0xc0, 18, [0, 0, 0, 1, 10, 0])]),
    ctx: CTX2,
    expect: { discard: 18 },
  },
  {
    name: 'Partial bit on a well-known attribute is ignored',
    msg: upd([A(0x60, 1, [0]), ASP4, NH]),
    expect: { ok: true },
  },
];

