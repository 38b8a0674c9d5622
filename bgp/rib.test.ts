// Best-path selection (RFC 4271 §9.1.2.2, RFC 4456 §9) and Loc-RIB bookkeeping.
import { describe, expect, it } from 'vitest';
import { AsPathSegmentType, type PathAttributes, type Prefix } from './codec/index.js';
import { LocRib, Path, comparePaths, internPath, type RibPeer } from './rib.js';
import { PrefixMap, PrefixSet } from './prefixmap.js';

function peer(address: string, opts: Partial<RibPeer> = {}): RibPeer {
  return { address, bgpId: 1, asNumber: 65001, ebgp: true, rrClient: false, adjIn: new PrefixMap(), stale: null, paths: new Map(), ...opts };
}
const seq = (...asns: number[]) => [{ type: AsPathSegmentType.AS_SEQUENCE, asns }];
const attrs = (a: Partial<PathAttributes> = {}): PathAttributes => ({ origin: 0, asPath: seq(65001), nextHop: '10.0.0.1', ...a });
const best = (...ps: Path[]) => [...ps].sort(comparePaths)[0];

describe('comparePaths', () => {
  const e1 = peer('10.0.0.1', { bgpId: 10 });
  const e2 = peer('10.0.0.2', { bgpId: 20 });
  const i1 = peer('10.0.0.3', { bgpId: 5, ebgp: false, asNumber: 64512 });
  const i2 = peer('10.0.0.4', { bgpId: 6, ebgp: false, asNumber: 64512 });

  it('local routes first', () => {
    const local = new Path(null, { origin: 0, asPath: [] });
    expect(best(new Path(e1, attrs()), local)).toBe(local);
  });
  it('highest LOCAL_PREF (iBGP), eBGP counts as 100', () => {
    const hi = new Path(i1, attrs({ localPref: 200, asPath: seq(1, 2, 3) }));
    expect(best(new Path(e1, attrs()), hi)).toBe(hi);
    const lo = new Path(i1, attrs({ localPref: 50 }));
    const e = new Path(e1, attrs({ asPath: seq(1, 2, 3) }));
    expect(best(lo, e)).toBe(e);
  });
  it('shortest AS_PATH (an AS_SET counts one)', () => {
    const short = new Path(e2, attrs({ asPath: [{ type: AsPathSegmentType.AS_SET, asns: [1, 2, 3] }, ...seq(4)] }));
    expect(best(new Path(e1, attrs({ asPath: seq(1, 2, 3) })), short)).toBe(short);
  });
  it('lowest ORIGIN', () => {
    const igp = new Path(e2, attrs({ origin: 0 }));
    expect(best(new Path(e1, attrs({ origin: 2 })), igp)).toBe(igp);
  });
  it('lowest MED only between routes from the same neighbour AS', () => {
    const a = new Path(e2, attrs({ med: 5, asPath: seq(65001) }));
    const b = new Path(e1, attrs({ med: 10, asPath: seq(65001) }));
    expect(best(b, a)).toBe(a);
    // different neighbour AS: MED ignored, falls to router id (e1 lower)
    const c = new Path(e1, attrs({ med: 10, asPath: seq(65001) }));
    const d = new Path(e2, attrs({ med: 5, asPath: seq(65009) }));
    expect(best(d, c)).toBe(c);
  });
  it('eBGP over iBGP, then lowest router id / ORIGINATOR_ID, shorter CLUSTER_LIST, lowest peer address', () => {
    const e = new Path(e2, attrs());
    expect(best(new Path(i1, attrs()), e)).toBe(e);
    const x = new Path(i1, attrs({ originatorId: 99 }));
    const y = new Path(i2, attrs());
    expect(best(x, y)).toBe(y); // 6 < 99
    const c1 = new Path(i1, attrs({ originatorId: 7, clusterList: [1, 2] }));
    const c2 = new Path(i2, attrs({ originatorId: 7, clusterList: [1] }));
    expect(best(c1, c2)).toBe(c2);
    const p1 = new Path(peer('10.0.0.9', { bgpId: 1 }), attrs());
    const p2 = new Path(peer('10.0.0.10', { bgpId: 1 }), attrs());
    expect(best(p1, p2)).toBe(p1); // 10.0.0.9 < 10.0.0.10 numerically
  });
});

