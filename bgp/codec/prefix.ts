// Compact prefix and address representations (see types.ts header).
import type { Prefix, Prefix4, Prefix6 } from './types.js';

/** Make a Prefix4 from an unsigned 32-bit address and a length; host bits are cleared. */
export function prefix4(addr: number, len: number): Prefix4 {
  const a = len === 0 ? 0 : (addr & (0xffffffff << (32 - len))) >>> 0;
  return a * 64 + len;
}
export function prefix4Len(p: Prefix4): number {
  // Not p % 64: for a double above 2^31 that is a call to fmod, ten times slower.
  return p - Math.floor(p / 64) * 64;
}
export function prefix4Addr(p: Prefix4): number {
  return Math.floor(p / 64);
}

export function formatIp4(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

/** Dotted-quad text to unsigned 32-bit number; undefined when not a valid IPv4 address. */
export function parseIp4(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return undefined;
    const v = Number(p);
    if (v > 255) return undefined;
    n = n * 256 + v;
  }
  return n;
}

export function formatPrefix4(p: Prefix4): string {
  // One template (not formatIp4 + "/len"): a single string per route when a table is reported.
  const n = Math.floor(p / 64);
  const len = p - n * 64;
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}/${len}`;
}

/** "10.1.2.0/24" → Prefix4 (host bits cleared); undefined when malformed. */
export function parsePrefix4(text: string): Prefix4 | undefined {
  const slash = text.indexOf('/');
  const addr = parseIp4(slash < 0 ? text : text.slice(0, slash));
  if (addr === undefined) return undefined;
  const lenText = slash < 0 ? '32' : text.slice(slash + 1);
  if (!/^\d{1,2}$/.test(lenText)) return undefined;
  const len = Number(lenText);
  if (len > 32) return undefined;
  return prefix4(addr, len);
}

// ---- IPv6 ------------------------------------------------------------------------------------

const words6 = new Uint16Array(8);

/** Format 16 bytes at buf[off..off+16) as RFC 5952 text. */
export function formatIp6Bytes(buf: Uint8Array, off: number): string {
  const w = words6;
  for (let i = 0; i < 8; i++) w[i] = (buf[off + 2 * i]! << 8) | buf[off + 2 * i + 1]!;
  // IPv4-mapped addresses keep the dotted tail (RFC 5952 §5).
  if (w[0] === 0 && w[1] === 0 && w[2] === 0 && w[3] === 0 && w[4] === 0 && w[5] === 0xffff) {
    return `::ffff:${buf[off + 12]}.${buf[off + 13]}.${buf[off + 14]}.${buf[off + 15]}`;
  }
  // longest run of zero words (length ≥ 2), first one on ties
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (w[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  let s = '';
  for (let i = 0; i < 8; i++) {
    if (i === bestStart) {
      s += '::';
      i += bestLen - 1;
      continue;
    }
    if (s.length && !s.endsWith(':')) s += ':';
    s += w[i]!.toString(16);
  }
  return s;
}

/** Parse IPv6 text into 16 bytes written at out[off..]; false when malformed. */
export function parseIp6Into(text: string, out: Uint8Array, off: number): boolean {
  if (text.length < 2 || text.length > 45) return false;
  let s = text;
  const words: number[] = [];
  // dotted IPv4 tail
  const lastColon = s.lastIndexOf(':');
  let v4tail: number | undefined;
  if (s.indexOf('.', lastColon) > 0) {
    v4tail = parseIp4(s.slice(lastColon + 1));
    if (v4tail === undefined) return false;
    s = s.slice(0, lastColon + 1) + '0:0';
  }
  const dbl = s.indexOf('::');
  if (dbl !== s.lastIndexOf('::')) return false;
  const parseGroup = (g: string): number | undefined =>
    /^[0-9a-fA-F]{1,4}$/.test(g) ? parseInt(g, 16) : undefined;
  if (dbl >= 0) {
    const left = s.slice(0, dbl);
    const right = s.slice(dbl + 2);
    const l = left === '' ? [] : left.split(':');
    const r = right === '' ? [] : right.split(':');
    if (l.length + r.length > 7) return false;
    for (const g of l) {
      const v = parseGroup(g);
      if (v === undefined) return false;
      words.push(v);
    }
    for (let i = l.length + r.length; i < 8; i++) words.push(0);
    for (const g of r) {
      const v = parseGroup(g);
      if (v === undefined) return false;
      words.push(v);
    }
  } else {
    const parts = s.split(':');
    if (parts.length !== 8) return false;
    for (const g of parts) {
      const v = parseGroup(g);
      if (v === undefined) return false;
      words.push(v);
    }
  }
  if (v4tail !== undefined) {
    words[6] = v4tail >>> 16;
    words[7] = v4tail & 0xffff;
  }
  for (let i = 0; i < 8; i++) {
    out[off + 2 * i] = words[i]! >> 8;
    out[off + 2 * i + 1] = words[i]! & 255;
  }
  return true;
}

/** Canonical IPv6 text, or undefined when malformed. */
export function canonicalIp6(text: string): string | undefined {
  const b = new Uint8Array(16);
  return parseIp6Into(text, b, 0) ? formatIp6Bytes(b, 0) : undefined;
}

/** "fd00:1::/64" → canonical Prefix6 (host bits cleared); undefined when malformed. */
export function parsePrefix6(text: string): Prefix6 | undefined {
  const slash = text.indexOf('/');
  const b = new Uint8Array(16);
  if (!parseIp6Into(slash < 0 ? text : text.slice(0, slash), b, 0)) return undefined;
  const lenText = slash < 0 ? '128' : text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(lenText)) return undefined;
  const len = Number(lenText);
  if (len > 128) return undefined;
  maskBytes(b, 0, len);
  return `${formatIp6Bytes(b, 0)}/${len}`;
}

/** Clear the bits beyond `len` in a 16-byte address. */
export function maskBytes(b: Uint8Array, off: number, len: number): void {
  for (let i = 0; i < 16; i++) {
    const bitsHere = len - i * 8;
    if (bitsHere >= 8) continue;
    b[off + i] = bitsHere <= 0 ? 0 : b[off + i]! & (0xff << (8 - bitsHere));
  }
}

/** Parse a Prefix6 into bytes + length (for the encoder). */
export function prefix6Parts(p: Prefix6): { bytes: Uint8Array; len: number } | undefined {
  const slash = p.indexOf('/');
  if (slash < 0) return undefined;
  const bytes = new Uint8Array(16);
  if (!parseIp6Into(p.slice(0, slash), bytes, 0)) return undefined;
  const len = Number(p.slice(slash + 1));
  if (!Number.isInteger(len) || len < 0 || len > 128) return undefined;
  return { bytes, len };
}

/** Either family from text ("10.0.0.0/8" → number, "fd00::/8" → string). */
export function parsePrefix(text: string): Prefix | undefined {
  return text.includes(':') ? parsePrefix6(text) : parsePrefix4(text);
}

export function formatPrefix(p: Prefix): string {
  return typeof p === 'number' ? formatPrefix4(p) : p;
}
