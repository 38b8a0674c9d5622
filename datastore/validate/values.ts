// Checkers for the value types Calico and Kubernetes manifests use: names, labels, CIDRs,
// addresses, MACs, durations, AS numbers, ports, protocols, selectors.
import { parseSelector, SelectorSyntaxError } from '../../acl/index.js';
import { hasHostBits, parseCidr, parseIp, parseIpv4, type Cidr, type IpVersion } from '../net.js';
import { type Check, type Ctx, type FastCheck, describe, int, oneOf, str, withOk } from './schema.js';

// ---------------------------------------------------------------------------------------
// Names (Kubernetes apimachinery's and Calico's rules)

const LABEL = '[a-z0-9]([-a-z0-9]*[a-z0-9])?';
export const DNS1123_LABEL = new RegExp(`^${LABEL}$`);
export const DNS1123_SUBDOMAIN = new RegExp(`^${LABEL}(\\.${LABEL})*$`);
export const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

// Character-loop equivalents of the regular expressions above (the hot path of every load).
const isLowerAlnum = (c: number) => (c >= 97 && c <= 122) || (c >= 48 && c <= 57);
const isAlnum = (c: number) => (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || (c >= 65 && c <= 90);

/** DNS1123_LABEL.test(s) on s[from, to) */
function isDns1123Label(s: string, from: number, to: number): boolean {
  if (to <= from || !isLowerAlnum(s.charCodeAt(from)) || !isLowerAlnum(s.charCodeAt(to - 1))) return false;
  for (let i = from + 1; i < to - 1; i++) {
    const c = s.charCodeAt(i);
    if (c !== 45 && !isLowerAlnum(c)) return false;
  }
  return true;
}

/** DNS1123_SUBDOMAIN.test(s) */
function isDns1123Subdomain(s: string): boolean {
  let from = 0;
  for (;;) {
    const dot = s.indexOf('.', from);
    const to = dot < 0 ? s.length : dot;
    if (!isDns1123Label(s, from, to)) return false;
    if (dot < 0) return true;
    from = dot + 1;
  }
}

/** QNAME.test(s) on s[from, to) */
function isQualifiedNamePart(s: string, from: number, to: number): boolean {
  if (to <= from || !isAlnum(s.charCodeAt(from)) || !isAlnum(s.charCodeAt(to - 1))) return false;
  for (let i = from + 1; i < to - 1; i++) {
    const c = s.charCodeAt(i);
    if (c !== 45 && c !== 95 && c !== 46 && !isAlnum(c)) return false;
  }
  return true;
}

/** Problem with a name, or undefined. `label` = DNS-1123 label (63), else subdomain (253). */
export function nameProblem(name: string, rule: 'subdomain' | 'label' | 'dns1035'): string | undefined {
  if (name === '') return 'must not be empty';
  if (rule === 'subdomain') {
    if (name.length > 253) return `is too long by ${name.length - 253} characters (max 253)`;
    if (!isDns1123Subdomain(name)) {
      return `${describe(name)} must consist of lower case alphanumeric characters, '-' or '.', and start and end with an alphanumeric character (DNS-1123 subdomain)`;
    }
    return undefined;
  }
  if (name.length > 63) return `is too long by ${name.length - 63} characters (max 63)`;
  if (rule === 'dns1035' && !DNS1035_LABEL.test(name)) {
    return `${describe(name)} must consist of lower case alphanumeric characters or '-', start with a letter and end with an alphanumeric character (DNS-1035 label)`;
  }
  if (!isDns1123Label(name, 0, name.length)) {
    return `${describe(name)} must consist of lower case alphanumeric characters or '-', and start and end with an alphanumeric character (DNS-1123 label)`;
  }
  return undefined;
}

export function name(rule: 'subdomain' | 'label' = 'subdomain'): Check {
  return (value, path, ctx) => {
    if (typeof value !== 'string') {
      ctx.error(path, `must be a string, not ${describe(value)}`);
      return value;
    }
    const bad = nameProblem(value, rule);
    if (bad) ctx.error(path, bad);
    return value;
  };
}

// Labels: qualified-name keys, short values (apimachinery IsQualifiedName / IsValidLabelValue).
export const QNAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;

export function labelKeyProblem(key: string): string | undefined {
  const slash = key.indexOf('/');
  const [prefix, nm] = slash < 0 ? [undefined, key] : [key.slice(0, slash), key.slice(slash + 1)];
  if (prefix !== undefined) {
    if (prefix === '') return `label key ${describe(key)}: prefix part must not be empty`;
    const p = nameProblem(prefix, 'subdomain');
    if (p) return `label key ${describe(key)}: prefix part must be a DNS-1123 subdomain`;
  }
  if (nm === '' || nm.length > 63 || !isQualifiedNamePart(nm, 0, nm.length)) {
    return `label key ${describe(key)}: name part must be 1-63 characters, alphanumeric, '-', '_' or '.', starting and ending with an alphanumeric character`;
  }
  return undefined;
}

const labelValueOk = (value: unknown): boolean =>
  typeof value === 'string' && (value === '' || (value.length <= 63 && isQualifiedNamePart(value, 0, value.length)));

export const labelValue: FastCheck = withOk((value, path, ctx) => {
  if (typeof value !== 'string') {
    ctx.error(path, `label values must be strings, not ${describe(value)} (quote it)`);
    return value;
  }
  if (!labelValueOk(value)) {
    ctx.error(path, `label value ${describe(value)} must be at most 63 characters, alphanumeric, '-', '_' or '.', starting and ending with an alphanumeric character`);
  }
  return value;
}, labelValueOk);

export const annotationValue: FastCheck = withOk((value, path, ctx) => {
  if (typeof value !== 'string') ctx.error(path, `annotation values must be strings, not ${describe(value)} (quote it)`);
  return value;
}, (value) => typeof value === 'string');

// ---------------------------------------------------------------------------------------
// Addresses

export interface CidrOptions {
  version?: IpVersion;
  /** Reject set host bits (`10.0.0.1/8`), as Calico does for pool CIDRs. */
  strict?: boolean;
  /** A bare address (no `/len`) is fine and means /32 or /128. */
  allowBare?: boolean;
}

function versionProblem(c: { version: IpVersion }, want?: IpVersion): string | undefined {
  return want && c.version !== want ? `must be an IPv${want} ${want === 4 ? 'address' : 'address'}, not IPv${c.version}` : undefined;
}

/** Parses a CIDR checking the options; reports and returns undefined on problems. */
export function checkCidr(value: unknown, path: string, ctx: Ctx, opts: CidrOptions = {}): Cidr | undefined {
  if (typeof value !== 'string') {
    ctx.error(path, `must be a CIDR string, not ${describe(value)}`);
    return undefined;
  }
  const c = parseCidr(value.trim());
  if (!c || (!value.includes('/') && !opts.allowBare)) {
    ctx.error(path, `${describe(value)} is not a valid CIDR (e.g. 10.0.0.0/16 or fd00::/64)`);
    return undefined;
  }
  const vp = versionProblem(c, opts.version);
  if (vp) {
    ctx.error(path, `${describe(value)} ${vp}`);
    return undefined;
  }
  if (opts.strict && hasHostBits(c)) {
    ctx.error(path, `${describe(value)} has host bits set beyond the /${c.prefix} prefix (CIDR must be strictly masked)`);
    return undefined;
  }
  return c;
}

/**
 * True when `text` is `a.b.c.d/n` with n 0-32 (one to three digits), which checkCidr accepts
 * when neither strict nor IPv6-only: checked without building a Cidr.
 */
function isPlainCidr4(text: string): boolean {
  const slash = text.indexOf('/');
  const len = text.length - slash - 1;
  if (slash < 0 || len < 1 || len > 3) return false;
  let prefix = 0;
  for (let i = slash + 1; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) return false;
    prefix = prefix * 10 + (c - 48);
  }
  return prefix <= 32 && parseIpv4(text, 0, slash) >= 0;
}

