import { describe, expect, it } from 'vitest';
import { BgpNotification, decodeWire, encodeOpen } from './index.js';
import { fuzzCorpus, mutate, rng, runFuzz } from './fuzz.js';

describe('codec mutation fuzzer', () => {
  it('the corpus decodes cleanly', () => {
    for (const m of fuzzCorpus()) {
      for (const fourOctetAs of [true, false]) {
        const d = decodeWire(m, { fourOctetAs });
        expect(d).not.toBeInstanceOf(BgpNotification);
      }
    }
  });

  it('mutations actually change messages and reach every outcome', () => {
    const r = rng(7);
    const src = fuzzCorpus()[7]!;
    let changed = 0;
    for (let i = 0; i < 100; i++) if (!mutate(src, r).equals(src)) changed++;
    expect(changed).toBeGreaterThan(90);
  });

  it('20,000 mutations: no exception escapes; outcomes are messages, NOTIFICATIONs or treat-as-withdraw', () => {
    const st = runFuzz(20_000, 12345);
    expect(st.firstCrash?.error ?? '').toBe('');
    expect(st.crashes).toBe(0);
    // differential: clean UPDATEs re-encode to something that decodes to the same routes
    expect(st.firstMismatch ?? null).toBeNull();
    expect(st.mismatches).toBe(0);
    expect(st.messages).toBeGreaterThan(1000);
    expect(st.notifications).toBeGreaterThan(1000);
    expect(st.treatAsWithdraw).toBeGreaterThan(100);
    expect(st.discards).toBeGreaterThan(10);
  });

  it('OPEN with more than 255 octets of capabilities uses RFC 9072 extended parameters', () => {
    const caps = Array.from({ length: 40 }, (_, i) => ({ code: 200 + (i % 50), value: Buffer.alloc(8, i), unknown: true as const }));
    const d = decodeWire(encodeOpen({ asn: 65001, holdTime: 90, bgpId: 1, capabilities: caps }), { fourOctetAs: false });
    expect(d).not.toBeInstanceOf(BgpNotification);
    expect((d as { capabilities: unknown[] }).capabilities).toEqual(caps);
  });
});