describe('LocRib', () => {
  it('tracks best per prefix, fresh routes shadow stale ones, reports the old best once per drain', () => {
    const rib = new LocRib();
    const a = peer('10.0.0.1', { bgpId: 1 });
    const b = peer('10.0.0.2', { bgpId: 2 });
    rib.addPeer(a);
    rib.addPeer(b);
    const p: Prefix = 42 * 64 + 24;
    const pa = internPath(a, attrs());
    expect(internPath(a, pa.attrs)).toBe(pa);
    rib.announce(a, p, pa);
    const pb = internPath(b, attrs({ asPath: seq(1, 2) }));
    rib.announce(b, p, pb);
    expect(rib.best.get(p)).toBe(pa);
    expect([...rib.changed]).toEqual([[p, undefined]]);
    rib.changed.clear();
    // a restarts: its route goes stale but stays best; then it is flushed -> b
    let before = rib.best.get(p);
    a.stale = a.adjIn;
    a.adjIn = new PrefixMap();
    expect(rib.update(p, before)).toBe(false);
    before = rib.best.get(p);
    a.stale = null;
    expect(rib.update(p, before)).toBe(true);
    expect(rib.best.get(p)).toBe(pb);
    expect(rib.changed.get(p)).toBe(pa);
    rib.withdraw(b, p);
    expect(rib.best.has(p)).toBe(false);
    expect(rib.changed.get(p)).toBe(pa);
  });
  it('with one peer computes the best paths and logs the changes storing them would; a second peer stores them', () => {
    const rib = new LocRib();
    const a = peer('10.0.0.1', { bgpId: 1 });
    rib.addPeer(a);
    const paths = [internPath(a, attrs()), internPath(a, attrs({ asPath: seq(1, 2) }))];
    const own = new Path(null, attrs({ asPath: [] }));
    let seed = 7;
    // high bits of the generator: its low bits repeat with a short period
    const rnd = (n: number) => Math.floor(((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32) * n);
    const prefixes: Prefix[] = Array.from({ length: 40 }, (_, i) => (1000 + i) * 64 + 24);
    // The decision with one peer: own route, else the peer's, else its stale one.
    const expected = (p: Prefix) => rib.local.get(p) ?? a.adjIn.get(p) ?? a.stale?.get(p);
    let seen = new Map<Prefix, Path | undefined>();
    for (let step = 1; step <= 4000; step++) {
      const p = prefixes[rnd(prefixes.length)]!;
      const op = rnd(8);
      if (op <= 2) rib.announce(a, p, paths[rnd(2)]!);
      else if (op <= 4) rib.withdraw(a, p);
      else if (op === 5) {
        rib.changing([p], () => {
          if (rib.local.has(p)) rib.local.delete(p);
          else rib.local.set(p, own);
        });
      } else if (op === 6 && rnd(20) === 0) {
        // the peer restarts (graceful): its routes go stale, the best paths stay
        const stale = a.stale ?? new PrefixMap<Path>();
        for (const [q, path] of a.adjIn) stale.set(q, path);
        a.stale = stale;
        a.adjIn = new PrefixMap();
      } else if (op === 7 && a.stale !== null && rnd(10) === 0) {
        // its End-of-RIB: what is still stale goes
        rib.changing([...a.stale.keys()], () => {
          a.stale = null;
        });
      }
      if (step % 10 === 0) {
        // a drain: every prefix whose best changed is logged once, with the best it had at the last drain
        const now = new Map(prefixes.map((q) => [q, expected(q)]));
        for (const [q, old] of rib.changed) expect(old).toBe(seen.get(q));
        for (const q of prefixes) {
          expect(rib.best.get(q)).toBe(now.get(q));
          if (now.get(q) !== seen.get(q)) expect(rib.changed.has(q)).toBe(true);
        }
        const withBest = prefixes.filter((q) => now.get(q) !== undefined);
        expect(rib.best.size).toBe(withBest.length);
        expect(new Set(rib.best.keys())).toEqual(new Set(withBest));
        rib.changed.clear();
        seen = now;
      }
    }
    const b = peer('10.0.0.2', { bgpId: 2 });
    rib.addPeer(b);
    for (const q of prefixes) expect(rib.best.get(q)).toBe(expected(q));
    const pb = internPath(b, attrs({ asPath: seq(1, 2, 3) }));
    rib.announce(b, prefixes[0]!, pb); // longer path: stays second unless nothing else is there
    expect(rib.best.get(prefixes[0]!)).toBe(expected(prefixes[0]!) ?? pb);
  });
});

describe('ChangeLog', () => {
  /** A Loc-RIB with one peer (the load fast path), two prefixes and a path. */
  function onePeer() {
    const rib = new LocRib();
    const a = peer('10.0.0.1', { bgpId: 1 });
    rib.addPeer(a);
    const p: Prefix = 42 * 64 + 24;
    const q: Prefix = 43 * 64 + 24;
    return { rib, a, p, q, pa: internPath(a, attrs()) };
  }

  it('reports each prefix once with its best before the first change, through the load fast path', () => {
    const { rib, a, p, q, pa } = onePeer();
    rib.announce(a, p, pa); // fast path: no best before
    rib.announce(a, q, pa);
    expect(rib.changed.mayRepeat).toBe(false);
    expect([...rib.changed]).toEqual([
      [p, undefined],
      [q, undefined],
    ]);
    rib.withdraw(a, p); // withdrawn in the same drain...
    rib.announce(a, p, pa); // ...and announced again: one entry, best before the first change
    expect(rib.changed.size).toBe(2);
    expect([...rib.changed]).toEqual([
      [p, undefined],
      [q, undefined],
    ]);
    rib.changed.clear();
    rib.withdraw(a, q);
    expect([...rib.changed]).toEqual([[q, pa]]);
  });

  it('knows each new best while no prefix repeats; a path replaced by its own peer is logged with the old one', () => {
    const { rib, a, p, q, pa } = onePeer();
    const pa2 = internPath(a, attrs({ asPath: seq(1, 2) }));
    for (const x of [p, q]) {
      rib.announce(a, x, pa);
    }
    expect(rib.changed.mayRepeat).toBe(false);
    expect(rib.changed.news.slice(0, rib.changed.length)).toEqual([pa, pa]);
    rib.changed.clear();
    rib.announce(a, p, pa); // the same path again: no change
    expect(rib.changed.length).toBe(0);
    rib.announce(a, p, pa2); // another path from the same (only) peer: it is the best now
    expect(rib.best.get(p)).toBe(pa2);
    expect([...rib.changed]).toEqual([[p, pa]]);
    rib.announce(a, p, pa); // and back, in the same drain: one entry, best before the first change
    expect(rib.changed.mayRepeat).toBe(true);
    expect([...rib.changed]).toEqual([[p, pa]]);
    expect(rib.best.get(p)).toBe(pa);
  });
  it('takes the next batch in the same arrays once drained, holding no paths from the last one', () => {
    const { rib, a, pa } = onePeer();
    const log = rib.changed;
    const prefixes = log.prefixes;
    for (let i = 0; i < 100; i++) {
      const x = (100 + i) * 64 + 24;
      rib.announce(a, x, pa);
    }
    expect(log.length).toBe(100);
    log.clear();
    expect(log.length).toBe(0);
    expect([...log]).toEqual([]);
    // No path of the drained batch stays reachable through the left-over entries.
    expect(log.olds.includes(pa) || log.news.includes(pa)).toBe(false);
    const y = 999 * 64 + 24;
    rib.announce(a, y, pa);
    expect(log.prefixes).toBe(prefixes);
    expect([...log]).toEqual([[y, undefined]]);
    expect(log.has(y)).toBe(true);
    expect(log.has(100 * 64 + 24)).toBe(false); // a left-over beyond the length is not in the log
    expect(log.news.slice(0, log.length)).toEqual([pa]);
  });
});

describe('PrefixMap / PrefixSet', () => {
  it('behave like Map / Set for IPv4 numbers of every length and IPv6 strings', () => {
    const m = new PrefixMap<string>();
    const ps: Prefix[] = [0, 32, 0xffffffff * 64 + 32, 0x80000000 * 64 + 1, (0x0a000000 >>> 0) * 64 + 8, 'fd00::/64', '::/0'];
    ps.forEach((p, i) => m.set(p, `v${i}`));
    expect(m.size).toBe(ps.length);
    ps.forEach((p, i) => expect(m.get(p)).toBe(`v${i}`));
    expect(new Set(m.keys())).toEqual(new Set(ps));
    expect([...m.values()].sort()).toEqual(ps.map((_, i) => `v${i}`).sort());
    const seen: Prefix[] = [];
    m.forEach((_v, p) => seen.push(p));
    expect(new Set(seen)).toEqual(new Set(ps));
    expect(m.delete(0xffffffff * 64 + 32)).toBe(true);
    expect(m.has(0xffffffff * 64 + 32)).toBe(false);
    expect(m.get(0xffffffff * 64 + 31)).toBeUndefined();
    m.clear();
    expect(m.size).toBe(0);
    const s = new PrefixSet();
    s.add(5 * 64 + 24).add('fd00::/8').add(5 * 64 + 24);
    expect(s.size).toBe(2);
    for (const p of s) s.delete(p); // deleting while iterating, as the export loop does
    expect(s.size).toBe(0);
  });

  it('match a Map under random inserts, overwrites and deletes across table growth and shrink', () => {
    // Deterministic LCG so a failure reproduces.
    let seed = 12345;
    const rnd = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    const m = new PrefixMap<number>();
    const ref = new Map<Prefix, number>();
    const lens = [8, 16, 24, 32];
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 20000; i++) {
        // Keys over the whole address range (negative as int32 too), a few lengths, some collisions.
        const addr = (rnd(3) === 0 ? rnd(500) * 0x01000000 : rnd(0xffffffff)) >>> 0;
        const p = addr * 64 + lens[rnd(lens.length)]!;
        if (rnd(4) === 0) expect(m.delete(p)).toBe(ref.delete(p));
        else if (rnd(2) === 0) {
          expect(m.swap(p, i)).toBe(ref.get(p));
          ref.set(p, i);
        } else {
          m.set(p, i);
          ref.set(p, i);
        }
      }
      expect(m.size).toBe(ref.size);
      for (const [p, v] of ref) expect(m.get(p)).toBe(v);
      const seen = new Map(m.entries());
      expect(seen).toEqual(ref);
      m.compact();
      expect(new Map(m.entries())).toEqual(ref);
      // Delete everything while iterating (the export loop's pattern), then the table is empty.
      let n = 0;
      for (const p of m.keys()) {
        m.delete(p);
        n++;
      }
      expect(n).toBe(ref.size);
      expect(m.size).toBe(0);
      expect([...m.keys()]).toEqual([]);
      for (const p of ref.keys()) expect(m.has(p)).toBe(false);
      ref.clear();
    }
  });

  it('grow fast while filling and give the room back on compact, contents unchanged', () => {
    const m = new PrefixMap<number>();
    const n = 30_000;
    for (let i = 0; i < n; i++) m.set(((0x10000000 + i * 256) >>> 0) * 64 + 24, i % 7);
    // Eightfold growth: 30,000 /24s sit in 2^18 slots; the fitting size (load <= 1/2) is 2^16.
    expect(m.slots).toBe(1 << 18);
    m.compact();
    expect(m.slots).toBe(1 << 16);
    expect(m.size).toBe(n);
    for (let i = 0; i < n; i++) expect(m.get(((0x10000000 + i * 256) >>> 0) * 64 + 24)).toBe(i % 7);
    // A fitting table is left as it is; deleting down to a few entries lets compact shrink it.
    m.compact();
    expect(m.slots).toBe(1 << 16);
    for (let i = 10; i < n; i++) m.delete(((0x10000000 + i * 256) >>> 0) * 64 + 24);
    m.compact();
    expect(m.slots).toBe(32);
    expect([...m.values()].sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 0, 1, 2].sort());
  });
});
