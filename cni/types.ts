// CNI protocol types, errors and version conversion (containernetworking/cni SPEC.md 1.0.0,
// pkg/types/{040,100}). Results are built as 1.0.0 and converted once when printed.

export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0'] as const;
export const CURRENT_VERSION = '1.0.0';

/** The spec's well-known error codes (SPEC.md §5). */
export const ErrorCode = {
  IncompatibleVersion: 1,
  UnsupportedField: 2,
  UnknownContainer: 3,
  InvalidEnvironment: 4,
  IoFailure: 5,
  DecodingFailure: 6,
  InvalidConfig: 7,
  TryAgainLater: 11,
  /** plugin-specific: IPAM could not assign */
  IpamFailure: 100,
  /** plugin-specific: the kernel refused an interface, address or route */
  DataplaneFailure: 101,
  /** plugin-specific: CHECK found something missing or wrong */
  CheckFailed: 102,
  /** plugin-specific: the datastore refused a write */
  DatastoreFailure: 103,
} as const;

export class CniError extends Error {
  override name = 'CniError';
  constructor(
    readonly code: number,
    msg: string,
    readonly details = '',
  ) {
    super(msg);
  }
}

export interface CniInterface {
  name: string;
  mac?: string;
  mtu?: number;
  sandbox?: string;
}
export interface CniIp {
  address: string;
  gateway?: string;
  interface?: number;
}
export interface CniRoute {
  dst: string;
  gw?: string;
}
export interface CniDns {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}
export interface CniResult {
  cniVersion: string;
  interfaces?: CniInterface[];
  ips?: CniIp[];
  routes?: CniRoute[];
  dns?: CniDns;
}

/** -1, 0, 1 comparing dotted versions. */
export function cmpVersion(a: string, b: string): number {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d) return d < 0 ? -1 : 1;
  }
  return 0;
}

export function isSupported(v: string): boolean {
  return (SUPPORTED_VERSIONS as readonly string[]).includes(v);
}

/** Reads a result of any supported version into the 1.0.0 shape (prevResult, delegated IPAM output). */
export function parseResult(j: any): CniResult {
  if (!j || typeof j !== 'object') return { cniVersion: CURRENT_VERSION };
  return {
    cniVersion: CURRENT_VERSION,
    interfaces: Array.isArray(j.interfaces) ? j.interfaces.map((i: any) => ({ ...i })) : undefined,
    ips: Array.isArray(j.ips)
      ? j.ips.map((ip: any) => {
          const { version: _v, ...rest } = ip;
          return rest;
        })
      : undefined,
    routes: Array.isArray(j.routes) ? j.routes.map((r: any) => ({ ...r })) : undefined,
    dns: j.dns,
  };
}

/** Converts a 1.0.0 result to `version` (0.3.x/0.4.0 add ips[].version). */
export function convertResult(r: CniResult, version: string): Record<string, unknown> {
  if (!isSupported(version)) throw new CniError(ErrorCode.IncompatibleVersion, `cannot convert a result to CNI version ${version}`, `supported: ${SUPPORTED_VERSIONS.join(', ')}`);
  const out: Record<string, unknown> = { cniVersion: version };
  if (r.interfaces) out.interfaces = r.interfaces;
  if (r.ips) {
    out.ips = r.ips.map((ip) =>
      cmpVersion(version, '1.0.0') < 0 ? { version: ip.address.includes(':') ? '6' : '4', ...ip } : { ...ip },
    );
  }
  if (r.routes) out.routes = r.routes;
  out.dns = r.dns ?? {};
  return out;
}

/** Parses CNI_ARGS (`K=V;K2=V2`). */
export function parseCniArgs(s: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (s ?? '').split(';')) {
    if (!part) continue;
    const i = part.indexOf('=');
    if (i <= 0) throw new CniError(ErrorCode.InvalidEnvironment, `CNI_ARGS: malformed pair ${JSON.stringify(part)}`, 'expected K=V;K2=V2');
    out[part.slice(0, i)] = part.slice(i + 1);
  }
  return out;
}
