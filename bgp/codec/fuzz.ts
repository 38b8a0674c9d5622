// Mutation fuzzer for the codec: valid messages are mutated (bit flips, byte sets, truncation,
// length-field changes, insertions, deletions, splices) and pushed through MessageReader +
// decodeMessage with several session contexts; decoded messages are re-encoded. A "crash" is any
// exception escaping, or the decoder's internal safety net firing. Used by fuzz.test.ts (short
// run) and bench/bgp-fuzz.ts (1M mutations).
import { decodeMessage, decodeWire } from './decode.js';
import {
  encodeEndOfRib,
  encodeKeepalive,
  encodeNotification,
  encodeOpen,
  encodeRouteRefresh,
  encodeUpdate,
  packUpdates,
  packWithdrawals,
} from './encode.js';
import { prefix4, parseIp4 } from './prefix.js';
import { MessageReader } from './reader.js';
import { bird2octetHex, bird4octetHex, gobgpHex } from './testdata/captured.js';
import {
  AttrFlag,
  BgpNotification,
  CapabilityCode,
  MessageType,
  type CodecContext,
  type Message,
  type PathAttributes,
  type UpdateMessage,
} from './types.js';

const CTXS: CodecContext[] = [
  { fourOctetAs: true },
  { fourOctetAs: false },
  { fourOctetAs: true, external: true },
  { fourOctetAs: false, external: true, attrCache: new Map() },
];

/** Split a captured byte stream into its messages. */
export function splitStream(hex: string): Buffer[] {
  const b = Buffer.from(hex, 'hex');
  const out: Buffer[] = [];
  for (let o = 0; o + 19 <= b.length; ) {
    const len = b.readUInt16BE(o + 16);
    if (len < 19 || o + len > b.length) break;
    out.push(b.subarray(o, o + len));
    o += len;
  }
  return out;
}

