// RIBs: Adj-RIB-In per peer (with a stale generation for graceful restart), the Loc-RIB of best
// paths (RFC 4271 §9.1.2.2 with the RFC 4456 tie-breaks), and the locally originated routes.
// Prefix keys are the codec's representation (IPv4: number addr*64+len, IPv6: canonical text),
// so no per-route strings are built while a table is installed. A route is a shared, interned
// `Path` (one per peer and attribute set): a route costs the Map entries holding it, nothing more.
import { AsPathSegmentType, type PathAttributes, type Prefix } from './codec/types.js';
import { PrefixMap } from './prefixmap.js';

/** The RIB's view of a peer (the session layer owns the rest). */
export interface RibPeer {
  readonly address: string;
  /** Peer's BGP identifier (unsigned 32-bit), set when the session opens. */
  bgpId: number;
  asNumber: number;
  /** eBGP session. */
  ebgp: boolean;
  /** Peer is our route-reflector client. */
  rrClient: boolean;
  /** Current routes. */
  adjIn: PrefixMap<Path>;
  /** Routes kept from the previous session while the peer restarts (RFC 4724), or null. */
  stale: PrefixMap<Path> | null;
  /** Interned Path per attribute object. */
  paths: Map<PathAttributes, Path>;
}

export class Path {
  /** Next hop (text): MP_REACH next hop or NEXT_HOP; undefined for local routes. */
  readonly nextHop: string | undefined;
  readonly asPathLength: number;
  /** First AS of the path (neighbour AS for MED comparison), 0 for empty paths. */
  readonly neighborAs: number;
  constructor(
    /** null = originated by this node. */
    readonly src: RibPeer | null,
    readonly attrs: PathAttributes,
  ) {
    this.nextHop = attrs.mpNextHop ?? attrs.nextHop;
    let len = 0;
    let first = 0;
    for (const seg of attrs.asPath ?? []) {
      if (seg.type === AsPathSegmentType.AS_SEQUENCE) len += seg.asns.length;
      else if (seg.type === AsPathSegmentType.AS_SET) len += 1;
      if (first === 0 && seg.type === AsPathSegmentType.AS_SEQUENCE && seg.asns.length) first = seg.asns[0];
    }
    this.asPathLength = len;
    this.neighborAs = first;
  }

  /** RFC 1997 communities as "AS:value" texts for reporting (shared: do not modify). */
  communityTexts(): string[] | undefined {
    const cs = this.attrs.communities;
    if (cs === undefined) return undefined;
    if (this.commTexts === undefined) this.commTexts = cs.map((x) => `${x >>> 16}:${x & 0xffff}`);
    return this.commTexts;
  }

  private commTexts: string[] | undefined;

  /** Flat AS path (sequences and sets in order) for reporting. */
  private flat: number[] | undefined;
  asPathFlat(): number[] {
    if (this.flat === undefined) {
      const out: number[] = [];
      for (const seg of this.attrs.asPath ?? []) out.push(...seg.asns);
      this.flat = out;
    }
    return this.flat;
  }
}

export function internPath(peer: RibPeer, attrs: PathAttributes): Path {
  let p = peer.paths.get(attrs);
  if (!p) {
    p = new Path(peer, attrs);
    peer.paths.set(attrs, p);
  }
  return p;
}

function ipCompare(a: string, b: string): number {
  // Addresses of one family compare by value; text length first gives numeric order for
  // dotted quads of equal shape only, so parse.
  const pa = ipToBig(a);
  const pb = ipToBig(b);
  return pa < pb ? -1 : pa > pb ? 1 : 0;
}

function ipToBig(a: string): bigint {
  if (a.includes('.') && !a.includes(':')) {
    return a.split('.').reduce((acc, o) => (acc << 8n) | BigInt(Number(o) & 255), 0n);
  }
  const [h, t] = a.includes('::') ? a.split('::') : [a, undefined];
  const hs = h ? h.split(':') : [];
  const ts = t ? t.split(':') : [];
  const gs = t === undefined ? hs : [...hs, ...Array(Math.max(0, 8 - hs.length - ts.length)).fill('0'), ...ts];
  return gs.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g || '0', 16) || 0), 0n) + (1n << 130n);
}

/**
 * RFC 4271 §9.1.2.2 decision process (plus locally originated routes first, RFC 4456 §9
 * CLUSTER_LIST length and ORIGINATOR_ID). Negative when `a` is better.
 */
