// Map and Set keyed by the codec's prefixes without boxing. An IPv4 prefix (the number
// addr * 64 + len, up to 2^38) would be a heap-allocated number as a Map key, and a JS Map of
// 100,000 entries is rebuilt (rehashed on the V8 heap) every time it doubles while a table loads.
// Here IPv4 entries live in one open-addressing hash table per prefix length, entirely in typed
// arrays (off the V8 heap: nothing for the garbage collector to scan or copy, and growing a table
// is a calloc and a loop over integers): per slot the address as an int32 and a value reference.
// Values are interned per map in a small palette (a RIB table holds a few shared paths for
// many prefixes), reference-counted so a value no longer stored anywhere is released. IPv6
// prefixes (strings) in one plain Map. Same methods as Map / Set for what the RIB uses, with two
// differences: iteration order is the table's, not insertion order; and entries may be deleted
// while iterating (as the export loop does) but an entry added during an iteration may or may not
// be visited. A number key is split with floor and subtraction, never `p % 64`: on a double above
// 2^31 that is a call to fmod (~11 ns against ~1 ns, on every table access).
import type { Prefix } from './codec/types.js';

const MIN_BITS = 3;
/** Largest table (2^20 slots, 8 MiB) reached by eightfold growth; beyond it tables double. */
const GROW_FAST_MAX = 20;

/** Bits of the fitting table for `n` entries: load factor at most 1/2. */
function fitBits(n: number): number {
  let bits = MIN_BITS;
  while (1 << bits < n * 2) bits++;
  return bits;
}
/** Value reference of a deleted slot (tombstone); 0 is an empty slot, >= 1 a palette id. */
const DEAD = -1;

/** Tables made so far: each gets its own hash seed. */
let tables = 0;

/**
 * Home slot of `k` in a table of 2^bits slots: a seeded murmur3 finalizer, top bits. Each table
 * hashes with its own seed, so one table's slot order is no order at all for another: with one
 * hash for all, filling a small table with keys in a large table's slot order (a Loc-RIB flush
 * walking an Adj-RIB-In, a dump filling a dirty set) piles them into one probe cluster
 * (quadratic: seconds for 100,000 keys).
 */
function home(k: number, seed: number, bits: number): number {
  let h = k ^ seed;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> (32 - bits);
}

/**
 * Open-addressing (linear probing) hash table from int32 keys to positive int32 references,
 * keys and references interleaved in one Int32Array (one cache line per probe).
 */
class IntTable {
  bits = MIN_BITS;
  readonly seed = Math.imul(++tables, 0x9e3779b9);
  /** [key, ref] per slot; ref 0 = empty, DEAD = deleted. */
  t = new Int32Array(2 << MIN_BITS);
  size = 0;
  /** Full + deleted slots. */
  used = 0;

  /** Slot index of `k`, or -1. */
  find(k: number): number {
    const t = this.t;
    const mask = (t.length >> 1) - 1;
    let i = home(k, this.seed, this.bits);
    for (;;) {
      const r = t[2 * i + 1]!;
      if (r === 0) return -1;
      if (r > 0 && t[2 * i] === k) return i;
      i = (i + 1) & mask;
    }
  }

  /** Reference stored for `k`, or 0. */
  get(k: number): number {
    const i = this.find(k);
    return i < 0 ? 0 : this.t[2 * i + 1]!;
  }

  /** Stores `ref` (>= 1) for `k`; returns the reference it replaces, or 0. */
  set(k: number, ref: number): number {
    // After a growth the probe starts again in the new table through the same loop: a separate
    // loop for that rare case would have no type feedback when V8 optimizes this method, and the
    // first growth in a real table load would throw the optimized code away.
    for (;;) {
      const t = this.t;
      const mask = (t.length >> 1) - 1;
      let i = home(k, this.seed, this.bits);
      let dead = -1;
      for (;;) {
        const r = t[2 * i + 1]!;
        if (r === 0) break;
        if (r > 0) {
          if (t[2 * i] === k) {
            t[2 * i + 1] = ref;
            return r;
          }
        } else if (dead < 0) dead = i;
        i = (i + 1) & mask;
      }
      if (dead >= 0) i = dead;
      else if ((this.used + 1) * 4 > (mask + 1) * 3) {
        // Grow (or rebuild in place when most used slots are deleted ones), then probe again.
        this.rehash(this.size + 1, true);
        continue;
      } else this.used++;
      t[2 * i] = k;
      t[2 * i + 1] = ref;
      this.size++;
      return 0;
    }
  }

  /** Removes `k`; returns the reference it had, or 0. */
  delete(k: number): number {
    const i = this.find(k);
    if (i < 0) return 0;
    const r = this.t[2 * i + 1]!;
    this.t[2 * i + 1] = DEAD;
    this.size--;
    if (this.size === 0 && this.bits > MIN_BITS) this.rehash(0);
    return r;
  }

  /** Shrinks to the fitting size if larger (after a fast growth or many deletions). */
  compact(): void {
    if (this.bits > fitBits(this.size)) this.rehash(this.size);
  }