/** Valid messages of every kind, as a peer could send them (ours and captured from BIRD/GoBGP). */
export function fuzzCorpus(): Buffer[] {
  const captured = [bird4octetHex, bird2octetHex, gobgpHex].flatMap(splitStream);
  const full: PathAttributes = {
    origin: 0,
    asPath: [
      { type: 2, asns: [65001, 4200000001, 100] },
      { type: 1, asns: [200, 300] },
    ],
    nextHop: '192.0.2.1',
    med: 10,
    localPref: 100,
    atomicAggregate: true,
    aggregator: { asn: 4200000009, address: parseIp4('192.0.2.9')! },
    communities: [0xffffff01, 65001 * 65536 + 2],
    largeCommunities: [4200000001, 1, 2],
    originatorId: 0x0a000009,
    clusterList: [0x0a000001],
    unknown: [
      { flags: AttrFlag.OPTIONAL | AttrFlag.TRANSITIVE, type: 16, value: Buffer.alloc(8, 3) },
      { flags: AttrFlag.OPTIONAL | AttrFlag.TRANSITIVE, type: 77, value: Buffer.from('xyz') },
    ],
  };
  const v4 = [prefix4(0x0a010000, 16), prefix4(0x0a020300, 24), prefix4(0x0a090909, 32), prefix4(0, 0)];
  const many: number[] = [];
  for (let i = 0; i < 300; i++) many.push(prefix4((0x0b000000 + i * 256) >>> 0, 24));
  const v6 = ['fd00:10::/64', 'fd00:20::/48', '2001:db8::1/128', '::/0'];
  const c4: CodecContext = { fourOctetAs: true };
  const c2: CodecContext = { fourOctetAs: false };
  return [
    encodeKeepalive(),
    encodeOpen({
      asn: 4200000001,
      holdTime: 90,
      bgpId: '10.0.0.1',
      capabilities: [
        { code: CapabilityCode.MULTIPROTOCOL, afi: 1, safi: 1 },
        { code: CapabilityCode.MULTIPROTOCOL, afi: 2, safi: 1 },
        { code: CapabilityCode.ROUTE_REFRESH },
        { code: CapabilityCode.ROUTE_REFRESH_OLD },
        { code: CapabilityCode.ENHANCED_ROUTE_REFRESH },
        {
          code: CapabilityCode.GRACEFUL_RESTART,
          restarting: true,
          notification: true,
          restartTime: 120,
          families: [{ afi: 1, safi: 1, forwardingState: true }],
        },
        { code: CapabilityCode.FOUR_OCTET_AS, asn: 4200000001 },
        { code: 73, value: Buffer.from('\x04host\x00'), unknown: true },
      ],
    }),
    encodeOpen({ asn: 65001, holdTime: 180, bgpId: '10.0.0.2', capabilities: [] }),
    encodeNotification({ code: 6, subcode: 2, data: Buffer.from('\x05hello') }),
    encodeNotification({ code: 3, subcode: 1 }),
    encodeRouteRefresh(1, 1, 0),
    encodeRouteRefresh(2, 1, 1),
    encodeUpdate({ withdrawn: [prefix4(0x0a080000, 14)], attrs: full, nlri: v4 }, c4),
    encodeUpdate({ attrs: full, nlri: v4 }, c2),
    encodeUpdate({ attrs: { ...full, mpNextHop: 'fd00::1', mpNextHopLinkLocal: 'fe80::1' }, mpReach: { afi: 2, safi: 1, nlri: v6 } }, c4),
    encodeUpdate({ attrs: { origin: 0, asPath: [] }, mpUnreach: { afi: 2, safi: 1, withdrawn: v6 } }, c4),
    ...packUpdates({ origin: 2, asPath: [{ type: 2, asns: [65002] }], nextHop: '10.0.0.2' }, many, c4),
    ...packUpdates({ origin: 0, asPath: [], mpNextHop: 'fd00::2' }, v6, c4),
    ...packWithdrawals(v4, 1),
    ...packWithdrawals(v6, 2),
    encodeEndOfRib(1, 1),
    encodeEndOfRib(2, 1),
    ...captured,
  ];
}

/** xorshift32 */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 0x9e3779b9;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

const INTERESTING = [0, 1, 2, 3, 4, 0x7f, 0x80, 0xff, 0xfe, 0x10, 0x20, 0x40, 0xc0, 0x50, 14, 15, 16, 17, 18, 32, 33, 128, 129, 255];

/** Offsets of 1- and 2-octet length fields of a message (header, UPDATE and attribute lengths). */
function lengthFields(m: Buffer): Array<[number, 1 | 2]> {
  const out: Array<[number, 1 | 2]> = [[16, 2]];
  if (m.length >= 23 && m[18] === MessageType.UPDATE) {
    const wl = m.readUInt16BE(19);
    out.push([19, 2]);
    const ao = 21 + wl;
    if (ao + 2 <= m.length) {
      out.push([ao, 2]);
      const end = Math.min(m.length, ao + 2 + m.readUInt16BE(ao));
      let p = ao + 2;
      while (p + 3 <= end) {
        const ext = (m[p]! & 0x10) !== 0;
        out.push(ext ? [p + 2, 2] : [p + 2, 1]);
        const l = ext ? (p + 4 <= end ? m.readUInt16BE(p + 2) : 0) : m[p + 2]!;
        // inner lengths: MP next hop length, AS_PATH segment length
        if (m[p + 1] === 14) out.push([p + (ext ? 4 : 3) + 3, 1]);
        if (m[p + 1] === 2) out.push([p + (ext ? 4 : 3) + 1, 1]);
        p += (ext ? 4 : 3) + l;
      }
    }
  } else if (m.length >= 29 && m[18] === MessageType.OPEN) {
    out.push([28, 1]);
    if (m.length > 30) out.push([30, 1]);
    if (m.length > 32) out.push([32, 1]);
  }
  return out.filter(([o, w]) => o + w <= m.length);
}

