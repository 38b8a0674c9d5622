// The network configuration a runtime passes on stdin: Calico's CNI fields (cni-plugin
// pkg/types NetConf) so a Calico conflist only needs `type` changed, plus the runtime's keys.
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { parseCidr } from '../datastore/net.js';
import { CniError, ErrorCode, cmpVersion, isSupported, parseCniArgs, parseResult, type CniResult } from './types.js';

export type DatastoreKind = 'etcdv3' | 'kubernetes' | 'file';

export interface NetConf {
  cniVersion: string;
  name: string;
  type: string;
  datastoreType: DatastoreKind;
  datastorePath: string;
  etcdEndpoints: string[];
  etcdCaCertFile?: string;
  etcdCertFile?: string;
  etcdKeyFile?: string;
  kubeconfig?: string;
  nodename: string;
  mtu: number;
  ipam: {
    type: string;
    assignIpv4: boolean;
    assignIpv6: boolean;
    ipv4Pools: string[];
    ipv6Pools: string[];
    /** Petrel: release an empty block's affinity this long after its claim (default 10 min). */
    emptyBlockGraceSeconds: number;
    raw: Record<string, unknown>;
  };
  /** route protocol of the host route to the pod (the agent's routes manager owns the same). */
  routeProtocol: number;
  interfacePrefix: string;
  prevResult?: CniResult;
  raw: Record<string, any>;
}

export interface CniEnv {
  command: 'ADD' | 'DEL' | 'CHECK';
  containerId: string;
  netns: string;
  ifname: string;
  path: string[];
  args: Record<string, string>;
  podNamespace?: string;
  podName?: string;
}

/** Default protocol number of Petrel's routes (CONTRACT §4; see docs/cni.md). */
export const DEFAULT_ROUTE_PROTOCOL = 80;

const KNOWN_DATASTORES = ['etcdv3', 'kubernetes', 'file'];

function boolish(v: unknown, dflt: boolean, field: string): boolean {
  if (v === undefined || v === null || v === '') return dflt;
  if (v === true || v === 'true') return true;
  if (v === false || v === 'false') return false;
  throw new CniError(ErrorCode.InvalidConfig, `invalid network configuration: ${field} must be "true" or "false", got ${JSON.stringify(v)}`);
}

function strList(v: unknown, field: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) {
    throw new CniError(ErrorCode.InvalidConfig, `invalid network configuration: ${field} must be a list of strings`);
  }
  return v as string[];
}