export function comparePaths(a: Path, b: Path): number {
  if (a === b) return 0;
  // Own routes win (as BIRD prefers its static protocol over BGP by preference).
  if (!a.src !== !b.src) return a.src ? 1 : -1;
  // Stale routes lose against fresh ones of the same rank below; local pref first.
  const lpA = a.src && !a.src.ebgp ? (a.attrs.localPref ?? 100) : 100;
  const lpB = b.src && !b.src.ebgp ? (b.attrs.localPref ?? 100) : 100;
  if (lpA !== lpB) return lpB - lpA;
  if (a.asPathLength !== b.asPathLength) return a.asPathLength - b.asPathLength;
  const oa = a.attrs.origin ?? 2;
  const ob = b.attrs.origin ?? 2;
  if (oa !== ob) return oa - ob;
  if (a.neighborAs === b.neighborAs) {
    const ma = a.attrs.med ?? 0;
    const mb = b.attrs.med ?? 0;
    if (ma !== mb) return ma - mb;
  }
  const ea = a.src?.ebgp ? 0 : 1;
  const eb = b.src?.ebgp ? 0 : 1;
  if (ea !== eb) return ea - eb;
  // (no IGP metric to the next hop: all next hops are connected or equal)
  const ida = a.attrs.originatorId ?? a.src?.bgpId ?? 0;
  const idb = b.attrs.originatorId ?? b.src?.bgpId ?? 0;
  if (ida !== idb) return ida - idb;
  const ca = a.attrs.clusterList?.length ?? 0;
  const cb = b.attrs.clusterList?.length ?? 0;
  if (ca !== cb) return ca - cb;
  if (a.src && b.src) return ipCompare(a.src.address, b.src.address);
  return 0;
}

/**
 * Best-path changes since the last drain, in order: each prefix with the best path it had before
 * its first change. A log of parallel arrays rather than a Map (a table load appends ~100,000
 * entries per second; a Map per drain grows and rehashes, and its iterators allocate per entry).
 * The arrays are kept across drains (`clear` only resets the count), so a drained log takes the
 * next batch without allocating: entries at and beyond `length` are left-overs, not the log.
 * A prefix can appear more than once only if something other than the table-load fast path
 * logged it, or a best path was removed since the drain: `mayRepeat` says so, and readers then
 * keep the first entry per prefix (`forEachFirst`).
 */
export class ChangeLog {
  readonly prefixes: Prefix[] = [];
  readonly olds: (Path | undefined)[] = [];
  /** The best path after the change; while no prefix repeats, still the current best. */
  readonly news: (Path | undefined)[] = [];
  /** Entries in the log (the arrays may be longer). */
  length = 0;
  /** Some prefix may be logged twice. */
  mayRepeat = false;
  /** A best path was removed since the last drain. */
  removed = false;

  /** Appends a change of `prefix` from best path `old` to `now`. */
  add(prefix: Prefix, old: Path | undefined, now: Path | undefined): void {
    const n = this.length;
    this.prefixes[n] = prefix;
    this.olds[n] = old;
    this.news[n] = now;
    this.length = n + 1;
  }

  /** Number of distinct prefixes. */
  get size(): number {
    if (!this.mayRepeat) return this.length;
    let n = 0;
    this.forEachFirst(() => n++);
    return n;
  }

  /**
   * Each changed prefix once, with the best path before its first change, as parallel arrays
   * and their length (the log's own arrays when no prefix repeats).
   */
  firsts(): { prefixes: Prefix[]; olds: (Path | undefined)[]; length: number } {
    if (!this.mayRepeat) return { prefixes: this.prefixes, olds: this.olds, length: this.length };
    const prefixes: Prefix[] = [];
    const olds: (Path | undefined)[] = [];
    this.forEachFirst((p, old) => {
      prefixes.push(p);
      olds.push(old);
    });
    return { prefixes, olds, length: prefixes.length };
  }

  /** Each changed prefix once, with the best path before its first change. */
  forEachFirst(cb: (p: Prefix, old: Path | undefined) => void): void {
    const ps = this.prefixes;
    const olds = this.olds;
    const n = this.length;
    if (!this.mayRepeat) {
      for (let i = 0; i < n; i++) cb(ps[i]!, olds[i]);
      return;
    }
    const seen = new PrefixMap<true>();
    for (let i = 0; i < n; i++) {
      const p = ps[i]!;
      if (seen.has(p)) continue;
      seen.set(p, true);
      cb(p, olds[i]);
    }
  }

  /** The index of the first entry for `p`, or -1 (linear: for tests and diagnostics). */
  private indexOf(p: Prefix): number {
    for (let i = 0; i < this.length; i++) if (this.prefixes[i] === p) return i;
    return -1;
  }

  has(p: Prefix): boolean {
    return this.indexOf(p) >= 0;
  }

