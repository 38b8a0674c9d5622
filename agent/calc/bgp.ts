// Pure calculation: datastore state -> BGP speaker configuration and exports, with Calico's
// semantics (confd's bird templates, shared/design/calico.md §5):
//  - local AS from Node spec.bgp.asNumber, else BGPConfiguration `default` asNumber, else 64512;
//    router ID = the node's IPv4 address; listenPort from BGPConfiguration (`node.<name>` wins);
//  - node-to-node mesh (nodeToNodeMeshEnabled, default true) among all Nodes with a BGP
//    address, per family; only the higher IP dials (passive toward peers whose IP sorts higher);
//    nodeMeshPassword / nodeMeshMaxRestartTime apply to mesh sessions;
//  - BGPPeer: global (no node / nodeSelector), `node: <name>`, `nodeSelector`, with `peerIP`
//    or `peerSelector` (other Calico Nodes as peers, with their own AS and cluster ID);
//  - route reflection: a node with spec.bgp.routeReflectorClusterID is an RR; a same-AS peer is
//    its client when the peer's cluster ID differs from ours;
//  - exports: confirmed affine blocks (else the Kubernetes Node's podCIDRs), local workload
//    /32s (/128s) outside those blocks, service CIDRs from BGPConfiguration; only inside enabled
//    pools without disableBGPExport (services excepted).
import { parseSelector } from '../../acl/index.js';
import { canonicalCidr, cidrContains, formatIp, parseCidr, parseIp, parseDuration as parseDurationMs, type Cidr } from '../../datastore/index.js';
import type { Resource } from '../../datastore/index.js';
import type { ExportPrefix, PeerConfig, PeerType, SpeakerConfig } from '../../bgp/index.js';

export const DEFAULT_AS = 64512;
export const DEFAULT_LISTEN_PORT = 179;

export interface SecretKeyRef {
  name: string;
  key: string;
}

export interface BgpCalcInput {
  nodeName: string;
  /** Calico Node resources. */
  nodes: Resource[];
  bgpConfigurations: Resource[];
  bgpPeers: Resource[];
  /** Kubernetes Nodes (labels for nodeSelector when the Calico Node has none). */
  kubernetesNodes?: Resource[];
  /** Enabled pools without disableBGPExport bound what learned routes we pass on. */
  ipPools?: Resource[];
  /** Resolves a BGPPassword secretKeyRef (Kubernetes) to its value; undefined if unknown. */
  resolveSecret?: (ref: SecretKeyRef) => string | undefined;
}

export interface BgpCalcResult extends SpeakerConfig {
  /** Non-fatal problems (a peer skipped, a password that could not be resolved...). */
  warnings: string[];
}

const SEL_CACHE = new Map<string, ReturnType<typeof parseSelector> | Error>();
function selector(text: string): ReturnType<typeof parseSelector> {
  let s = SEL_CACHE.get(text);
  if (!s) {
    try {
      s = parseSelector(text);
    } catch (e) {
      s = e as Error;
    }
    if (SEL_CACHE.size > 1000) SEL_CACHE.clear();
    SEL_CACHE.set(text, s);
  }
  if (s instanceof Error) throw s;
  return s;
}

/** Go duration text ("90s", "2m", "1m30s", "1h") or a number of seconds -> seconds. */
export function parseDuration(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isFinite(v) && v >= 0) return v;
  if (typeof v !== 'string' || !v.trim()) return undefined;
  const ms = parseDurationMs(v.trim());
  return ms === undefined || ms < 0 ? undefined : ms / 1000;
}

/** Calico ASN: number, "65000" or asdot "1.10". */
export function parseAsn(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isInteger(v) && v > 0 && v <= 0xffffffff) return v;
  if (typeof v !== 'string') return undefined;
  const t = v.trim();
  if (/^\d+$/.test(t)) return parseAsn(Number(t));
  const m = /^(\d+)\.(\d+)$/.exec(t);
  if (m && Number(m[1]) <= 0xffff && Number(m[2]) <= 0xffff) return parseAsn(Number(m[1]) * 65536 + Number(m[2]));
  return undefined;
}