export function parseNetConf(stdin: string, env: NodeJS.ProcessEnv): NetConf {
  let raw: any;
  try {
    raw = JSON.parse(stdin);
  } catch (e) {
    throw new CniError(ErrorCode.DecodingFailure, 'failed to decode the network configuration on stdin', (e as Error).message);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new CniError(ErrorCode.DecodingFailure, 'the network configuration must be a JSON object');
  const cniVersion = raw.cniVersion ?? '0.2.0';
  if (typeof cniVersion !== 'string' || !isSupported(cniVersion)) {
    throw new CniError(
      ErrorCode.IncompatibleVersion,
      `incompatible CNI version ${JSON.stringify(cniVersion)}`,
      `supported versions: 0.3.0, 0.3.1, 0.4.0, 1.0.0${cmpVersion(String(cniVersion), '1.0.0') > 0 ? ' (newer than this plugin)' : ''}`,
    );
  }
  if (typeof raw.name !== 'string' || raw.name === '') throw new CniError(ErrorCode.InvalidConfig, 'invalid network configuration: "name" is required');
  if (typeof raw.type !== 'string' || raw.type === '') throw new CniError(ErrorCode.InvalidConfig, 'invalid network configuration: "type" is required');

  const k8s = raw.kubernetes && typeof raw.kubernetes === 'object' ? raw.kubernetes : {};
  let etcdEndpoints: string[] = [];
  const ep = raw.etcd_endpoints ?? env.ETCD_ENDPOINTS;
  if (ep !== undefined && ep !== '') {
    if (typeof ep !== 'string') throw new CniError(ErrorCode.InvalidConfig, 'invalid network configuration: etcd_endpoints must be a comma-separated string');
    etcdEndpoints = ep.split(',').map((s: string) => s.trim()).filter(Boolean);
    for (const e of etcdEndpoints) {
      if (!/^https?:\/\/[^/\s]+\/?$/.test(e)) throw new CniError(ErrorCode.InvalidConfig, `invalid network configuration: etcd_endpoints entry ${JSON.stringify(e)} is not an http(s) URL`);
    }
  }
  const kubeconfig = k8s.kubeconfig ?? undefined;
  let datastoreType = raw.datastore_type ?? env.DATASTORE_TYPE;
  if (datastoreType === undefined || datastoreType === '') datastoreType = etcdEndpoints.length ? 'etcdv3' : kubeconfig ? 'kubernetes' : 'file';
  if (!KNOWN_DATASTORES.includes(datastoreType)) {
    throw new CniError(ErrorCode.UnsupportedField, `unsupported datastore_type ${JSON.stringify(datastoreType)}`, `supported: ${KNOWN_DATASTORES.join(', ')}`);
  }
  if (datastoreType === 'etcdv3' && etcdEndpoints.length === 0) etcdEndpoints = ['http://127.0.0.1:2379'];

  const ipamRaw = raw.ipam && typeof raw.ipam === 'object' ? raw.ipam : undefined;
  if (!ipamRaw || typeof ipamRaw.type !== 'string' || !ipamRaw.type) throw new CniError(ErrorCode.InvalidConfig, 'invalid network configuration: "ipam.type" is required');
  const ipv4Pools = strList(ipamRaw.ipv4_pools, 'ipam.ipv4_pools');
  const ipv6Pools = strList(ipamRaw.ipv6_pools, 'ipam.ipv6_pools');
  for (const p of [...ipv4Pools, ...ipv6Pools]) {
    if (p.includes('/') && !parseCidr(p)) throw new CniError(ErrorCode.InvalidConfig, `invalid network configuration: pool ${JSON.stringify(p)} is not a CIDR`);
  }
  const assignIpv4 = boolish(ipamRaw.assign_ipv4, true, 'ipam.assign_ipv4');
  const assignIpv6 = boolish(ipamRaw.assign_ipv6, false, 'ipam.assign_ipv6');
  if (!assignIpv4 && !assignIpv6 && (ipamRaw.type === 'petrel-ipam' || ipamRaw.type === 'calico-ipam')) {
    throw new CniError(ErrorCode.InvalidConfig, 'invalid network configuration: ipam.assign_ipv4 and ipam.assign_ipv6 are both false');
  }

  let mtu = raw.mtu;
  if (mtu === undefined || mtu === 0) {
    mtu = 1500;
    try {
      const t = readFileSync('/var/lib/calico/mtu', 'utf8').trim();
      if (/^\d+$/.test(t)) mtu = Number(t);
    } catch {
      /* no MTU file: kernel default */
    }
  }
  if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535) throw new CniError(ErrorCode.InvalidConfig, `invalid network configuration: mtu ${JSON.stringify(raw.mtu)} is not an integer 68..65535`);

  let nodename: string | undefined = typeof raw.nodename === 'string' && raw.nodename ? raw.nodename : undefined;
  if (!nodename) {
    const f = raw.nodename_file ?? '/var/lib/calico/nodename';
    try {
      if (existsSync(f)) nodename = readFileSync(f, 'utf8').trim() || undefined;
    } catch {
      /* fall through */
    }
  }
  nodename ??= env.NODENAME || (typeof raw.hostname === 'string' && raw.hostname) || hostname();

  const proto = raw.route_protocol ?? DEFAULT_ROUTE_PROTOCOL;
  if (!Number.isInteger(proto) || proto < 1 || proto > 255) throw new CniError(ErrorCode.InvalidConfig, `invalid network configuration: route_protocol ${JSON.stringify(proto)} is not 1..255`);
  const grace = ipamRaw.empty_block_grace_seconds ?? 600;
  if (typeof grace !== 'number' || grace < 0) throw new CniError(ErrorCode.InvalidConfig, 'invalid network configuration: ipam.empty_block_grace_seconds must be a number >= 0');

  return {
    cniVersion,
    name: raw.name,
    type: raw.type,
    datastoreType,
    datastorePath: raw.datastore_path ?? env.DATASTORE_PATH ?? './examples/quickstart',
    etcdEndpoints,
    etcdCaCertFile: raw.etcd_ca_cert_file ?? env.ETCD_CA_CERT_FILE,
    etcdCertFile: raw.etcd_cert_file ?? env.ETCD_CERT_FILE,
    etcdKeyFile: raw.etcd_key_file ?? env.ETCD_KEY_FILE,
    kubeconfig: kubeconfig ?? env.KUBECONFIG,
    nodename: nodename!,
    mtu,
    ipam: { type: ipamRaw.type, assignIpv4, assignIpv6, ipv4Pools, ipv6Pools, emptyBlockGraceSeconds: grace, raw: ipamRaw },
    routeProtocol: proto,
    interfacePrefix: (env.FELIX_INTERFACEPREFIX ?? 'cali').split(',')[0] || 'cali',
    prevResult: raw.prevResult ? parseResult(raw.prevResult) : undefined,
    raw,
  };
}

const CONTAINER_ID = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const IFNAME = /^[^\s/:]{1,15}$/;

export function parseEnv(env: NodeJS.ProcessEnv): CniEnv {
  const command = env.CNI_COMMAND as CniEnv['command'];
  const missing: string[] = [];
  const containerId = env.CNI_CONTAINERID ?? '';
  const netns = env.CNI_NETNS ?? '';
  const ifname = env.CNI_IFNAME ?? '';
  if (!containerId) missing.push('CNI_CONTAINERID');
  if (!netns && command !== 'DEL') missing.push('CNI_NETNS');
  if (!ifname) missing.push('CNI_IFNAME');
  if (missing.length) throw new CniError(ErrorCode.InvalidEnvironment, `required environment variables missing: ${missing.join(', ')}`);
  if (!CONTAINER_ID.test(containerId)) throw new CniError(ErrorCode.InvalidEnvironment, `CNI_CONTAINERID ${JSON.stringify(containerId)} is not a valid container ID`);
  if (!IFNAME.test(ifname) || ifname === '.' || ifname === '..') throw new CniError(ErrorCode.InvalidEnvironment, `CNI_IFNAME ${JSON.stringify(ifname)} is not a valid interface name`);
  const args = parseCniArgs(env.CNI_ARGS);
  return {
    command,
    containerId,
    netns,
    ifname,
    path: (env.CNI_PATH ?? '').split(':').filter(Boolean),
    args,
    podNamespace: args.K8S_POD_NAMESPACE || undefined,
    podName: args.K8S_POD_NAME || undefined,
  };
}