  /** The best path before the first change of `p` (linear: for tests and diagnostics). */
  get(p: Prefix): Path | undefined {
    const i = this.indexOf(p);
    return i < 0 ? undefined : this.olds[i];
  }

  /**
   * Empties the log, keeping its arrays for the next batch (up to RETAIN entries; a larger one, as
   * a flushed peer leaves, is let go). Paths are dropped: a left-over must not keep a removed
   * peer's routes alive.
   */
  clear(): void {
    const n = this.length;
    if (this.prefixes.length > ChangeLog.RETAIN) {
      this.prefixes.length = 0;
      this.olds.length = 0;
      this.news.length = 0;
    } else {
      this.olds.fill(undefined, 0, n);
      this.news.fill(undefined, 0, n);
    }
    this.length = 0;
    this.mayRepeat = false;
    this.removed = false;
  }

  /** Entries a cleared log keeps room for. */
  static readonly RETAIN = 4096;

  *[Symbol.iterator](): IterableIterator<[Prefix, Path | undefined]> {
    const out: [Prefix, Path | undefined][] = [];
    this.forEachFirst((p, old) => out.push([p, old]));
    yield* out;
  }
}

/**
 * The Loc-RIB's best paths, read-only: `get`, `has`, `size` and iteration as a Map has them.
 * Stored, or (while the RIB has one peer) computed from that peer's routes and the local ones.
 */
export interface BestPaths extends Iterable<[Prefix, Path]> {
  readonly size: number;
  get(p: Prefix): Path | undefined;
  has(p: Prefix): boolean;
  keys(): IterableIterator<Prefix>;
  values(): IterableIterator<Path>;
  entries(): IterableIterator<[Prefix, Path]>;
  compact(): void;
}

/**
 * The Loc-RIB. Peers' routes change through `announce` and `withdraw`; any other change to a
 * peer's Adj-RIB-In, its stale routes or the local routes goes through `changing(prefixes,
 * mutate)`, which re-runs the decision for those prefixes afterwards (`update(prefix, before)`
 * with the best path each had before) and records the changes; the caller drains `changed` to
 * notify and to export.
 *
 * While the RIB has never had a second peer, the best paths are not stored: with one peer the
 * decision gives the local route, else the peer's route, else its stale one (own routes always
 * win; fresh routes shadow stale ones of the same peer), and `best` reads that. A full table
 * from that peer (a node peering with its top-of-rack router, the bench's relay) is then stored
 * once, in the Adj-RIB-In, as BIRD stores it once. The second peer makes the table.
 */
export class LocRib {
  /** The stored best paths (empty while `single`). */
  private readonly table = new PrefixMap<Path>();
  readonly local = new PrefixMap<Path>();
  readonly peers: RibPeer[] = [];
  /** Prefixes whose best path changed since the last drain, with the best path before the first change. */
  changed = new ChangeLog();
  /** Best paths computed from the only peer and the local routes, not stored (see above). */
  private single = true;
  readonly best: BestPaths = new BestView(this);

  /** The best path for `p` (see `best`). */
  bestOf(p: Prefix): Path | undefined {
    if (!this.single) return this.table.get(p);
    const l = this.local.get(p);
    if (l !== undefined) return l;
    const m = this.peers[0];
    if (m === undefined) return undefined;
    const a = m.adjIn.get(p);
    if (a !== undefined) return a;
    return m.stale !== null ? m.stale.get(p) : undefined;
  }

  /** Number of prefixes with a best path. */
  bestSize(): number {
    if (!this.single) return this.table.size;
    let n = this.local.size;
    const m = this.peers[0];
    if (m === undefined) return n;
    n += m.adjIn.size;
    if (this.local.size !== 0) for (const p of this.local.keys()) if (m.adjIn.has(p)) n--;
    if (m.stale !== null) for (const p of m.stale.keys()) if (!m.adjIn.has(p) && !this.local.has(p)) n++;
    return n;
  }

  /** Every prefix with its best path. */
  *bestEntries(): IterableIterator<[Prefix, Path]> {
    if (!this.single) {
      yield* this.table.entries();
      return;
    }
    yield* this.local.entries();
    const m = this.peers[0];
    if (m === undefined) return;
    const local = this.local;
    for (const [p, path] of m.adjIn.entries()) if (!local.has(p)) yield [p, path];
    if (m.stale !== null) for (const [p, path] of m.stale.entries()) if (!m.adjIn.has(p) && !local.has(p)) yield [p, path];
  }

  compact(): void {
    this.table.compact();
  }

  addPeer(p: RibPeer): void {
    if (this.peers.includes(p)) return;
    if (this.single && this.peers.length === 1) {
      for (const [q, path] of this.bestEntries()) this.table.set(q, path);
      this.single = false;
    }
    this.peers.push(p);
  }