function bareIp(v: unknown): string | undefined {
  if (typeof v !== 'string' || !v) return undefined;
  const a = v.split('/')[0]!.trim();
  const p = parseIp(a);
  if (!p) return undefined;
  return a.toLowerCase();
}

/** "ip", "ip:port", "[v6]:port" -> address and optional port. */
export function parsePeerIP(v: string): { address: string; port?: number } | undefined {
  const t = v.trim();
  let m = /^\[([0-9a-fA-F:.]+)\]:(\d+)$/.exec(t);
  if (m) return parseIp(m[1]!) ? { address: m[1]!.toLowerCase(), port: Number(m[2]) } : undefined;
  m = /^(\d+\.\d+\.\d+\.\d+):(\d+)$/.exec(t);
  if (m) return parseIp(m[1]!) ? { address: m[1]!, port: Number(m[2]) } : undefined;
  return parseIp(t) ? { address: t.toLowerCase() } : undefined;
}

interface NodeInfo {
  name: string;
  ip4?: string;
  ip6?: string;
  asNumber: number;
  clusterId?: string;
  labels: Record<string, string>;
}

function nodeInfo(n: Resource, defaultAs: number, k8sLabels?: Record<string, string>): NodeInfo {
  const b = (n.spec as any)?.bgp ?? {};
  return {
    name: n.metadata.name,
    ip4: bareIp(b.ipv4Address),
    ip6: bareIp(b.ipv6Address),
    asNumber: parseAsn(b.asNumber) ?? defaultAs,
    clusterId: typeof b.routeReflectorClusterID === 'string' && b.routeReflectorClusterID ? b.routeReflectorClusterID : undefined,
    labels: { ...(k8sLabels ?? {}), ...(n.metadata.labels ?? {}) },
  };
}

function ipLess(a: string, b: string): boolean {
  // Calico's template compares the address strings.
  return a < b;
}

function password(v: unknown, resolve: BgpCalcInput['resolveSecret'], what: string, warnings: string[]): string | undefined | null {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v; // file/etcd convenience: a literal value
  const ref = (v as any)?.secretKeyRef;
  if (ref && typeof ref.name === 'string' && typeof ref.key === 'string') {
    const val = resolve?.({ name: ref.name, key: ref.key });
    if (val === undefined) {
      warnings.push(`${what}: password secret ${ref.name}/${ref.key} not found; peer skipped`);
      return null;
    }
    return val;
  }
  if (typeof (v as any)?.value === 'string') return (v as any).value;
  return undefined;
}

/**
 * The speaker configuration for `nodeName`, or `{ error }` when the node cannot run BGP (not
 * found, no BGP address).
 */
