// The route calculation (pure): datastore state + BGP-learned routes → the routes this node
// wants in its kernel, and what the tunnel devices must look like. Calico's semantics
// (calico.md §3): local workloads are /32 (/128) to their interface, blocks affine to this node are
// blackholed, remote blocks go direct to the node on the same subnet and through VXLAN / IPIP
// otherwise, per the pool's mode.
//
// Which source wins for one prefix (deterministic, so BGP and the datastore never fight):
//   1. local: a block affine to this node, or a local workload address;
//   2. datastore, when the prefix's pool uses VXLAN (Calico's VXLAN routes come from Felix, not
//      BIRD), or when BGP is disabled (`--bgp disabled`: flannel host-gw / VXLAN model);
//   3. BGP, the best path learned for the prefix;
//   4. datastore otherwise (a remote block BGP has not (yet) told us about is left out while BGP
//      is enabled, as BIRD would: only what BGP learned is routed).
import type { Resource } from '../../datastore/index.js';
import { canonicalCidr, cidrContains, formatCidr, formatIp, networkOf, parseCidr, parseIp, type Cidr } from '../../datastore/net.js';
import type { DesiredRoute, IpipPlan, VxlanPeer, VxlanPlan } from '../../routes/index.js';

export type { IpipPlan, VxlanPeer, VxlanPlan };

export type EncapMode = 'Never' | 'Always' | 'CrossSubnet';

export interface BgpLearnedRoute {
  /** CIDR */
  prefix: string;
  /** next-hop address */
  nextHop: string;
}

export interface RouteCalcInput {
  nodeName: string;
  /** Calico Node resources (spec.bgp.ipv4Address "10.0.0.1/24", ipv4VXLANTunnelAddr, vxlanTunnelMACAddr, ...) */
  nodes: Resource[];
  /** Kubernetes v1 Nodes (spec.podCIDRs, status.addresses) */
  kubernetesNodes?: Resource[];
  /** IPPool resources, defaults applied */
  pools: Resource[];
  /** BlockAffinity resources */
  blockAffinities: Resource[];
  /** WorkloadEndpoints of this node */
  localEndpoints: Resource[];
  /** best routes learned over BGP */
  bgpRoutes?: BgpLearnedRoute[];
  bgpEnabled: boolean;
  /** merged FelixConfiguration spec (`default` overlaid with `node.<name>`) */
  felixConfig?: Record<string, any>;
  /** host MTU as detected (routes/mtu.ts); default 1460 */
  hostMtu?: number;
  /** what to program for blocks affine to this node (default blackhole) */
  localBlockRouteType?: 'blackhole' | 'unreachable';
  /** extra routes (service addresses); local and pod routes win over them on the same prefix */
  serviceRoutes?: DesiredRoute[];
}

export interface RouteCalcOutput {
  routes: DesiredRoute[];
  vxlan?: VxlanPlan;
  vxlanV6?: VxlanPlan;
  ipipNeeded: boolean;
  ipip?: IpipPlan;
  /** the MTU pods should get: the smallest of the enabled encapsulations */
  podMtu: number;
  errors: string[];
}

interface NodeInfo {
  name: string;
  ip4?: Cidr; // with prefix (subnet)
  ip6?: Cidr;
  vtep4?: string;
  mac4?: string;
  vtep6?: string;
  mac6?: string;
  ipip4?: string;
}

interface PoolInfo {
  name: string;
  cidr: Cidr;
  ipip: EncapMode;
  vxlan: EncapMode;
  disabled: boolean;
}

function ipText(c: Cidr | undefined): string | undefined {
  return c ? formatIp(c.version, c.addr) : undefined;
}

function fmt(c: Cidr): string {
  return formatIp(c.version, c.addr);
}

function encap(v: unknown): EncapMode {
  return v === 'Always' || v === 'CrossSubnet' ? v : 'Never';
}