export function mutate(src: Buffer, rand: () => number): Buffer {
  let m = Buffer.from(src);
  const ops = 1 + (rand() % 3);
  for (let k = 0; k < ops; k++) {
    const r = rand() % 100;
    if (m.length === 0) m = Buffer.from([rand() & 255]);
    if (r < 25) {
      // bit flips
      const flips = 1 + (rand() % 4);
      for (let i = 0; i < flips; i++) {
        const bit = rand() % (m.length * 8);
        m[bit >> 3] = m[bit >> 3]! ^ (1 << (bit & 7));
      }
    } else if (r < 40) {
      m[rand() % m.length] = INTERESTING[rand() % INTERESTING.length]!;
    } else if (r < 50) {
      m = m.subarray(0, rand() % (m.length + 1));
    } else if (r < 75) {
      const fields = lengthFields(m);
      const [o, w] = fields[rand() % fields.length] ?? [16, 2];
      if (o + w > m.length) continue;
      const cur = w === 2 ? m.readUInt16BE(o) : m[o]!;
      const choice = rand() % 4;
      const delta = [1, -1, 2, -2, 3, -3, 4, -4, 16, -16][rand() % 10]!;
      let v = choice === 0 ? rand() : choice === 1 ? 0 : cur + delta;
      v = w === 2 ? v & 0xffff : v & 0xff;
      if (w === 2) m.writeUInt16BE(v, o);
      else m[o] = v;
    } else if (r < 85) {
      const at = rand() % (m.length + 1);
      const n = 1 + (rand() % 8);
      const ins = Buffer.alloc(n);
      for (let i = 0; i < n; i++) ins[i] = rand() & 255;
      m = Buffer.concat([m.subarray(0, at), ins, m.subarray(at)]);
    } else if (r < 93) {
      const at = rand() % m.length;
      const n = 1 + (rand() % 8);
      m = Buffer.concat([m.subarray(0, at), m.subarray(Math.min(m.length, at + n))]);
    } else {
      // splice: duplicate a slice of the message inside itself (duplicate attributes, prefixes)
      const a = rand() % m.length;
      const n = 1 + (rand() % Math.min(32, m.length - a));
      const at = rand() % (m.length + 1);
      m = Buffer.concat([m.subarray(0, at), m.subarray(a, a + n), m.subarray(at)]);
    }
  }
  // Most of the time keep the header consistent so mutations reach the body decoders.
  if (m.length >= 19 && rand() % 4 !== 0) {
    for (let i = 0; i < 16; i++) m[i] = 0xff;
    m.writeUInt16BE(Math.min(m.length, 0xffff), 16);
  }
  return m;
}

export interface FuzzStats {
  iterations: number;
  crashes: number;
  messages: number;
  notifications: number;
  treatAsWithdraw: number;
  discards: number;
  needMore: number;
  /** Clean UPDATEs whose re-encoding decoded to something different (differential check). */
  mismatches: number;
  firstCrash?: { input: string; error: string };
  firstMismatch?: { input: string; a: string; b: string };
}

/** Canonical form of a clean UPDATE for the decode → encode → decode comparison. */
function canon(u: UpdateMessage): string {
  const a: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(u.attrs ?? {})) {
    if (v === undefined || k === 'key') continue;
    if (k === 'nextHop' && u.nlri.length === 0) continue;
    if (k === 'unknown') {
      a[k] = (v as { flags: number; type: number; value: Buffer }[])
        .map((x) => [x.flags & 0xc0, x.type, x.value.toString('hex')])
        .sort((x, y) => (x[1] as number) - (y[1] as number));
      continue;
    }
    a[k] = v;
  }
  const mpR = u.mpReach && !u.mpReach.unsupported ? u.mpReach.nlri : [];
  const mpU = u.mpUnreach && !u.mpUnreach.unsupported ? u.mpUnreach.withdrawn : [];
  return JSON.stringify([u.withdrawn, u.nlri, mpR, mpU, a]);
}

