// Map and Set keyed by the codec's prefixes without boxing: an IPv4 prefix (the number
// addr * 64 + len, up to 2^38) would be a heap-allocated number as a Map key (16 octets and GC
// work per route, per table). Here IPv4 entries live in one Map per prefix length keyed by the
// address as a signed 32-bit integer (a small integer, stored unboxed); IPv6 prefixes (strings)
// in one plain Map. Same methods as Map / Set for what the RIB uses.
import type { Prefix } from './codec/types.js';

export class PrefixMap<V> {
  private readonly v4: (Map<number, V> | undefined)[] = new Array(33).fill(undefined);
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
      if (m === undefined) this.v4[len] = m = new Map();
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
      if (m !== undefined) for (const [k, v] of m) yield [(k >>> 0) * 64 + len, v];
    }
    yield* this.v6;
  }

  *keys(): IterableIterator<Prefix> {
    for (let len = 0; len <= 32; len++) {
      const m = this.v4[len];
      if (m !== undefined) for (const k of m.keys()) yield (k >>> 0) * 64 + len;
    }
    yield* this.v6.keys();
  }

  *values(): IterableIterator<V> {
    for (let len = 0; len <= 32; len++) {
      const m = this.v4[len];
      if (m !== undefined) yield* m.values();
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