/** Calico's CrossSubnet test: the peer's address lies in this node's subnet. */
function sameSubnet(mine: Cidr | undefined, theirs: Cidr | undefined): boolean {
  if (!mine || !theirs || mine.version !== theirs.version) return false;
  return cidrContains(mine, { version: theirs.version, addr: theirs.addr, prefix: theirs.version === 4 ? 32 : 128 });
}

function nodeInfos(input: RouteCalcInput, errors: string[]): Map<string, NodeInfo> {
  const out = new Map<string, NodeInfo>();
  const addr = (text: unknown, field: string, node: string): Cidr | undefined => {
    if (typeof text !== 'string' || !text) return undefined;
    const c = parseCidr(text);
    if (!c) errors.push(`Node ${node}: ${field} ${JSON.stringify(text)} is not an address`);
    return c;
  };
  const ip = (text: unknown, field: string, node: string): string | undefined => {
    if (typeof text !== 'string' || !text) return undefined;
    const p = parseIp(text.split('/')[0]);
    if (!p) {
      errors.push(`Node ${node}: ${field} ${JSON.stringify(text)} is not an address`);
      return undefined;
    }
    return canonicalCidr(text.split('/')[0]).split('/')[0];
  };
  for (const n of input.nodes) {
    const name = n.metadata?.name;
    if (!name) continue;
    const s = (n.spec ?? {}) as Record<string, any>;
    out.set(name, {
      name,
      ip4: addr(s.bgp?.ipv4Address, 'spec.bgp.ipv4Address', name),
      ip6: addr(s.bgp?.ipv6Address, 'spec.bgp.ipv6Address', name),
      vtep4: ip(s.ipv4VXLANTunnelAddr, 'spec.ipv4VXLANTunnelAddr', name),
      mac4: typeof s.vxlanTunnelMACAddr === 'string' ? s.vxlanTunnelMACAddr.toLowerCase() : undefined,
      vtep6: ip(s.ipv6VXLANTunnelAddr, 'spec.ipv6VXLANTunnelAddr', name),
      mac6: typeof s.vxlanTunnelMACAddrV6 === 'string' ? s.vxlanTunnelMACAddrV6.toLowerCase() : undefined,
      ipip4: ip(s.bgp?.ipv4IPIPTunnelAddr, 'spec.bgp.ipv4IPIPTunnelAddr', name),
    });
  }
  // Kubernetes Nodes: InternalIP as a fallback address (no subnet known: treated as /32)
  for (const k of input.kubernetesNodes ?? []) {
    const name = k.metadata?.name;
    if (!name) continue;
    const info = out.get(name) ?? { name };
    for (const a of ((k.status as any)?.addresses ?? []) as { type?: string; address?: string }[]) {
      if (a?.type !== 'InternalIP' || typeof a.address !== 'string') continue;
      const c = parseCidr(a.address);
      if (!c) continue;
      if (c.version === 4 && !info.ip4) info.ip4 = c;
      if (c.version === 6 && !info.ip6) info.ip6 = c;
    }
    out.set(name, info);
  }
  return out;
}

function poolInfos(input: RouteCalcInput, errors: string[]): PoolInfo[] {
  const out: PoolInfo[] = [];
  for (const p of input.pools) {
    const s = (p.spec ?? {}) as Record<string, any>;
    const c = typeof s.cidr === 'string' ? parseCidr(s.cidr) : undefined;
    if (!c) {
      errors.push(`IPPool ${p.metadata?.name}: invalid cidr ${JSON.stringify(s.cidr)}`);
      continue;
    }
    out.push({ name: p.metadata.name, cidr: { ...c, addr: c.addr }, ipip: encap(s.ipipMode), vxlan: encap(s.vxlanMode), disabled: s.disabled === true });
  }
  // most specific first, so a prefix belongs to its narrowest pool
  return out.sort((a, b) => b.cidr.prefix - a.cidr.prefix);
}

function poolOf(pools: PoolInfo[], c: Cidr): PoolInfo | undefined {
  return pools.find((p) => cidrContains(p.cidr, c));
}