export function cidr(opts: CidrOptions = {}): Check {
  const fast = !opts.strict && opts.version !== 6;
  return (value, path, ctx) => {
    if (fast && typeof value === 'string' && isPlainCidr4(value)) return value;
    checkCidr(value, path, ctx, opts);
    return value;
  };
}

/** Calico's `net`: a CIDR or a bare address. */
export const net = cidr({ allowBare: true });

export function ip(version?: IpVersion): Check {
  return (value, path, ctx) => {
    if (typeof value !== 'string') {
      ctx.error(path, `must be an IP address string, not ${describe(value)}`);
      return value;
    }
    const a = parseIp(value);
    if (!a) ctx.error(path, `${describe(value)} is not a valid IP${version ? `v${version}` : ''} address`);
    else {
      const vp = versionProblem(a, version);
      if (vp) ctx.error(path, `${describe(value)} ${vp}`);
    }
    return value;
  };
}

/** `ip`, `ip:port` or `[ipv6]:port` (BGPPeer.peerIP). */
export const ipPort: Check = (value, path, ctx) => {
  if (typeof value !== 'string') {
    ctx.error(path, `must be a string, not ${describe(value)}`);
    return value;
  }
  if (parseIp(value)) return value;
  const m = value.match(/^\[([0-9a-fA-F:.]+)\]:(\d+)$/) ?? value.match(/^(\d+\.\d+\.\d+\.\d+):(\d+)$/);
  if (!m || !parseIp(m[1])) {
    ctx.error(path, `${describe(value)} is not an IP address, IPv4:port or [IPv6]:port`);
    return value;
  }
  const port = Number(m[2]);
  if (port < 1 || port > 65535) ctx.error(path, `port ${port} is out of range (1-65535)`);
  return value;
};