function reencode(m: Message, ctx: CodecContext): Buffer {
  switch (m.type) {
    case MessageType.UPDATE: {
      const u = m as UpdateMessage;
      const attrs = u.attrs;
      const mpReachOk = u.mpReach && !u.mpReach.unsupported && attrs?.mpNextHop !== undefined;
      return encodeUpdate(
        {
          withdrawn: u.withdrawn,
          attrs,
          nlri: attrs && attrs.nextHop !== undefined ? u.nlri : [],
          mpReach: mpReachOk ? { afi: u.mpReach!.afi, safi: u.mpReach!.safi, nlri: u.mpReach!.nlri } : null,
          mpUnreach: u.mpUnreach && !u.mpUnreach.unsupported ? u.mpUnreach : null,
        },
        { ...ctx, maxMessageSize: 65535 },
      );
    }
    case MessageType.OPEN:
      return encodeOpen({ asn: m.asn, holdTime: m.holdTime, bgpId: m.bgpId, capabilities: m.capabilities });
    case MessageType.NOTIFICATION:
      return encodeNotification(m);
    case MessageType.ROUTE_REFRESH:
      return encodeRouteRefresh(m.afi, m.safi, m.subtype);
    default:
      return encodeKeepalive();
  }
}

/** Run `iterations` mutations from `seed`. Never throws; crashes are counted. */
export function runFuzz(iterations: number, seed = 1, corpus: Buffer[] = fuzzCorpus()): FuzzStats {
  const rand = rng(seed);
  const st: FuzzStats = {
    iterations,
    crashes: 0,
    messages: 0,
    notifications: 0,
    treatAsWithdraw: 0,
    discards: 0,
    needMore: 0,
    mismatches: 0,
  };
  for (let i = 0; i < iterations; i++) {
    const input = mutate(corpus[rand() % corpus.length]!, rand);
    const ctx = CTXS[i % CTXS.length]!;
    try {
      const reader = new MessageReader();
      if (input.length > 2 && rand() % 2) {
        const cut = 1 + (rand() % (input.length - 1));
        reader.push(input.subarray(0, cut));
        reader.push(input.subarray(cut));
      } else reader.push(input);
      for (let n = 0; n < 4; n++) {
        const raw = reader.next();
        if (raw === null) {
          if (n === 0) st.needMore++;
          break;
        }
        if (raw instanceof BgpNotification) {
          st.notifications++;
          break;
        }
        const m = decodeMessage(raw, ctx);
        if (m instanceof BgpNotification) {
          if (m.reason.startsWith('internal decode error')) throw new Error(m.reason);
          st.notifications++;
          break;
        }
        st.messages++;
        if (m.type === MessageType.UPDATE) {
          const u = m as UpdateMessage;
          if (u.treatAsWithdraw) st.treatAsWithdraw++;
          if (u.problems.some((p) => p.action === 1)) st.discards++;
          for (const p of u.nlri) if (!(p >= 0 && p % 64 <= 32)) throw new Error(`bad prefix ${p}`);
        }
        const again = reencode(m, ctx);
        if (m.type === MessageType.UPDATE) {
          const u = m as UpdateMessage;
          if (!u.treatAsWithdraw && u.problems.length === 0) {
            const d = decodeWire(again, { ...ctx, attrCache: undefined, maxMessageSize: 65535 });
            const ca = canon(u);
            const cb = d instanceof BgpNotification ? `NOTIFICATION ${d.toString()}` : canon(d as UpdateMessage);
            if (ca !== cb) {
              st.mismatches++;
              st.firstMismatch ??= { input: input.toString('hex'), a: ca, b: cb };
            }
          }
        }
      }
    } catch (e) {
      st.crashes++;
      st.firstCrash ??= { input: input.toString('hex'), error: (e as Error).stack ?? String(e) };
    }
  }
  return st;
}
