import { describe, expect, it } from 'vitest';
import {
  AS_TRANS,
  AsPathSegmentType,
  AttrFlag,
  BgpNotification,
  CapabilityCode,
  COMMUNITY_NO_ADVERTISE,
  COMMUNITY_NO_EXPORT,
  COMMUNITY_NO_EXPORT_SUBCONFED,
  COMMUNITY_NO_PEER,
  CeaseSubcode,
  MessageReader,
  MessageType,
  Origin,
  asPathFirstAs,
  asPathLength,
  asPathPrepend,
  cease,
  commonFamilies,
  decodeMessage,
  decodeWire,
  encodeEndOfRib,
  encodeKeepalive,
  encodeNotification,
  encodeOpen,
  encodeRouteRefresh,
  encodeUpdate,
  forEachNlri,
  formatAsPath,
  formatPrefix4,
  packUpdates,
  packWithdrawals,
  parseIp4,
  parsePrefix4,
  parsePrefix6,
  prefix4,
  shutdownCommunication,
  summarizeCapabilities,
  validateOpen,
  type Capability,
  type CodecContext,
  type DecodedAttributes,
  type Message,
  type OpenMessage,
  type PathAttributes,
  type UpdateMessage,
} from './index.js';

const CTX4: CodecContext = { fourOctetAs: true };
const CTX2: CodecContext = { fourOctetAs: false };

function dec(buf: Buffer, ctx: CodecContext = CTX4): Message {
  const m = decodeWire(buf, ctx);
  if (m instanceof BgpNotification) throw new Error(`unexpected notification ${m.toString()}`);
  return m;
}
function decUpdate(buf: Buffer, ctx: CodecContext = CTX4): UpdateMessage {
  const m = dec(buf, ctx);
  expect(m.type).toBe(MessageType.UPDATE);
  return m as UpdateMessage;
}
const p4 = (s: string): number => parsePrefix4(s)!;

/** Strip undefined fields and the key, for comparing attribute sets. */
function plain(a: DecodedAttributes | PathAttributes | null): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(a ?? {})) if (v !== undefined && k !== 'key') out[k] = v;
  return out;
}

describe('prefix helpers', () => {
  it('packs IPv4 prefixes as addr*64+len with host bits cleared', () => {
    const p = p4('10.1.2.3/24');
    expect(p).toBe(parseIp4('10.1.2.0')! * 64 + 24);
    expect(formatPrefix4(p)).toBe('10.1.2.0/24');
    expect(formatPrefix4(prefix4(0xffffffff, 32))).toBe('255.255.255.255/32');
    expect(formatPrefix4(p4('0.0.0.0/0'))).toBe('0.0.0.0/0');
    expect(parsePrefix4('10.0.0.0/33')).toBeUndefined();
    expect(parsePrefix4('10.0.0/8')).toBeUndefined();
  });
  it('canonicalises IPv6 prefixes (RFC 5952)', () => {
    expect(parsePrefix6('FD00:0:0:1::5/64')).toBe('fd00:0:0:1::/64');
    expect(parsePrefix6('2001:db8:0:0:1:0:0:1/128')).toBe('2001:db8::1:0:0:1/128');
    expect(parsePrefix6('::/0')).toBe('::/0');
    expect(parsePrefix6('fd00::1::2/64')).toBeUndefined();
  });
});

