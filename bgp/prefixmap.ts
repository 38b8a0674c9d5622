// Map and Set keyed by the codec's prefixes without boxing. An IPv4 prefix (the number
// addr * 64 + len, up to 2^38) would be a heap-allocated number as a Map key, and a JS Map of
// 100,000 entries is rebuilt (rehashed on the V8 heap) every time it doubles while a table loads.
// Here IPv4 entries live in one open-addressing hash table per prefix length: the address as a
// 32-bit integer in an Int32Array, the value in a parallel array, a state byte per slot (empty,
// full, deleted). IPv6 prefixes (strings) in one plain Map. Same methods as Map / Set for what
// the RIB uses, with two differences: iteration order is the table's, not insertion order; and
// entries may be deleted while iterating (as the export loop does) but an entry added during an
// iteration may or may not be visited.
import type { Prefix } from './codec/types.js';

const EMPTY = 0;
const FULL = 1;
const DEAD = 2;
const MIN_BITS = 3;

/** n empty value slots (a holey array: a hole reads as undefined). */
function slots<V>(n: number): (V | undefined)[] {
  return new Array<V | undefined>(n);
}

/** Open-addressing (linear probing) hash table from int32 keys to values. */
class IntTable<V> {
  bits = MIN_BITS;
  keys = new Int32Array(1 << MIN_BITS);
  vals: (V | undefined)[] = slots<V>(1 << MIN_BITS);
  state = new Uint8Array(1 << MIN_BITS);
  size = 0;
  /** Full + deleted slots. */
  used = 0;

  private find(k: number): number {
    const mask = this.keys.length - 1;
    const keys = this.keys;
    const state = this.state;
    let i = Math.imul(k, 0x9e3779b1) >>> (32 - this.bits);
    for (;;) {
      const s = state[i]!;
      if (s === EMPTY) return -1;
      if (s === FULL && keys[i] === k) return i;
      i = (i + 1) & mask;
    }
  }

  get(k: number): V | undefined {
    const i = this.find(k);
    return i < 0 ? undefined : this.vals[i];
  }

  has(k: number): boolean {
    return this.find(k) >= 0;
  }

  set(k: number, v: V): void {
    const mask = this.keys.length - 1;
    const keys = this.keys;
    const state = this.state;
    let i = Math.imul(k, 0x9e3779b1) >>> (32 - this.bits);
    let dead = -1;
    for (;;) {
      const s = state[i]!;
      if (s === EMPTY) break;
      if (s === FULL) {
        if (keys[i] === k) {
          this.vals[i] = v;
          return;
        }
      } else if (dead < 0) dead = i;
      i = (i + 1) & mask;
    }
    if (dead >= 0) i = dead;
    else if ((this.used + 1) * 4 > keys.length * 3) {
      // Double (fourfold growth was measured: a 100k table then lands in 2^19 slots, 180 B/route),
      // or rebuild in place when most used slots are deleted ones.
      this.rehash(this.size + 1);
      this.set(k, v);
      return;
    } else this.used++;
    keys[i] = k;
    state[i] = FULL;
    this.vals[i] = v;
    this.size++;
  }

  delete(k: number): boolean {
    const i = this.find(k);
    if (i < 0) return false;
    this.state[i] = DEAD;
    this.vals[i] = undefined;
    this.size--;
    if (this.size === 0 && this.bits > MIN_BITS) this.rehash(0);
    return true;
  }

  /** Rebuilds with room for `n` entries (load factor at most 1/2 right after). */
  private rehash(n: number): void {
    let bits = MIN_BITS;
    while (1 << bits < n * 2) bits++;
    const { keys, vals, state } = this;
    const cap = 1 << bits;
    const mask = cap - 1;
    const nk = new Int32Array(cap);
    const nv = slots<V>(cap);
    const ns = new Uint8Array(cap);
    let size = 0;
    for (let j = 0; j < state.length; j++) {
      if (state[j] !== FULL) continue;
      const k = keys[j]!;
      let i = Math.imul(k, 0x9e3779b1) >>> (32 - bits);
      while (ns[i] !== EMPTY) i = (i + 1) & mask;
      nk[i] = k;
      nv[i] = vals[j];
      ns[i] = FULL;
      size++;
    }
    this.bits = bits;
    this.keys = nk;
    this.vals = nv;
    this.state = ns;
    this.size = size;
    this.used = size;
  }