export const mac = str({
  pattern: /^([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$/,
  patternText: 'expected a MAC address like ee:ee:ee:ee:ee:ee',
});

export const interfaceName = str({ pattern: /^[a-zA-Z0-9_.-]{1,15}$/, patternText: 'interface names are 1-15 of [a-zA-Z0-9_.-]' });

// ---------------------------------------------------------------------------------------
// Durations (Go time.ParseDuration, as metav1.Duration decodes them)

const DURATION = /^[-+]?((\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h))+$/;
const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, μs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Milliseconds of a Go duration (`1m30s`, `500ms`, `0`); undefined when malformed. */
export function parseDuration(text: string): number | undefined {
  if (text === '0' || text === '+0' || text === '-0') return 0;
  if (!DURATION.test(text)) return undefined;
  const sign = text.startsWith('-') ? -1 : 1;
  let ms = 0;
  for (const m of text.matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g)) ms += Number(m[1]) * UNIT_MS[m[2]];
  return sign * ms;
}

export const duration: Check = (value, path, ctx) => {
  if (typeof value !== 'string' || parseDuration(value) === undefined) {
    ctx.error(path, `${describe(value)} is not a duration (e.g. "90s", "1m30s", "500ms")`);
  } else if (parseDuration(value)! < 0) ctx.error(path, `${describe(value)} must not be negative`);
  return value;
};

// ---------------------------------------------------------------------------------------
// AS numbers: 1-4294967295, plain or asdot ("1.10" = 1*65536+10), normalised to a number.

export function parseAsn(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isInteger(value) && value >= 1 && value <= 4294967295 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  if (/^\d+$/.test(value)) return parseAsn(Number(value));
  const m = value.match(/^(\d+)\.(\d+)$/);
  if (!m) return undefined;
  const hi = Number(m[1]);
  const lo = Number(m[2]);
  if (hi > 65535 || lo > 65535) return undefined;
  return parseAsn(hi * 65536 + lo);
}

export const asn: Check = (value, path, ctx) => {
  const n = parseAsn(value);
  if (n === undefined) {
    ctx.error(path, `${describe(value)} is not a valid AS number (1-4294967295, or asdot like "1.10")`);
    return value;
  }
  return n;
};

// ---------------------------------------------------------------------------------------
// Ports and protocols (Calico numorstring)

const PORT_NAME = /^[a-zA-Z0-9_.-]{1,128}$/;

export type ParsedPort = { kind: 'range'; min: number; max: number } | { kind: 'named'; name: string };

/** Calico's port: 80, "80", "8000:8080" or a named port; ports are 1-65535. */
export function parsePort(value: unknown): ParsedPort | string {
  if (typeof value === 'number') {
    if (!Number.isInteger(value) || value < 1 || value > 65535) return `port ${value} is out of range (1-65535)`;
    return { kind: 'range', min: value, max: value };
  }
  if (typeof value !== 'string') return `must be a port number, range "min:max" or port name, not ${describe(value)}`;
  if (/^\d+$/.test(value)) return parsePort(Number(value));
  const r = value.match(/^(\d+):(\d+)$/);
  if (r) {
    const min = Number(r[1]);
    const max = Number(r[2]);
    if (min < 1 || max < 1 || min > 65535 || max > 65535) return `port range ${describe(value)} is out of range (1-65535)`;
    if (min > max) return `port range ${describe(value)}: minimum ${min} is greater than maximum ${max}`;
    return { kind: 'range', min, max };
  }
  if (!PORT_NAME.test(value)) return `${describe(value)} is not a port number, range "min:max" or valid port name`;
  return { kind: 'named', name: value };
}

export const port: Check = (value, path, ctx) => {
  const p = parsePort(value);
  if (typeof p === 'string') {
    ctx.error(path, p);
    return value;
  }
  // Normalise "80" → 80, as Calico marshals single ports as numbers.
  return p.kind === 'range' && p.min === p.max && !String(value).includes(':') ? p.min : value;
};

export const PROTOCOL_NAMES = ['TCP', 'UDP', 'ICMP', 'ICMPv6', 'SCTP', 'UDPLite'] as const;

/** Protocol names (any case, normalised to Calico's spelling) or numbers 1-255. */
export const protocol: Check = (value, path, ctx) => {
  const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  if (typeof n === 'number') return int(1, 255)(n, path, ctx);
  if (typeof n === 'string') {
    const hit = PROTOCOL_NAMES.find((p) => p.toLowerCase() === n.toLowerCase());
    if (hit) return hit;
  }
  ctx.error(path, `${describe(value)} is not a protocol (${PROTOCOL_NAMES.join(', ')} or a number 1-255)`);
  return value;
};

/** True when the protocol has ports (TCP, UDP, SCTP and their numbers). */
export function protocolHasPorts(p: unknown): boolean {
  return p === 'TCP' || p === 'UDP' || p === 'SCTP' || p === 6 || p === 17 || p === 132;
}

export const endpointProtocol = (value: unknown, path: string, ctx: Ctx): unknown => {
  const p = protocol(value, path, ctx);
  if (ctx.errors.some((e) => e.path === path)) return p;
  if (!protocolHasPorts(p)) ctx.error(path, `protocol ${describe(p)} has no ports (use TCP, UDP or SCTP)`);
  return p;
};

// ---------------------------------------------------------------------------------------
// Selectors (Calico's language, parsed by acl/selector)

export function selector(opts: { allowGlobal?: boolean } = {}): Check {
  return (value, path, ctx) => {
    if (typeof value !== 'string') {
      ctx.error(path, `must be a selector string, not ${describe(value)}`);
      return value;
    }
    try {
      const sel = parseSelector(value);
      if (!opts.allowGlobal && sel.usesGlobal()) {
        ctx.error(path, 'global() can only be used in a rule namespaceSelector');
      }
    } catch (e) {
      if (e instanceof SelectorSyntaxError) ctx.error(path, `invalid selector ${JSON.stringify(value)} at position ${e.position}: ${e.reason}`);
      else throw e;
    }
    return value;
  };
}

export const logSeverity = oneOf(['Trace', 'Debug', 'Info', 'Warning', 'Error', 'Fatal'], { caseInsensitive: true });