  removePeer(p: RibPeer): void {
    const i = this.peers.indexOf(p);
    if (i >= 0) this.peers.splice(i, 1);
  }

  /**
   * Decision for one prefix after its routes changed; `before` is the best path it had before
   * the change (needed while `single`; a stored table knows it). Returns true if the best path
   * changed.
   */
  update(prefix: Prefix, before: Path | undefined): boolean {
    let best: Path | undefined;
    let old: Path | undefined;
    if (this.single) {
      best = this.bestOf(prefix);
      old = before;
      if (old === best) return false;
    } else {
      best = this.local.get(prefix);
      const peers = this.peers;
      for (let i = 0; i < peers.length; i++) {
        const pr = peers[i];
        let p = pr.adjIn.get(prefix);
        if (p === undefined && pr.stale !== null) p = pr.stale.get(prefix);
        if (p === undefined) continue;
        if (best === undefined || comparePaths(p, best) < 0) best = p;
      }
      old = this.table.get(prefix);
      if (old === best) return false;
      if (best === undefined) this.table.delete(prefix);
      else this.table.set(prefix, best);
    }
    const log = this.changed;
    if (best === undefined) log.removed = true;
    log.add(prefix, old, best);
    log.mayRepeat = true;
    return true;
  }

  /**
   * A route from `peer`: stored in its Adj-RIB-In (a stale route it had for the prefix goes),
   * and the Loc-RIB updated. The per-prefix step of a table load.
   */
  announce(peer: RibPeer, prefix: Prefix, path: Path): void {
    let prev = peer.adjIn.swap(prefix, path);
    const stale = peer.stale;
    if (stale !== null) {
      const s = stale.get(prefix);
      if (s !== undefined) {
        stale.delete(prefix);
        if (prev === undefined) prev = s;
      }
    }
    if (this.single) {
      // The peer's route is the best unless a local one is; before, its previous one was.
      if (prev === path || this.local.has(prefix)) return;
      const log = this.changed;
      log.add(prefix, prev, path);
      // Had a best: may have been logged since the drain. Had none: it was logged since the
      // drain only if a best was removed since.
      if (prev !== undefined || log.removed) log.mayRepeat = true;
      return;
    }
    const old = this.table.get(prefix);
    if (old !== undefined && old.src !== peer && comparePaths(old, path) <= 0) {
      // The current best (from elsewhere) stays best.
      return;
    }
    this.update(prefix, old);
  }

  /**
   * Runs `mutate`, a change to the routes of `prefixes` other than `announce`/`withdraw` (local
   * routes, a peer's stale or whole Adj-RIB-In replaced), then updates each of them against the
   * best path it had before (read only while `single`: a stored table still holds it).
   */
  changing(prefixes: readonly Prefix[], mutate: () => void): void {
    const before = this.single ? prefixes.map((p) => this.bestOf(p)) : undefined;
    mutate();
    for (let i = 0; i < prefixes.length; i++) this.update(prefixes[i]!, before?.[i]);
  }

  /** `peer` withdrew `prefix` (its fresh and stale routes for it go). */
  withdraw(peer: RibPeer, prefix: Prefix): void {
    const before = this.single ? this.bestOf(prefix) : undefined;
    const had = peer.adjIn.delete(prefix);
    const hadStale = peer.stale !== null && peer.stale.delete(prefix);
    if (had || hadStale) this.update(prefix, before);
  }

  /** Number of best routes from a peer (for status), computed on demand. */
  countFrom(peer: RibPeer): number {
    let n = 0;
    for (const [, p] of this.bestEntries()) if (p.src === peer) n++;
    return n;
  }
}

/** `LocRib.best`: the Loc-RIB's reads, stored or computed. */
class BestView implements BestPaths {
  constructor(private readonly rib: LocRib) {}
  get size(): number {
    return this.rib.bestSize();
  }
  get(p: Prefix): Path | undefined {
    return this.rib.bestOf(p);
  }
  has(p: Prefix): boolean {
    return this.rib.bestOf(p) !== undefined;
  }
  *keys(): IterableIterator<Prefix> {
    for (const [p] of this.rib.bestEntries()) yield p;
  }
  *values(): IterableIterator<Path> {
    for (const [, path] of this.rib.bestEntries()) yield path;
  }
  entries(): IterableIterator<[Prefix, Path]> {
    return this.rib.bestEntries();
  }
  [Symbol.iterator](): IterableIterator<[Prefix, Path]> {
    return this.rib.bestEntries();
  }
  compact(): void {
    this.rib.compact();
  }
}