describe('OPEN', () => {
  const caps: Capability[] = [
    { code: CapabilityCode.MULTIPROTOCOL, afi: 1, safi: 1 },
    { code: CapabilityCode.MULTIPROTOCOL, afi: 2, safi: 1 },
    { code: CapabilityCode.ROUTE_REFRESH },
    { code: CapabilityCode.ROUTE_REFRESH_OLD },
    { code: CapabilityCode.ENHANCED_ROUTE_REFRESH },
    {
      code: CapabilityCode.GRACEFUL_RESTART,
      restarting: true,
      notification: false,
      restartTime: 120,
      families: [
        { afi: 1, safi: 1, forwardingState: true },
        { afi: 2, safi: 1, forwardingState: false },
      ],
    },
    { code: CapabilityCode.FOUR_OCTET_AS, asn: 4200000001 },
    { code: 73, value: Buffer.from('\x04node\x00'), unknown: true },
  ];

  it('round-trips every capability with a 4-octet ASN (myAs = AS_TRANS)', () => {
    const buf = encodeOpen({ asn: 4200000001, holdTime: 90, bgpId: '10.0.0.1', capabilities: caps });
    const m = dec(buf) as OpenMessage;
    expect(m.type).toBe(MessageType.OPEN);
    expect(m.version).toBe(4);
    expect(m.myAs).toBe(AS_TRANS);
    expect(m.asn).toBe(4200000001);
    expect(m.holdTime).toBe(90);
    expect(m.bgpId).toBe(parseIp4('10.0.0.1'));
    expect(m.capabilities).toEqual(caps);
    const s = summarizeCapabilities(m.capabilities);
    expect(s.families).toEqual([
      { afi: 1, safi: 1 },
      { afi: 2, safi: 1 },
    ]);
    expect(s.routeRefresh).toBe(true);
    expect(s.enhancedRouteRefresh).toBe(true);
    expect(s.fourOctetAs).toBe(4200000001);
    expect(s.gracefulRestart?.restarting).toBe(true);
    expect(s.gracefulRestart?.families[0]?.forwardingState).toBe(true);
  });

  it('2-octet ASN without capabilities; IPv4 unicast implied', () => {
    const buf = encodeOpen({ asn: 65001, holdTime: 0, bgpId: 0x0a000002, capabilities: [] });
    const m = dec(buf) as OpenMessage;
    expect(m.myAs).toBe(65001);
    expect(m.asn).toBe(65001);
    expect(m.capabilities).toEqual([]);
    expect(commonFamilies([{ code: CapabilityCode.MULTIPROTOCOL, afi: 1, safi: 1 }], m.capabilities)).toEqual([
      { afi: 1, safi: 1 },
    ]);
  });

  it('validateOpen: peer AS, identical identifier, hold time', () => {
    const m = dec(encodeOpen({ asn: 65001, holdTime: 90, bgpId: '10.0.0.2', capabilities: [] })) as OpenMessage;
    expect(validateOpen(m, { peerAs: 65001, localBgpId: parseIp4('10.0.0.1') })).toBeNull();
    const a = validateOpen(m, { peerAs: 65002 })!;
    expect([a.code, a.subcode]).toEqual([2, 2]);
    const b = validateOpen(m, { localBgpId: parseIp4('10.0.0.2') })!;
    expect([b.code, b.subcode]).toEqual([2, 3]);
    const c = validateOpen(m, { minHoldTime: 120 })!;
    expect([c.code, c.subcode]).toEqual([2, 6]);
  });
});

describe('KEEPALIVE, NOTIFICATION, ROUTE-REFRESH', () => {
  it('round-trips', () => {
    expect(dec(encodeKeepalive())).toEqual({ type: MessageType.KEEPALIVE });
    const n = cease(CeaseSubcode.ADMINISTRATIVE_SHUTDOWN, 'maintenance');
    const m = dec(encodeNotification(n));
    expect(m).toMatchObject({ type: MessageType.NOTIFICATION, code: 6, subcode: 2 });
    expect(shutdownCommunication(m as never)).toBe('maintenance');
    for (const st of [0, 1, 2]) {
      expect(dec(encodeRouteRefresh(2, 1, st))).toEqual({ type: MessageType.ROUTE_REFRESH, afi: 2, safi: 1, subtype: st });
    }
  });
});

const fullAttrs: PathAttributes = {
  origin: Origin.IGP,
  asPath: [
    { type: AsPathSegmentType.AS_SEQUENCE, asns: [65001, 4200000001, 100] },
    { type: AsPathSegmentType.AS_SET, asns: [200, 4200000002] },
  ],
  nextHop: '192.0.2.1',
  med: 50,
  localPref: 200,
  atomicAggregate: true,
  aggregator: { asn: 4200000001, address: parseIp4('192.0.2.9')! },
  communities: [COMMUNITY_NO_EXPORT, COMMUNITY_NO_ADVERTISE, COMMUNITY_NO_EXPORT_SUBCONFED, COMMUNITY_NO_PEER, 65001 * 65536 + 7],
  largeCommunities: [4200000001, 1, 2, 65001, 3, 4],
  originatorId: parseIp4('10.0.0.9')!,
  clusterList: [parseIp4('10.0.0.1')!, parseIp4('10.0.0.2')!],
  unknown: [
    { flags: AttrFlag.OPTIONAL | AttrFlag.TRANSITIVE, type: 16, value: Buffer.from([0, 2, 0xfd, 0xe9, 0, 0, 0, 1]) },
    { flags: AttrFlag.OPTIONAL | AttrFlag.TRANSITIVE, type: 99, value: Buffer.from('opaque') },
  ],
};