  forEach(cb: (v: V, k: number) => void): void {
    for (let i = 0; i < this.state.length; i++) if (this.state[i] === FULL) cb(this.vals[i] as V, this.keys[i]!);
  }
}

export class PrefixMap<V> {
  private readonly v4: (IntTable<V> | undefined)[] = new Array(33).fill(undefined);
  private readonly v6 = new Map<string, V>();

  get size(): number {
    let n = this.v6.size;
    for (let i = 0; i <= 32; i++) {
      const m = this.v4[i];
      if (m !== undefined) n += m.size;
    }
    return n;
  }

  get(p: Prefix): V | undefined {
    if (typeof p === 'number') {
      const len = p % 64;
      const m = this.v4[len];
      return m === undefined ? undefined : m.get(((p - len) / 64) | 0);
    }
    return this.v6.get(p);
  }

  has(p: Prefix): boolean {
    if (typeof p === 'number') {
      const len = p % 64;
      const m = this.v4[len];
      return m !== undefined && m.has(((p - len) / 64) | 0);
    }
    return this.v6.has(p);
  }

  set(p: Prefix, v: V): this {
    if (typeof p === 'number') {
      const len = p % 64;
      let m = this.v4[len];
      if (m === undefined) this.v4[len] = m = new IntTable<V>();
      m.set(((p - len) / 64) | 0, v);
    } else {
      this.v6.set(p, v);
    }
    return this;
  }

  delete(p: Prefix): boolean {
    if (typeof p === 'number') {
      const len = p % 64;
      const m = this.v4[len];
      return m !== undefined && m.delete(((p - len) / 64) | 0);
    }
    return this.v6.delete(p);
  }

  clear(): void {
    for (let i = 0; i <= 32; i++) this.v4[i] = undefined;
    this.v6.clear();
  }

  forEach(cb: (v: V, p: Prefix) => void): void {
    for (let len = 0; len <= 32; len++) {
      const m = this.v4[len];
      if (m !== undefined) m.forEach((v, k) => cb(v, (k >>> 0) * 64 + len));
    }
    this.v6.forEach((v, k) => cb(v, k));
  }

  *entries(): IterableIterator<[Prefix, V]> {
    for (let len = 0; len <= 32; len++) {
      const m = this.v4[len];
      if (m === undefined) continue;
      for (let i = 0; i < m.state.length; i++) if (m.state[i] === FULL) yield [(m.keys[i]! >>> 0) * 64 + len, m.vals[i] as V];
    }
    yield* this.v6;
  }

  *keys(): IterableIterator<Prefix> {
    for (let len = 0; len <= 32; len++) {
      const m = this.v4[len];
      if (m === undefined) continue;
      for (let i = 0; i < m.state.length; i++) if (m.state[i] === FULL) yield (m.keys[i]! >>> 0) * 64 + len;
    }
    yield* this.v6.keys();
  }

  *values(): IterableIterator<V> {
    for (let len = 0; len <= 32; len++) {
      const m = this.v4[len];
      if (m === undefined) continue;
      for (let i = 0; i < m.state.length; i++) if (m.state[i] === FULL) yield m.vals[i] as V;
    }
    yield* this.v6.values();
  }

  [Symbol.iterator](): IterableIterator<[Prefix, V]> {
    return this.entries();
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
  forEach(cb: (p: Prefix) => void): void {
    this.m.forEach((_v, p) => cb(p));
  }
  [Symbol.iterator](): IterableIterator<Prefix> {
    return this.m.keys();
  }
}
