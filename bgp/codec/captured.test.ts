// Decode fixtures: byte streams captured from BIRD 2 and GoBGP 3 (see testdata/captured.ts).
import { describe, expect, it } from 'vitest';
import {
  BgpNotification,
  MessageReader,
  MessageType,
  decodeMessage,
  formatPrefix,
  summarizeCapabilities,
  type CodecContext,
  type Message,
  type OpenMessage,
  type UpdateMessage,
} from './index.js';
import { bird2octetHex, bird4octetHex, gobgpHex } from './testdata/captured.js';

function decodeAll(hex: string, ctx: CodecContext): Message[] {
  const r = new MessageReader();
  r.push(Buffer.from(hex, 'hex'));
  const out: Message[] = [];
  for (let m = r.next(); m !== null; m = r.next()) {
    if (m instanceof BgpNotification) throw new Error(m.toString());
    const d = decodeMessage(m, ctx);
    if (d instanceof BgpNotification) throw new Error(d.toString());
    out.push(d);
  }
  return out;
}

function routes(ms: Message[]): Record<string, UpdateMessage['attrs']> {
  const out: Record<string, UpdateMessage['attrs']> = {};
  for (const m of ms) {
    if (m.type !== MessageType.UPDATE) continue;
    expect(m.problems).toEqual([]);
    for (const p of m.nlri) out[formatPrefix(p)] = m.attrs;
    for (const p of m.mpReach?.nlri ?? []) out[formatPrefix(p)] = m.attrs;
  }
  return out;
}

describe('captured streams', () => {
  for (const [name, hex, four] of [
    ['BIRD, 4-octet session', bird4octetHex, true],
    ['BIRD, 2-octet session (AS_TRANS + AS4_PATH)', bird2octetHex, false],
  ] as const) {
    it(name, () => {
      const ms = decodeAll(hex, { fourOctetAs: four, external: true });
      const open = ms[0] as OpenMessage;
      expect(open.asn).toBe(4200000001);
      expect(summarizeCapabilities(open.capabilities).gracefulRestart?.restartTime).toBeGreaterThan(0);
      const r = routes(ms);
      expect(Object.keys(r).sort()).toEqual(['10.50.0.0/16', '10.51.1.0/24', '10.52.2.128/25', 'fd00:50::/48', 'fd00:51:1::/64']);
      expect(r['10.52.2.128/25']!.asPath).toEqual([{ type: 2, asns: [4200000001] }]);
      expect(r['10.52.2.128/25']!.nextHop).toBe('10.99.1.1');
      expect(r['fd00:50::/48']!.mpNextHop).toBe('fd00:99::1');
      const eor = ms.filter((m) => m.type === MessageType.UPDATE && m.endOfRib).map((m) => (m as UpdateMessage).endOfRib);
      expect(eor).toEqual([
        { afi: 1, safi: 1 },
        { afi: 2, safi: 1 },
      ]);
    });
  }
  it('GoBGP', () => {
    const ms = decodeAll(gobgpHex, { fourOctetAs: true, external: true });
    const open = ms[0] as OpenMessage;
    expect(open.asn).toBe(4200000003);
    // GoBGP's extended-next-hop (5) and FQDN (73) capabilities are kept raw, not errors
    expect(open.capabilities.filter((c) => 'unknown' in c).map((c) => c.code).sort((a, b) => a - b)).toEqual([5, 73]);
    const r = routes(ms);
    expect(Object.keys(r).sort()).toEqual(['10.70.0.0/16', '10.71.1.0/24', 'fd00:70::/48']);
    expect(r['10.70.0.0/16']!.communities).toEqual([65003 * 65536 + 9]);
    expect(r['10.70.0.0/16']!.largeCommunities).toEqual([4200000003, 1, 2]);
  });
});