describe('UPDATE', () => {
  it('round-trips every attribute on a 4-octet session', () => {
    const nlri = [p4('10.1.0.0/16'), p4('10.2.3.0/24'), p4('10.9.9.9/32'), p4('0.0.0.0/0')];
    const buf = encodeUpdate({ withdrawn: [p4('10.8.0.0/14')], attrs: fullAttrs, nlri }, CTX4);
    const u = decUpdate(buf);
    expect(u.withdrawn).toEqual([p4('10.8.0.0/14')]);
    expect(u.nlri).toEqual(nlri);
    expect(u.treatAsWithdraw).toBe(false);
    expect(u.problems).toEqual([]);
    const want = plain(fullAttrs);
    // unknown optional transitive attributes are passed on with the Partial bit
    (want.unknown as unknown[])[1] = { ...fullAttrs.unknown![1]!, flags: 0xe0 };
    expect(plain(u.attrs)).toEqual({ ...want, unknown: [fullAttrs.unknown![0], fullAttrs.unknown![1]] });
    // re-encode: the Partial bit now appears
    const again = decUpdate(encodeUpdate({ attrs: u.attrs, nlri }, CTX4));
    expect(again.attrs!.unknown![1]!.flags & AttrFlag.PARTIAL).toBe(AttrFlag.PARTIAL);
    expect(again.attrs!.unknown![0]!.flags & AttrFlag.PARTIAL).toBe(0);
  });

  it('2-octet session: AS_TRANS + AS4_PATH/AS4_AGGREGATOR on encode, merged on decode', () => {
    const buf = encodeUpdate({ attrs: fullAttrs, nlri: [p4('10.1.0.0/16')] }, CTX2);
    // raw AS_PATH carries AS_TRANS
    const hex = buf.toString('hex');
    expect(hex).toContain('5ba0'); // 23456
    const u = decUpdate(buf, CTX2);
    expect(u.attrs!.asPath).toEqual(fullAttrs.asPath);
    expect(u.attrs!.aggregator).toEqual(fullAttrs.aggregator);
    // a 4-octet session never sees AS4 attributes: sent without them
    const u4 = decUpdate(encodeUpdate({ attrs: fullAttrs, nlri: [p4('10.1.0.0/16')] }, CTX4));
    expect(u4.problems).toEqual([]);
  });

  it('RFC 6793 merge: a 2-octet speaker prepended ASes not present in AS4_PATH', () => {
    // AS_PATH (2-octet): 65010 65011 AS_TRANS 100 ; AS4_PATH: 4200000001 100
    const asPath = Buffer.from([2, 4, 0xfd, 0xf2, 0xfd, 0xf3, 0x5b, 0xa0, 0, 100]);
    const as4 = Buffer.from([2, 2, 0xfa, 0x56, 0xea, 0x01, 0, 0, 0, 100]);
    const attrs = Buffer.concat([
      Buffer.from([0x40, 1, 1, 0]),
      Buffer.from([0x40, 2, asPath.length]),
      asPath,
      Buffer.from([0x40, 3, 4, 192, 0, 2, 1]),
      Buffer.from([0xc0, 17, as4.length]),
      as4,
    ]);
    const u = decUpdate(rawUpdate(Buffer.alloc(0), attrs, Buffer.from([24, 10, 0, 0])), CTX2);
    expect(u.attrs!.asPath).toEqual([{ type: 2, asns: [65010, 65011, 4200000001, 100] }]);
    expect(formatAsPath(u.attrs!.asPath)).toBe('65010 65011 4200000001 100');
    expect(asPathLength(u.attrs!.asPath)).toBe(4);
    expect(asPathFirstAs(u.attrs!.asPath)).toBe(65010);
    // AS4_PATH longer than AS_PATH is ignored
    const longAs4 = Buffer.from([2, 5, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 5]);
    const attrs2 = Buffer.concat([attrs.subarray(0, attrs.length - as4.length - 3), Buffer.from([0xc0, 17, longAs4.length]), longAs4]);
    const u2 = decUpdate(rawUpdate(Buffer.alloc(0), attrs2, Buffer.from([24, 10, 0, 0])), CTX2);
    expect(u2.attrs!.asPath).toEqual([{ type: 2, asns: [65010, 65011, AS_TRANS, 100] }]);
  });

  it('IPv6 in MP_REACH with global + link-local next hop; withdrawals in MP_UNREACH', () => {
    const attrs: PathAttributes = {
      origin: Origin.INCOMPLETE,
      asPath: [],
      mpNextHop: 'fd00::1',
      mpNextHopLinkLocal: 'fe80::1',
      localPref: 100,
    };
    const prefixes = ['fd00:10::/64', 'fd00:20::/48', '::/0', 'fd00::1/128'];
    const msgs = packUpdates(attrs, prefixes, CTX4);
    expect(msgs.length).toBe(1);
    const u = decUpdate(msgs[0]!);
    expect(u.nlri).toEqual([]);
    expect(u.mpReach).toMatchObject({ afi: 2, safi: 1, nextHop: 'fd00::1', nextHopLinkLocal: 'fe80::1' });
    expect(u.mpReach!.nlri).toEqual(prefixes);
    expect(u.attrs!.mpNextHop).toBe('fd00::1');
    expect(u.attrs!.nextHop).toBeUndefined();
    expect(u.treatAsWithdraw).toBe(false);
    const seen: Array<[unknown, number]> = [];
    forEachNlri(u, (p, afi) => seen.push([p, afi]));
    expect(seen.map((s) => s[0])).toEqual(prefixes);
    const w = packWithdrawals(prefixes, 2);
    expect(w.length).toBe(1);
    const wu = decUpdate(w[0]!);
    expect(wu.mpUnreach).toEqual({ afi: 2, safi: 1, withdrawn: prefixes });
    expect(wu.attrs).toBeNull();
    expect(wu.endOfRib).toBeUndefined();
  });

  it('IPv4 prefixes in MP_REACH (AFI 1) on request', () => {
    const msgs = packUpdates({ origin: 0, asPath: [], nextHop: '10.0.0.1' }, [p4('10.5.0.0/16')], CTX4, {
      ipv4InMp: true,
    });
    const u = decUpdate(msgs[0]!);
    expect(u.mpReach).toMatchObject({ afi: 1, safi: 1, nextHop: '10.0.0.1', nlri: [p4('10.5.0.0/16')] });
  });

  it('End-of-RIB markers for IPv4 and IPv6', () => {
    expect(decUpdate(encodeEndOfRib(1, 1)).endOfRib).toEqual({ afi: 1, safi: 1 });
    expect(decUpdate(encodeEndOfRib(2, 1)).endOfRib).toEqual({ afi: 2, safi: 1 });
    expect(encodeEndOfRib(1, 1).length).toBe(23);
    const notEor = decUpdate(packWithdrawals([p4('10.0.0.0/8')], 1)[0]!);
    expect(notEor.endOfRib).toBeUndefined();
  });

  it('packs 100,000 /24s into ≤ 4096-octet UPDATEs and decodes them back, sharing one attribute object', () => {
    const attrs: PathAttributes = {
      origin: 0,
      asPath: [{ type: 2, asns: [65001] }],
      nextHop: '10.0.0.1',
      communities: [65001 * 65536 + 1],
    };
    const prefixes: number[] = [];
    for (let i = 0; i < 100_000; i++) prefixes.push(prefix4((0x0a000000 + i * 256) >>> 0, 24));
    const msgs = packUpdates(attrs, prefixes, CTX4);
    expect(msgs.every((m) => m.length <= 4096)).toBe(true);
    expect(msgs.length).toBeLessThan(130);
    const cache = new Map<string, DecodedAttributes>();
    const ctx: CodecContext = { fourOctetAs: true, attrCache: cache };
    const back: number[] = [];
    let first: DecodedAttributes | null = null;
    const reader = new MessageReader();
    reader.push(Buffer.concat(msgs));
    for (let r = reader.next(); r; r = reader.next()) {
      if (r instanceof BgpNotification) throw new Error(r.toString());
      const u = decodeMessage(r, ctx) as UpdateMessage;
      first ??= u.attrs;
      expect(u.attrs).toBe(first);
      for (const p of u.nlri) back.push(p);
    }
    expect(back).toEqual(prefixes);
    expect(cache.size).toBe(1);
    const w = packWithdrawals(prefixes, 1);
    expect(w.every((m) => m.length <= 4096)).toBe(true);
    let n = 0;
    for (const m of w) n += decUpdate(m).withdrawn.length;
    expect(n).toBe(100_000);
  });

  it('an attribute set too large to send becomes a withdrawal (never a throw)', () => {
    const huge: PathAttributes = { origin: 0, asPath: [{ type: 2, asns: Array.from({ length: 1100 }, (_, i) => 4200000000 + i) }], nextHop: '10.0.0.1', mpNextHop: 'fd00::1' };
    const seen: string[] = [];
    const msgs = packUpdates(huge, [p4('10.1.0.0/16'), 'fd00:1::/64'], CTX4, { onOversize: (_p, why) => seen.push(why) });
    expect(seen.length).toBe(2);
    const us = msgs.map((m) => decUpdate(m));
    expect(us.flatMap((u) => u.withdrawn)).toEqual([p4('10.1.0.0/16')]);
    expect(us.flatMap((u) => u.mpUnreach?.withdrawn ?? [])).toEqual(['fd00:1::/64']);
    expect(us.every((u) => u.nlri.length === 0 && !u.mpReach)).toBe(true);
  });

  it('the attribute key differs between different sets and between session kinds', () => {
    const a = decUpdate(encodeUpdate({ attrs: { origin: 0, asPath: [], nextHop: '10.0.0.1' }, nlri: [p4('10.0.0.0/8')] }, CTX4));
    const b = decUpdate(encodeUpdate({ attrs: { origin: 0, asPath: [], nextHop: '10.0.0.2' }, nlri: [p4('10.0.0.0/8')] }, CTX4));
    const c = decUpdate(encodeUpdate({ attrs: { origin: 0, asPath: [], nextHop: '10.0.0.1' }, nlri: [p4('10.0.0.0/8')] }, CTX2), CTX2);
    expect(a.attrs!.key).not.toBe(b.attrs!.key);
    expect(a.attrs!.key).not.toBe(c.attrs!.key);
    const v6a = decUpdate(packUpdates({ origin: 0, asPath: [], mpNextHop: 'fd00::1' }, ['fd00:1::/64'], CTX4)[0]!);
    const v6b = decUpdate(packUpdates({ origin: 0, asPath: [], mpNextHop: 'fd00::2' }, ['fd00:1::/64'], CTX4)[0]!);
    const v6c = decUpdate(packUpdates({ origin: 0, asPath: [], mpNextHop: 'fd00::1' }, ['fd00:2::/64'], CTX4)[0]!);
    expect(v6a.attrs!.key).not.toBe(v6b.attrs!.key);
    expect(v6a.attrs!.key).toBe(v6c.attrs!.key);
  });

  it('AS_PATH helpers', () => {
    const p = asPathPrepend([{ type: 2, asns: [65002] }], 65001, 2);
    expect(p).toEqual([{ type: 2, asns: [65001, 65001, 65002] }]);
    expect(asPathLength([{ type: 1, asns: [1, 2, 3] }, { type: 3, asns: [9] }, { type: 2, asns: [4, 5] }])).toBe(3);
  });
});