/** The routes and tunnel plans this node wants. Pure: same input, same output. */
export function computeRoutes(input: RouteCalcInput): RouteCalcOutput {
  const errors: string[] = [];
  const fc = input.felixConfig ?? {};
  const hostMtu = input.hostMtu && input.hostMtu > 0 ? input.hostMtu : 1460;
  const nodes = nodeInfos(input, errors);
  const pools = poolInfos(input, errors);
  const me = nodes.get(input.nodeName);
  if (!me) errors.push(`no Node resource for this node (${input.nodeName}): remote routes need its address`);
  const routes = new Map<string, { r: DesiredRoute; prio: number }>();
  const put = (r: DesiredRoute, prio: number) => {
    const k = `${r.table ?? 254}|${r.dst}`;
    const cur = routes.get(k);
    if (!cur || prio < cur.prio) routes.set(k, { r, prio });
  };

  const vxlanMtu = numberOr(fc.vxlanMTU, hostMtu - 50);
  const vxlanMtu6 = numberOr(fc.vxlanMTUV6, hostMtu - 70);
  const ipipMtu = numberOr(fc.ipipMTU, hostMtu - 20);
  const active = pools.filter((p) => !p.disabled);
  const vxlan4On = fc.vxlanEnabled !== false && active.some((p) => p.cidr.version === 4 && p.vxlan !== 'Never');
  const vxlan6On = fc.vxlanEnabledV6 !== false && active.some((p) => p.cidr.version === 6 && p.vxlan !== 'Never');
  const ipipPools = active.filter((p) => p.cidr.version === 4 && p.ipip !== 'Never').map((p) => p.name);
  const ipipOn = fc.ipipEnabled !== false && ipipPools.length > 0;

  // --- 1. local workloads
  for (const w of input.localEndpoints) {
    const s = (w.spec ?? {}) as Record<string, any>;
    const iface = s.interfaceName;
    const nets: unknown[] = Array.isArray(s.ipNetworks) ? s.ipNetworks : [];
    if (typeof iface !== 'string' || !iface) {
      if (nets.length) errors.push(`WorkloadEndpoint ${w.metadata?.namespace}/${w.metadata?.name}: no spec.interfaceName; its routes are skipped`);
      continue;
    }
    for (const n of nets) {
      const c = typeof n === 'string' ? parseCidr(n) : undefined;
      if (!c) {
        errors.push(`WorkloadEndpoint ${w.metadata?.namespace}/${w.metadata?.name}: invalid ipNetworks entry ${JSON.stringify(n)}`);
        continue;
      }
      const host = `${fmt(c)}/${c.version === 4 ? 32 : 128}`;
      put({ dst: host, type: 'unicast', dev: iface, ...(c.version === 4 ? { scope: 'link' as const } : {}) }, 0);
    }
  }

  // --- blocks: owner node per block (confirmed affinities), else Kubernetes podCIDRs
  const blocksByNode = new Map<string, Cidr[]>();
  for (const a of input.blockAffinities) {
    const s = (a.spec ?? {}) as Record<string, any>;
    if (s.state !== 'confirmed' || s.deleted === true || s.deleted === 'true') continue;
    const c = typeof s.cidr === 'string' ? parseCidr(s.cidr) : undefined;
    if (!c || typeof s.node !== 'string') {
      errors.push(`BlockAffinity ${a.metadata?.name}: invalid node or cidr`);
      continue;
    }
    const list = blocksByNode.get(s.node) ?? [];
    list.push(networkOf(c));
    blocksByNode.set(s.node, list);
  }
  for (const k of input.kubernetesNodes ?? []) {
    const name = k.metadata?.name;
    if (!name || blocksByNode.has(name)) continue;
    const cidrs = ((k.spec as any)?.podCIDRs ?? ((k.spec as any)?.podCIDR ? [(k.spec as any).podCIDR] : [])) as unknown[];
    const list: Cidr[] = [];
    for (const t of cidrs) {
      const c = typeof t === 'string' ? parseCidr(t) : undefined;
      if (c) list.push(networkOf(c));
      else errors.push(`Kubernetes Node ${name}: invalid podCIDR ${JSON.stringify(t)}`);
    }
    if (list.length) blocksByNode.set(name, list);
  }

  // --- 1b. local blocks
  const localType = input.localBlockRouteType ?? 'blackhole';
  const localBlocks = blocksByNode.get(input.nodeName) ?? [];
  for (const b of localBlocks) put({ dst: canonicalText(b), type: localType }, 0);

  // How to reach a prefix owned by `node` (known to the datastore) under `pool`.
  const remoteRoute = (dst: string, c: Cidr, node: NodeInfo | undefined, pool: PoolInfo | undefined, via: string | undefined, source: string): DesiredRoute | undefined => {
    const v4 = c.version === 4;
    const mine = v4 ? me?.ip4 : me?.ip6;
    const theirs = node ? (v4 ? node.ip4 : node.ip6) : via ? parseCidr(via) : undefined;
    const nodeIp = node ? ipText(theirs) : via;
    const same = mine && theirs ? sameSubnet(mine, theirs) : false;
    const vx = pool && !pool.disabled ? pool.vxlan : 'Never';
    const ip = pool && !pool.disabled && v4 ? pool.ipip : 'Never';
    if ((vx === 'Always' || (vx === 'CrossSubnet' && !same)) && (v4 ? vxlan4On : vxlan6On)) {
      const vtep = node ? (v4 ? node.vtep4 : node.vtep6) : undefined;
      if (!vtep) {
        errors.push(`${dst} (${source}): node ${node?.name ?? via} has no ${v4 ? 'ipv4VXLANTunnelAddr' : 'ipv6VXLANTunnelAddr'}; not routed through VXLAN yet`);
        return undefined;
      }
      return { dst, type: 'unicast', via: vtep, dev: v4 ? 'vxlan.calico' : 'vxlan-v6.calico', onlink: true };
    }
    if ((ip === 'Always' || (ip === 'CrossSubnet' && !same)) && ipipOn) {
      if (!nodeIp) return undefined;
      return { dst, type: 'unicast', via: nodeIp, dev: 'tunl0', onlink: true };
    }
    if (!nodeIp) {
      errors.push(`${dst} (${source}): node ${node?.name} has no IPv${c.version} address`);
      return undefined;
    }
    if (!same && source === 'datastore') {
      errors.push(`${dst}: node ${node?.name} (${nodeIp}) is not on this node's subnet and pool ${pool?.name ?? '(none)'} has no encapsulation; not routed`);
      return undefined;
    }
    return { dst, type: 'unicast', via: nodeIp };
  };

  // --- 2. datastore-derived remote blocks
  const datastoreOwned = new Set<string>();
  for (const [nodeName, blocks] of [...blocksByNode].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    if (nodeName === input.nodeName) continue;
    const node = nodes.get(nodeName);
    for (const b of blocks) {
      const dst = canonicalText(b);
      const pool = poolOf(pools, b);
      const vxlanPool = !!pool && !pool.disabled && pool.vxlan !== 'Never' && (b.version === 4 ? vxlan4On : vxlan6On);
      if (input.bgpEnabled && !vxlanPool) continue; // BGP is the source for these
      if (!node) {
        errors.push(`${dst}: affine to node ${nodeName}, which has no Node resource; not routed`);
        continue;
      }
      const r = remoteRoute(dst, b, node, pool, undefined, 'datastore');
      datastoreOwned.add(dst);
      if (r) put(r, 1);
    }
  }

  // --- 3. BGP-learned
  if (input.bgpEnabled) {
    const byIp = new Map<string, NodeInfo>();
    for (const n of nodes.values()) {
      if (n.ip4) byIp.set(ipText(n.ip4)!, n);
      if (n.ip6) byIp.set(ipText(n.ip6)!, n);
    }
    for (const l of input.bgpRoutes ?? []) {
      const c = parseCidr(l.prefix);
      const nh = parseIp(l.nextHop);
      if (!c || !nh || nh.version !== c.version) {
        errors.push(`BGP route ${JSON.stringify(l.prefix)} via ${JSON.stringify(l.nextHop)}: invalid`);
        continue;
      }
      const dst = canonicalCidr(l.prefix);
      if (datastoreOwned.has(dst)) continue;
      const nhText = canonicalCidr(l.nextHop).split('/')[0];
      const node = byIp.get(nhText);
      if (node?.name === input.nodeName) continue;
      const pool = poolOf(pools, c);
      const r = remoteRoute(dst, c, node, pool, nhText, 'BGP');
      if (r) put(r, 2);
    }
  }

  // --- service hook
  for (const r of input.serviceRoutes ?? []) put(r, 3);

  // --- tunnel plans
  const out: RouteCalcOutput = {
    routes: [...routes.values()].map((x) => x.r).sort((a, b) => cmp(`${a.table ?? 254}|${a.dst}`, `${b.table ?? 254}|${b.dst}`)),
    ipipNeeded: ipipOn,
    podMtu: hostMtu,
    errors,
  };
  const mtus: number[] = [];
  const vxPlan = (family: 4 | 6): VxlanPlan | undefined => {
    const vtep = family === 4 ? me?.vtep4 : me?.vtep6;
    const local = family === 4 ? me?.ip4 : me?.ip6;
    if (!vtep || !local) {
      errors.push(`VXLAN${family === 6 ? ' (IPv6)' : ''} is needed by an IP pool but this node has no ${!local ? `IPv${family} address` : family === 4 ? 'ipv4VXLANTunnelAddr' : 'ipv6VXLANTunnelAddr'}`);
      return undefined;
    }
    const peers: VxlanPeer[] = [];
    for (const n of [...nodes.values()].sort((a, b) => cmp(a.name, b.name))) {
      if (n.name === input.nodeName) continue;
      const v = family === 4 ? n.vtep4 : n.vtep6;
      const mac = family === 4 ? n.mac4 : n.mac6;
      const ip = ipText(family === 4 ? n.ip4 : n.ip6);
      if (!v || !ip) continue;
      if (!mac) {
        errors.push(`Node ${n.name}: VXLAN tunnel address ${v} without ${family === 4 ? 'vxlanTunnelMACAddr' : 'vxlanTunnelMACAddrV6'}; no FDB entry for it`);
        continue;
      }
      peers.push({ node: n.name, vtepIp: v, mac, nodeIp: ip });
    }
    return {
      device: family === 4 ? 'vxlan.calico' : 'vxlan-v6.calico',
      family,
      vni: numberOr(family === 4 ? fc.vxlanVNI : fc.vxlanVNIV6 ?? fc.vxlanVNI, 4096),
      port: numberOr(family === 4 ? fc.vxlanPort : fc.vxlanPortV6 ?? fc.vxlanPort, 4789),
      mtu: family === 4 ? vxlanMtu : vxlanMtu6,
      vtepIp: vtep,
      mac: family === 4 ? me?.mac4 : me?.mac6,
      localIp: ipText(local)!,
      peers,
    };
  };
  if (vxlan4On) {
    out.vxlan = vxPlan(4);
    mtus.push(vxlanMtu);
  }
  if (vxlan6On) {
    out.vxlanV6 = vxPlan(6);
    mtus.push(vxlanMtu6);
  }
  if (ipipOn) {
    out.ipip = { device: 'tunl0', mtu: ipipMtu, tunnelAddr: me?.ipip4, pools: ipipPools };
    mtus.push(ipipMtu);
  }
  if (mtus.length) out.podMtu = Math.min(...mtus);
  return out;
}

function canonicalText(c: Cidr): string {
  return formatCidr(networkOf(c));
}

function numberOr(v: unknown, d: number): number {
  return typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : d;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