export function computeSpeakerConfig(input: BgpCalcInput): BgpCalcResult | { error: string } {
  const warnings: string[] = [];
  const def = input.bgpConfigurations.find((c) => c.metadata.name === 'default');
  const mine = input.bgpConfigurations.find((c) => c.metadata.name === `node.${input.nodeName}`);
  const defSpec: any = def?.spec ?? {};
  const nodeSpec: any = mine?.spec ?? {};
  const defaultAs = parseAsn(defSpec.asNumber) ?? DEFAULT_AS;
  const k8sLabels = new Map((input.kubernetesNodes ?? []).map((k) => [k.metadata.name, k.metadata.labels ?? {}]));
  const nodes = input.nodes.map((n) => nodeInfo(n, defaultAs, k8sLabels.get(n.metadata.name)));
  const me = nodes.find((n) => n.name === input.nodeName);
  if (!me) return { error: `Node ${input.nodeName} not found` };
  if (!me.ip4 && !me.ip6) return { error: `Node ${input.nodeName} has no BGP address (spec.bgp.ipv4Address / ipv6Address)` };
  const routerId = me.ip4 ?? routerIdFromName(me.name);
  const listenPort = Number(nodeSpec.listenPort ?? defSpec.listenPort ?? DEFAULT_LISTEN_PORT) || DEFAULT_LISTEN_PORT;
  const meshEnabled = defSpec.nodeToNodeMeshEnabled !== false;
  const peers = new Map<string, PeerConfig>();

  const rrFields = (peerAs: number, peerCluster: string | undefined): Partial<PeerConfig> & { type?: PeerType } =>
    peerAs === me.asNumber && me.clusterId && peerCluster !== me.clusterId
      ? { type: 'rr-client', routeReflectorClient: true, clusterId: me.clusterId }
      : {};

  if (meshEnabled) {
    const pw = password(defSpec.nodeMeshPassword, input.resolveSecret, 'node mesh', warnings);
    const mrt = parseDuration(defSpec.nodeMeshMaxRestartTime);
    if (pw !== null) {
      for (const o of nodes) {
        if (o.name === me.name) continue;
        for (const fam of [4, 6] as const) {
          const mineIp = fam === 4 ? me.ip4 : me.ip6;
          const theirs = fam === 4 ? o.ip4 : o.ip6;
          if (!mineIp || !theirs || theirs === mineIp) continue;
          const pc: PeerConfig = {
            address: theirs,
            asNumber: o.asNumber,
            type: 'node-mesh',
            sourceAddress: mineIp,
            ...(ipLess(mineIp, theirs) ? { passive: true } : {}),
            ...(pw ? { password: pw } : {}),
            ...(mrt !== undefined ? { maxRestartTime: mrt } : {}),
            ...rrFields(o.asNumber, o.clusterId),
          };
          if (pc.type === 'rr-client') pc.type = 'node-mesh';
          peers.set(theirs, pc);
        }
      }
    }
  }

  const sorted = [...input.bgpPeers].sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1));
  for (const bp of sorted) {
    const s: any = bp.spec ?? {};
    const what = `BGPPeer ${bp.metadata.name}`;
    let applies: boolean;
    let type: PeerType;
    try {
      if (s.node) {
        applies = s.node === me.name;
        type = 'node-specific';
      } else if (s.nodeSelector) {
        applies = selector(s.nodeSelector).evaluate(me.labels);
        type = 'node-specific';
      } else {
        applies = true;
        type = 'global';
      }
    } catch (e) {
      warnings.push(`${what}: bad nodeSelector: ${(e as Error).message}`);
      continue;
    }
    // A node-to-node BGPPeer (peerSelector) peers both ways, as Calico's does: the nodes it
    // selects as peers (e.g. route reflectors) also peer with the nodes it applies to.
    let reverse: ReturnType<typeof selector> | undefined;
    if (s.peerSelector) {
      try {
        reverse = selector(s.peerSelector).evaluate(me.labels) ? selector(s.nodeSelector || 'all()') : undefined;
      } catch {
        reverse = undefined; // reported below with the peerSelector
      }
    }
    if (!applies && !reverse) continue;
    const pw = password(s.password, input.resolveSecret, what, warnings);
    if (pw === null) continue;
    const common: Partial<PeerConfig> = {};
    if (s.keepOriginalNextHop || s.nextHopMode === 'Keep') common.keepOriginalNextHop = true;
    const mrt = parseDuration(s.maxRestartTime);
    if (mrt !== undefined) common.maxRestartTime = mrt;
    const ka = parseDuration(s.keepaliveTime);
    if (ka !== undefined) common.keepaliveTime = ka;
    if (typeof s.ttlSecurity === 'number' && s.ttlSecurity > 0) common.ttlSecurity = s.ttlSecurity;
    if (pw) common.password = pw;
    const src = (fam: 4 | 6) => (s.sourceAddress === 'None' ? undefined : fam === 4 ? me.ip4 : me.ip6);
    const add = (address: string, asNumber: number, port: number | undefined, cluster: string | undefined, isNode: boolean) => {
      const fam = address.includes(':') ? 6 : 4;
      const mineIp = fam === 4 ? me.ip4 : me.ip6;
      if (address === mineIp) return;
      const sa = src(fam);
      const pc: PeerConfig = {
        address,
        asNumber,
        type,
        ...common,
        ...(port !== undefined && port !== 179 ? { port } : {}),
        ...(sa ? { sourceAddress: sa } : {}),
        ...(isNode && mineIp && ipLess(mineIp, address) ? { passive: true } : {}),
        ...rrFields(asNumber, cluster),
      };
      peers.set(address, pc);
    };
    if (s.peerSelector) {
      let sel;
      try {
        sel = selector(s.peerSelector);
      } catch (e) {
        warnings.push(`${what}: bad peerSelector: ${(e as Error).message}`);
        continue;
      }
      const nodeSide = (o: (typeof nodes)[number]) => (s.node ? o.name === s.node : reverse!.evaluate(o.labels));
      for (const o of nodes) {
        if (o.name === me.name) continue;
        if (!((applies && sel.evaluate(o.labels)) || (reverse && nodeSide(o)))) continue;
        if (o.ip4 && me.ip4) add(o.ip4, o.asNumber, undefined, o.clusterId, true);
        if (o.ip6 && me.ip6) add(o.ip6, o.asNumber, undefined, o.clusterId, true);
      }
    } else if (s.peerIP) {
      const pip = parsePeerIP(String(s.peerIP));
      const asn = parseAsn(s.asNumber);
      if (!pip || asn === undefined) {
        warnings.push(`${what}: ${!pip ? `bad peerIP ${s.peerIP}` : 'missing asNumber'}; skipped`);
        continue;
      }
      const fam = pip.address.includes(':') ? 6 : 4;
      if (!(fam === 4 ? me.ip4 : me.ip6)) {
        warnings.push(`${what}: node ${me.name} has no IPv${fam} BGP address; skipped`);
        continue;
      }
      // A peer that is itself a Calico node: its cluster ID takes part in the RR decision.
      const asNode = nodes.find((o) => o.ip4 === pip.address || o.ip6 === pip.address);
      add(pip.address, asn, pip.port, asNode?.clusterId, false);
    } else {
      warnings.push(`${what}: neither peerIP nor peerSelector; skipped`);
    }
  }

  const exportLearnedWithin = input.ipPools
    ? input.ipPools
        .filter((p) => !(p.spec as any)?.disabled && !(p.spec as any)?.disableBGPExport && typeof (p.spec as any)?.cidr === 'string')
        .map((p) => (p.spec as any).cidr as string)
    : undefined;
  return {
    asNumber: me.asNumber,
    routerId,
    listenPort,
    peers: [...peers.values()].sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0)),
    ...(exportLearnedWithin ? { exportLearnedWithin } : {}),
    warnings,
  };
}