describe('MessageReader', () => {
  it('reassembles messages split at every byte and several per chunk', () => {
    const msgs = [
      encodeKeepalive(),
      encodeOpen({ asn: 65001, holdTime: 90, bgpId: '10.0.0.1', capabilities: [{ code: 65, asn: 65001 }] }),
      encodeUpdate({ attrs: fullAttrs, nlri: [p4('10.0.0.0/8')] }, CTX4),
      encodeKeepalive(),
    ];
    const all = Buffer.concat(msgs);
    const reader = new MessageReader();
    const got: number[] = [];
    for (let i = 0; i < all.length; i++) {
      reader.push(all.subarray(i, i + 1));
      for (let r = reader.next(); r; r = reader.next()) {
        if (r instanceof BgpNotification) throw new Error(r.toString());
        got.push(r.type);
      }
    }
    expect(got).toEqual([4, 1, 2, 4]);
    expect(reader.buffered).toBe(0);
    const r2 = new MessageReader();
    r2.push(all);
    const types: number[] = [];
    for (let r = r2.next(); r; r = r2.next()) types.push((r as { type: number }).type);
    expect(types).toEqual([4, 1, 2, 4]);
  });

  it('extended message size (RFC 8654) when negotiated; OPEN stays ≤ 4096', () => {
    const big = packUpdates({ origin: 0, asPath: [], nextHop: '10.0.0.1' }, Array.from({ length: 3000 }, (_, i) => prefix4(0x0b000000 + i * 256, 24)), CTX4, { maxSize: 65535 });
    expect(big.length).toBe(1);
    expect(big[0]!.length).toBeGreaterThan(4096);
    const small = new MessageReader();
    small.push(big[0]!);
    expect((small.next() as BgpNotification).subcode).toBe(2);
    const ext = new MessageReader({ maxMessageSize: 65535 });
    ext.push(big[0]!);
    const r = ext.next();
    expect(r).not.toBeInstanceOf(BgpNotification);
    expect((decodeMessage(r as never, { fourOctetAs: true, maxMessageSize: 65535 }) as UpdateMessage).nlri.length).toBe(3000);
    const bigOpen = Buffer.alloc(5000, 0xff);
    bigOpen.writeUInt16BE(5000, 16);
    bigOpen[18] = 1;
    const eo = new MessageReader({ maxMessageSize: 65535 });
    eo.push(bigOpen);
    expect((eo.next() as BgpNotification).subcode).toBe(2);
  });

  it('a framing error is sticky', () => {
    const reader = new MessageReader();
    const bad = encodeKeepalive();
    bad[0] = 0;
    reader.push(bad);
    reader.push(encodeKeepalive());
    const e = reader.next() as BgpNotification;
    expect([e.code, e.subcode]).toEqual([1, 1]);
    expect(reader.next()).toBe(e);
  });
});