  /**
   * Rebuilds with room for `n` entries: the fitting size (load factor at most 1/2 right after),
   * or, when `growing` past the present size, eight times the present size (up to 2^GROW_FAST_MAX
   * slots): a table filling up (a peer's full table arriving) then moves its entries into a new
   * table a third as often as doubling would, which was most of the cost of storing a route
   * (100,000 /24s into two tables: 19.5 -> 8.4 ms). The extra room is given back by `compact`.
   */
  private rehash(n: number, growing = false): void {
    const fit = fitBits(n);
    const bits = growing && fit > this.bits ? Math.max(fit, Math.min(this.bits + 3, GROW_FAST_MAX)) : fit;
    const old = this.t;
    const nt = new Int32Array(2 << bits);
    // Written once, in order, before the scattered probes: a fresh page first read (each probe
    // reads before it writes) is mapped to the zero page and faulted again on the write (copy on
    // write), and on these VMs that pair costs ~7 us a page against ~1.5 us for one sequential
    // write fault. Moving 24,576 entries into a fresh 2^18-slot table: ~8.5 ms -> ~1.2 ms.
    nt.fill(0);
    const mask = (1 << bits) - 1;
    let size = 0;
    for (let j = 1; j < old.length; j += 2) {
      const r = old[j]!;
      if (r <= 0) continue;
      const k = old[j - 1]!;
      let i = home(k, this.seed, bits);
      while (nt[2 * i + 1] !== 0) i = (i + 1) & mask;
      nt[2 * i] = k;
      nt[2 * i + 1] = r;
      size++;
    }
    this.bits = bits;
    this.t = nt;
    this.size = size;
    this.used = size;
  }
}

export class PrefixMap<V> {
  private readonly v4: (IntTable | undefined)[] = new Array(33).fill(undefined);
  private readonly v6 = new Map<string, V>();
  // Value palette of the IPv4 tables: vals[id] is referenced refs[id] times; id 0 is no value
  // (a table's empty slot), so vals[0] stays undefined. Starting with that entry also makes
  // `vals` an array of references from birth, as every use makes it: an array that changes its
  // element kind on first use would throw away optimized code made with an older one.
  private readonly vals: (V | undefined)[] = [undefined];
  private readonly refs: number[] = [0];
  private readonly free: number[] = [];
  private readonly ids = new Map<V, number>();
  /** The last value interned and its id (a table load stores one value many times in a row). */
  private lastVal: V | undefined = undefined;
  private lastId = 0;

  get size(): number {
    let n = this.v6.size;
    for (let i = 0; i <= 32; i++) {
      const m = this.v4[i];
      if (m !== undefined) n += m.size;
    }
    return n;
  }

  /** Slots of the IPv4 tables (8 bytes each): the memory they hold, for tests and accounting. */
  get slots(): number {
    let n = 0;
    for (let i = 0; i <= 32; i++) n += (this.v4[i]?.t.length ?? 0) >> 1;
    return n;
  }

  /** Id of `v` in the palette with one more reference. */
  private ref(v: V): number {
    let id: number | undefined;
    if (this.lastId !== 0 && this.lastVal === v) id = this.lastId;
    else {
      id = this.ids.get(v);
      if (id === undefined) {
        id = this.free.length !== 0 ? this.free.pop()! : this.vals.length;
        this.vals[id] = v;
        this.refs[id] = 0;
        this.ids.set(v, id);
      }
      this.lastVal = v;
      this.lastId = id;
    }
    this.refs[id]++;
    return id;
  }

  /** Drops one reference to palette id `id`. */
  private unref(id: number): void {
    if (--this.refs[id]! !== 0) return;
    this.ids.delete(this.vals[id] as V);
    this.vals[id] = undefined;
    this.free.push(id);
    if (this.lastId === id) {
      this.lastId = 0;
      this.lastVal = undefined;
    }
  }

  get(p: Prefix): V | undefined {
    if (typeof p === 'number') {
      const a = Math.floor(p / 64);
      const len = p - a * 64;
      const m = this.v4[len];
      if (m === undefined) return undefined;
      const id = m.get(a | 0);
      return this.vals[id];
    }
    return this.v6.get(p);
  }

  has(p: Prefix): boolean {
    if (typeof p === 'number') {
      const a = Math.floor(p / 64);
      const len = p - a * 64;
      const m = this.v4[len];
      return m !== undefined && m.find(a | 0) >= 0;
    }
    return this.v6.has(p);
  }

  set(p: Prefix, v: V): this {
    if (typeof p === 'number') {
      const a = Math.floor(p / 64);
      const len = p - a * 64;
      let m = this.v4[len];
      if (m === undefined) this.v4[len] = m = new IntTable();
      const old = m.set(a | 0, this.ref(v));
      if (old !== 0) this.unref(old);
    } else {
      this.v6.set(p, v);
    }
    return this;
  }

  /** Stores `v` for `p`; returns the value it replaces. */
  swap(p: Prefix, v: V): V | undefined {
    if (typeof p === 'number') {
      const a = Math.floor(p / 64);
      const len = p - a * 64;
      let m = this.v4[len];
      if (m === undefined) this.v4[len] = m = new IntTable();
      const old = m.set(a | 0, this.ref(v));
      if (old === 0) return undefined;
      const prev = this.vals[old];
      this.unref(old);
      return prev;
    }
    const prev = this.v6.get(p);
    this.v6.set(p, v);
    return prev;
  }