/** IPv6-only nodes: a stable 32-bit ID from the node name (as MetalLB's CRC fallback). */
function routerIdFromName(name: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  if (h === 0) h = 1;
  return [24, 16, 8, 0].map((s) => (h >>> s) & 255).join('.');
}

export interface ExportsInput {
  nodeName: string;
  ipPools: Resource[];
  blockAffinities?: Resource[];
  kubernetesNodes?: Resource[];
  /** Workload endpoints (spec.node, spec.ipNetworks); only this node's count. */
  workloadEndpoints?: Resource[];
  bgpConfigurations?: Resource[];
  /** Extra service addresses (e.g. /32s of externalTrafficPolicy: Local services), from the caller. */
  servicePrefixes?: string[];
}

/** What this node advertises (CONTRACT §3). */
export function computeExports(input: ExportsInput): ExportPrefix[] {
  const pools: Cidr[] = [];
  for (const p of input.ipPools) {
    const s: any = p.spec ?? {};
    if (s.disabled || s.disableBGPExport) continue;
    const c = typeof s.cidr === 'string' ? parseCidr(s.cidr) : undefined;
    if (c) pools.push(c);
  }
  const inPool = (c: Cidr) => pools.some((p) => cidrContains(p, c));
  const out = new Map<string, Cidr>();
  const blocks: Cidr[] = [];
  for (const a of input.blockAffinities ?? []) {
    const s: any = a.spec ?? {};
    if (s.node !== input.nodeName || s.state !== 'confirmed' || s.deleted === true || s.deleted === 'true') continue;
    const c = typeof s.cidr === 'string' ? parseCidr(s.cidr) : undefined;
    if (c) blocks.push(c);
  }
  if (blocks.length === 0) {
    const kn = (input.kubernetesNodes ?? []).find((n) => n.metadata.name === input.nodeName);
    const s: any = kn?.spec ?? {};
    const cidrs: string[] = Array.isArray(s.podCIDRs) && s.podCIDRs.length ? s.podCIDRs : s.podCIDR ? [s.podCIDR] : [];
    for (const t of cidrs) {
      const c = parseCidr(t);
      if (c) blocks.push(c);
    }
  }
  for (const b of blocks) if (inPool(b)) out.set(canonicalCidr(fmt(b)), b);
  for (const w of input.workloadEndpoints ?? []) {
    const s: any = w.spec ?? {};
    if (s.node !== input.nodeName) continue;
    for (const n of Array.isArray(s.ipNetworks) ? s.ipNetworks : []) {
      const ip = parseIp(String(n).split('/')[0]!);
      if (!ip) continue;
      const host: Cidr = { version: ip.version, addr: ip.addr, prefix: ip.version === 4 ? 32 : 128 };
      if (blocks.some((b) => cidrContains(b, host))) continue;
      if (!inPool(host)) continue;
      out.set(canonicalCidr(fmt(host)), host);
    }
  }
  const def = (input.bgpConfigurations ?? []).find((c) => c.metadata.name === 'default');
  const ds: any = def?.spec ?? {};
  for (const list of [ds.serviceClusterIPs, ds.serviceExternalIPs, ds.serviceLoadBalancerIPs]) {
    for (const e of Array.isArray(list) ? list : []) {
      const c = typeof e?.cidr === 'string' ? parseCidr(e.cidr) : undefined;
      if (c) out.set(canonicalCidr(fmt(c)), c);
    }
  }
  for (const t of input.servicePrefixes ?? []) {
    const c = parseCidr(t.includes('/') ? t : `${t}/${t.includes(':') ? 128 : 32}`);
    if (c) out.set(canonicalCidr(fmt(c)), c);
  }
  // Communities from BGPConfiguration prefixAdvertisements (named or literal "aa:nn").
  const named = new Map<string, string>();
  for (const c of Array.isArray(ds.communities) ? ds.communities : []) if (c?.name && c?.value) named.set(c.name, c.value);
  const adv: { cidr: Cidr; comms: string[] }[] = [];
  for (const pa of Array.isArray(ds.prefixAdvertisements) ? ds.prefixAdvertisements : []) {
    const c = typeof pa?.cidr === 'string' ? parseCidr(pa.cidr) : undefined;
    if (!c) continue;
    const comms = (Array.isArray(pa.communities) ? pa.communities : [])
      .map((x: string) => named.get(x) ?? x)
      .filter((x: string) => /^\d+:\d+$/.test(x));
    adv.push({ cidr: c, comms });
  }
  return [...out.entries()]
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .map(([prefix, c]) => {
      const comms = [...new Set(adv.filter((a) => cidrContains(a.cidr, c)).flatMap((a) => a.comms))];
      return comms.length ? { prefix, communities: comms } : { prefix };
    });
}

function fmt(c: Cidr): string {
  return canonicalCidr(`${formatIp(c.version, c.addr)}/${c.prefix}`);
}