export function rawUpdate(withdrawn: Buffer, attrs: Buffer, nlri: Buffer): Buffer {
  const body = Buffer.concat([
    Buffer.from([withdrawn.length >> 8, withdrawn.length & 255]),
    withdrawn,
    Buffer.from([attrs.length >> 8, attrs.length & 255]),
    attrs,
    nlri,
  ]);
  const h = Buffer.alloc(19, 0xff);
  h.writeUInt16BE(19 + body.length, 16);
  h[18] = 2;
  return Buffer.concat([h, body]);
}

describe('AttrInternCache', () => {
  it('shares identical sets and stays bounded', async () => {
    const { AttrInternCache } = await import('./index.js');
    const cache = new AttrInternCache(2);
    const ctx: CodecContext = { fourOctetAs: true, attrCache: cache };
    const mk = (nh: string) => encodeUpdate({ attrs: { origin: 0, asPath: [], nextHop: nh }, nlri: [p4('10.0.0.0/8')] }, CTX4);
    const a1 = decUpdate(mk('10.0.0.1'), ctx).attrs;
    expect(decUpdate(mk('10.0.0.1'), ctx).attrs).toBe(a1);
    decUpdate(mk('10.0.0.2'), ctx);
    decUpdate(mk('10.0.0.3'), ctx);
    expect(cache.size).toBeLessThanOrEqual(2);
    expect(decUpdate(mk('10.0.0.1'), ctx).attrs).toEqual(a1);
  });
});

describe('NOTIFICATION helpers', () => {
  it('names codes and subcodes; builds Cease with an RFC 9003 shutdown communication', async () => {
    const { notificationName, fsmError, holdTimerExpired } = await import('./index.js');
    expect(notificationName(2, 2)).toBe('OPEN Message Error / Bad Peer AS');
    expect(notificationName(6, 7)).toBe('Cease / Connection Collision Resolution');
    expect(notificationName(3, 0)).toBe('UPDATE Message Error / Unspecific');
    expect(notificationName(99, 1)).toBe('code 99 / subcode 1');
    expect([fsmError('OpenConfirm', 2).code, fsmError('OpenConfirm', 2).subcode]).toEqual([5, 2]);
    expect(holdTimerExpired().code).toBe(4);
    const c = cease(CeaseSubcode.ADMINISTRATIVE_RESET, 'x'.repeat(300));
    expect(c.data[0]).toBe(255);
    expect(c.data.length).toBe(256);
    expect(cease(CeaseSubcode.PEER_DECONFIGURED, 'ignored').data.length).toBe(0);
    const wire = encodeNotification({ code: 3, subcode: 1, data: Buffer.alloc(5000) });
    expect(wire.length).toBe(4096);
  });
});
