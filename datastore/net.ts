// IP address and CIDR helpers shared by every folder (validation, routes, policy, IPAM, BGP).
// Addresses are held as bigint so IPv4 and IPv6 share one code path.
import { isIPv6 } from 'node:net';

export type IpVersion = 4 | 6;

export interface Cidr {
  version: IpVersion;
  /** network address as written (host bits kept; see `hasHostBits`). */
  addr: bigint;
  prefix: number;
}

export function bitsOf(version: IpVersion): number {
  return version === 4 ? 32 : 128;
}

/**
 * The dotted-quad IPv4 address in text[from, to) as a number, or -1: four decimal parts 0-255
 * without leading zeros, as node:net isIPv4 accepts them (a character loop: no split, no regex).
 */
export function parseIpv4(text: string, from: number, to: number): number {
  const n = to - from;
  if (n < 7 || n > 15) return -1;
  let addr = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (digits === 1 && part === 0) return -1; // leading zero
      part = part * 10 + (c - 48);
      if (++digits > 3 || part > 255) return -1;
    } else if (c === 46) {
      if (digits === 0 || ++dots > 3) return -1;
      addr = addr * 256 + part;
      part = 0;
      digits = 0;
    } else return -1;
  }
  if (digits === 0 || dots !== 3) return -1;
  return addr * 256 + part;
}

/** Parses an IPv4 or IPv6 address; undefined when it is not one. */
export function parseIp(text: string): { version: IpVersion; addr: bigint } | undefined {
  const v4 = parseIpv4(text, 0, text.length);
  if (v4 >= 0) return { version: 4, addr: BigInt(v4) };
  // not dotted-quad IPv4 (parseIpv4 accepts exactly what node:net isIPv4 does); IPv6 has a ':'
  if (text.indexOf(':') < 0) return undefined;
  if (isIPv6(text)) {
    let s = text;
    // embedded IPv4 tail (::ffff:1.2.3.4)
    const v4tail = s.match(/^(.*:)(\d+\.\d+\.\d+\.\d+)$/);
    if (v4tail) {
      const v4 = parseIp(v4tail[2])!.addr;
      s = `${v4tail[1]}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
    }
    const [head, tail] = s.includes('::') ? s.split('::') : [s, undefined];
    const h = head ? head.split(':') : [];
    const t = tail ? tail.split(':') : [];
    const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
    let v = 0n;
    for (const g of groups) v = (v << 16n) | BigInt(parseInt(g || '0', 16));
    return { version: 6, addr: v };
  }
  return undefined;
}

export function formatIp(version: IpVersion, addr: bigint): string {
  if (version === 4) {
    return [24n, 16n, 8n, 0n].map((s) => ((addr >> s) & 255n).toString()).join('.');
  }
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((addr >> BigInt(i * 16)) & 0xffffn));
  // RFC 5952: compress the longest run (>= 2) of zero groups.
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** Parses `a.b.c.d/n` or `x::y/n`; a bare address is a /32 or /128. Undefined when invalid. */
export function parseCidr(text: string): Cidr | undefined {
  if (typeof text !== 'string') return undefined;
  const slash = text.indexOf('/');
  const ip = parseIp(slash < 0 ? text : text.slice(0, slash));
  if (!ip) return undefined;
  const max = bitsOf(ip.version);
  let prefix = max;
  if (slash >= 0) {
    // one to three decimal digits
    const len = text.length - slash - 1;
    if (len < 1 || len > 3) return undefined;
    prefix = 0;
    for (let i = slash + 1; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c < 48 || c > 57) return undefined;
      prefix = prefix * 10 + (c - 48);
    }
    if (prefix > max) return undefined;
  }
  return { version: ip.version, addr: ip.addr, prefix };
}

export function maskOf(version: IpVersion, prefix: number): bigint {
  const bits = BigInt(bitsOf(version));
  const all = (1n << bits) - 1n;
  return prefix === 0 ? 0n : (all >> BigInt(bitsOf(version) - prefix)) << BigInt(bitsOf(version) - prefix);
}

/** True when the CIDR has bits set beyond its prefix (`10.0.0.1/24`). */
export function hasHostBits(c: Cidr): boolean {
  return (c.addr & ~maskOf(c.version, c.prefix)) !== 0n;
}

/** The CIDR with host bits cleared. */
export function networkOf(c: Cidr): Cidr {
  return { version: c.version, addr: c.addr & maskOf(c.version, c.prefix), prefix: c.prefix };
}

/** Canonical text: network address, compressed IPv6, explicit prefix. */
export function formatCidr(c: Cidr): string {
  return `${formatIp(c.version, c.addr)}/${c.prefix}`;
}

/** Canonicalises CIDR text (`10.0.0.0/8`, `fd00::/64`); throws on invalid input. */
export function canonicalCidr(text: string): string {
  const c = parseCidr(text);
  if (!c) throw new Error(`invalid CIDR ${JSON.stringify(text)}`);
  return formatCidr(networkOf(c));
}

/** True when `inner` (CIDR or address) lies within `outer`. */
export function cidrContains(outer: Cidr, inner: Cidr): boolean {
  if (outer.version !== inner.version || inner.prefix < outer.prefix) return false;
  const m = maskOf(outer.version, outer.prefix);
  return (outer.addr & m) === (inner.addr & m);
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  return cidrContains(a, b) || cidrContains(b, a);
}

/** Number of addresses in the CIDR. */
export function cidrSize(c: Cidr): bigint {
  return 1n << BigInt(bitsOf(c.version) - c.prefix);
}
