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
 * The Loc-RIB. `update(prefix)` re-runs the decision for one prefix over the local routes and
 * every peer's Adj-RIB-In (fresh entries shadow stale ones of the same peer) and records the
 * change; the caller drains `changed` to notify and to export.
 */
export class LocRib {
  readonly best = new PrefixMap<Path>();
  readonly local = new PrefixMap<Path>();
  readonly peers: RibPeer[] = [];
  /** Prefixes whose best path changed since the last drain, with the best path before the first change. */
  changed = new ChangeLog();

  addPeer(p: RibPeer): void {
    if (!this.peers.includes(p)) this.peers.push(p);
  }

  removePeer(p: RibPeer): void {
    const i = this.peers.indexOf(p);
    if (i >= 0) this.peers.splice(i, 1);
  }

  /** Decision for one prefix. Returns true if the best path changed. */
  update(prefix: Prefix): boolean {
    let best = this.local.get(prefix);
    const peers = this.peers;
    for (let i = 0; i < peers.length; i++) {
      const pr = peers[i];
      let p = pr.adjIn.get(prefix);
      if (p === undefined && pr.stale !== null) p = pr.stale.get(prefix);
      if (p === undefined) continue;
      if (best === undefined || comparePaths(p, best) < 0) best = p;
    }
    const old = this.best.get(prefix);
    if (old === best) return false;
    const log = this.changed;
    if (best === undefined) {
      this.best.delete(prefix);
      log.removed = true;
    } else this.best.set(prefix, best);
    log.add(prefix, old, best);
    log.mayRepeat = true;
    return true;
  }

  /**
   * Fast path for a route just stored in `peer.adjIn` (the common case during a table load):
   * if nothing else is known for the prefix, it is the best without scanning other peers.
   */
  announced(prefix: Prefix, peer: RibPeer, path: Path): void {
    if (this.peers.length === 1 && this.peers[0] === peer && !this.local.has(prefix)) {
      // The only source of routes: its path is the best, whatever was there (one table probe
      // instead of a lookup and then a store).
      const old = this.best.swap(prefix, path);
      if (old === path) return;
      const log = this.changed;
      log.add(prefix, old, path);
      // Had a best: may have been logged since the drain. Had none: it was logged since the
      // drain only if a best was removed since.
      if (old !== undefined || log.removed) log.mayRepeat = true;
      return;
    }
    const old = this.best.get(prefix);
    if (old !== undefined && old.src !== peer && comparePaths(old, path) <= 0) {
      // The current best (from elsewhere) stays best.
      return;
    }
    this.update(prefix);
  }

  /** Number of best routes from a peer (for status), computed on demand. */
  countFrom(peer: RibPeer): number {
    let n = 0;
    for (const p of this.best.values()) if (p.src === peer) n++;
    return n;
  }
}