  delete(p: Prefix): boolean {
    if (typeof p === 'number') {
      const a = Math.floor(p / 64);
      const len = p - a * 64;
      const m = this.v4[len];
      if (m === undefined) return false;
      const old = m.delete(a | 0);
      if (old === 0) return false;
      this.unref(old);
      return true;
    }
    return this.v6.delete(p);
  }

  /**
   * Gives back the room of tables grown fast for a burst of inserts (or left sparse by deletions):
   * each IPv4 table larger than its fitting size is rebuilt at that size. For idle time (the
   * speaker calls it a while after a table load).
   */
  compact(): void {
    for (let i = 0; i <= 32; i++) this.v4[i]?.compact();
  }

  clear(): void {
    // Emptied in place, not replaced: assigning a field again after construction makes V8 drop
    // the optimized code of every method that read it (the whole table path, deoptimized by the
    // first setExports after the start-up warm-up).
    for (let i = 0; i <= 32; i++) this.v4[i] = undefined;
    this.v6.clear();
    this.vals.length = 1;
    this.refs.length = 1;
    this.free.length = 0;
    this.ids.clear();
    this.lastVal = undefined;
    this.lastId = 0;
  }

  forEach(cb: (v: V, p: Prefix) => void): void {
    for (let len = 0; len <= 32; len++) {
      const m = this.v4[len];
      if (m === undefined) continue;
      // Re-read the table each step: the callback may delete (and a shrink replaces the array).
      for (let j = 1; j < m.t.length; j += 2) {
        const r = m.t[j]!;
        if (r > 0) cb(this.vals[r] as V, (m.t[j - 1]! >>> 0) * 64 + len);
      }
    }
    this.v6.forEach((v, k) => cb(v, k));
  }

  *entries(): IterableIterator<[Prefix, V]> {
    for (let len = 0; len <= 32; len++) {
      const m = this.v4[len];
      if (m === undefined) continue;
      for (let j = 1; j < m.t.length; j += 2) {
        const r = m.t[j]!;
        if (r > 0) yield [(m.t[j - 1]! >>> 0) * 64 + len, this.vals[r] as V];
      }
    }
    yield* this.v6;
  }

  *keys(): IterableIterator<Prefix> {
    for (let len = 0; len <= 32; len++) {
      const m = this.v4[len];
      if (m === undefined) continue;
      for (let j = 1; j < m.t.length; j += 2) if (m.t[j]! > 0) yield (m.t[j - 1]! >>> 0) * 64 + len;
    }
    yield* this.v6.keys();
  }

  *values(): IterableIterator<V> {
    for (let len = 0; len <= 32; len++) {
      const m = this.v4[len];
      if (m === undefined) continue;
      for (let j = 1; j < m.t.length; j += 2) {
        const r = m.t[j]!;
        if (r > 0) yield this.vals[r] as V;
      }
    }
    yield* this.v6.values();
  }

  [Symbol.iterator](): IterableIterator<[Prefix, V]> {
    return this.entries();
  }
}
let warmedUp = false;

/**
 * Runs the IPv4 table code on a small throw-away map (a few thousand /24s stored, read and
 * deleted, ~1 ms), once per process, so V8 has it optimized before the first table load: a
 * speaker's first full table from a peer otherwise runs these loops unoptimized for most of the
 * load (measured: 2 x 100,000 inserts ~124 -> ~80 ms CPU). No effect on any table's contents.
 */
export function warmUpPrefixMaps(): void {
  if (warmedUp) return;
  warmedUp = true;
  const v = { warm: true };
  for (let round = 0; round < 3; round++) {
    // New maps each round: making a table is what a map's first store does, and V8 records
    // type feedback only from a function's first few calls on (rounds 2 and 3 give it some).
    const m = new PrefixMap<object>();
    const n = new PrefixMap<object>();
    for (let i = 0; i < 3000; i++) {
      const p = ((0x0a000000 + Math.imul(i, 0x9e3779b1 >>> 8) * 256) >>> 0) * 64 + 24;
      if (m.get(p) === undefined) m.set(p, v);
      m.has(p);
      n.swap(p, v);
    }
    for (const p of m.keys()) m.delete(p);
  }
}

export class PrefixSet {
  private readonly m = new PrefixMap<true>();
  get size(): number {
    return this.m.size;
  }
  add(p: Prefix): this {
    this.m.set(p, true);
    return this;
  }
  has(p: Prefix): boolean {
    return this.m.has(p);
  }
  delete(p: Prefix): boolean {
    return this.m.delete(p);
  }
  clear(): void {
    this.m.clear();
  }
  compact(): void {
    this.m.compact();
  }
  forEach(cb: (p: Prefix) => void): void {
    this.m.forEach((_v, p) => cb(p));
  }
  [Symbol.iterator](): IterableIterator<Prefix> {
    return this.m.keys();
  }
}
