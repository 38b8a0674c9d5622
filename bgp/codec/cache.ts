// A bounded attribute-set cache for CodecContext.attrCache: identical attribute blocks decode to
// the same object while it is cached. When full it starts over (attribute sets still referenced
// by routes stay alive through those routes; only the sharing of new arrivals restarts).
import type { AttrCache, DecodedAttributes } from './types.js';

export class AttrInternCache implements AttrCache {
  private map = new Map<string, DecodedAttributes>();
  constructor(readonly max = 100_000) {}
  get(key: string): DecodedAttributes | undefined {
    return this.map.get(key);
  }
  set(key: string, attrs: DecodedAttributes): void {
    if (this.map.size >= this.max) this.map.clear();
    this.map.set(key, attrs);
  }
  get size(): number {
    return this.map.size;
  }
  clear(): void {
    this.map.clear();
  }
}
