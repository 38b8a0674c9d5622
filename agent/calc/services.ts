// Service advertisement, Calico's semantics (calico.md §5):
// - the CIDRs in BGPConfiguration `serviceClusterIPs`, `serviceExternalIPs` and
//   `serviceLoadBalancerIPs` are advertised by every node;
// - a Service with `externalTrafficPolicy: Local` has the /32 (/128) of its external and
//   load-balancer IPs advertised only by nodes with a ready local endpoint (EndpointSlices), and
//   with `internalTrafficPolicy: Local` likewise for its cluster IPs; withdrawn when the last one goes;
// - nothing outside the configured ranges is ever advertised.
import { canonicalCidr, cidrContains, parseCidr, type Cidr } from '../../datastore/index.js';
import type { Resource } from '../../datastore/index.js';

export interface ServiceAdvertisement {
  /** CIDRs (aggregate ranges and per-service /32 or /128) this node advertises. */
  prefixes: string[];
  /** Why each per-service host prefix is there, for /status. */
  local: { prefix: string; service: string }[];
  errors: string[];
}

export interface ServiceInput {
  nodeName: string;
  /** BGPConfiguration resources (`default` and `node.<name>`). */
  bgpConfigurations: Resource[];
  services: Resource[];
  endpointSlices: Resource[];
}

function ranges(list: unknown): { cidrs: Cidr[]; text: string[]; bad: string[] } {
  const cidrs: Cidr[] = [];
  const text: string[] = [];
  const bad: string[] = [];
  for (const item of Array.isArray(list) ? list : []) {
    const c = typeof item?.cidr === 'string' ? parseCidr(item.cidr) : undefined;
    if (!c) {
      bad.push(String(item?.cidr));
      continue;
    }
    cidrs.push(c);
    text.push(canonicalCidr(item.cidr));
  }
  return { cidrs, text, bad };
}

/** Services with at least one ready endpoint on this node, by `<namespace>/<name>`. */
function servicesWithLocalEndpoints(nodeName: string, slices: Resource[]): Set<string> {
  const out = new Set<string>();
  for (const s of slices) {
    const svc = s.metadata.labels?.['kubernetes.io/service-name'];
    if (!svc) continue;
    const endpoints = Array.isArray((s as any).endpoints) ? (s as any).endpoints : [];
    const local = endpoints.some(
      (e: any) => e?.nodeName === nodeName && (e?.conditions?.ready ?? true) !== false && (e?.conditions?.terminating ?? false) !== true,
    );
    if (local) out.add(`${s.metadata.namespace ?? 'default'}/${svc}`);
  }
  return out;
}

function hostPrefix(ip: string): string | undefined {
  const c = parseCidr(ip);
  if (!c) return undefined;
  return canonicalCidr(`${ip}/${c.version === 4 ? 32 : 128}`);
}

export function computeServiceAdvertisement(input: ServiceInput): ServiceAdvertisement {
  const def = input.bgpConfigurations.find((c) => c.metadata.name === 'default');
  const spec = (def?.spec ?? {}) as Record<string, unknown>;
  const errors: string[] = [];
  const cluster = ranges(spec.serviceClusterIPs);
  const external = ranges(spec.serviceExternalIPs);
  const lb = ranges(spec.serviceLoadBalancerIPs);
  for (const b of [...cluster.bad, ...external.bad, ...lb.bad]) errors.push(`BGPConfiguration default: invalid service CIDR ${b}`);

  const prefixes = new Set<string>([...cluster.text, ...external.text, ...lb.text]);
  const local: ServiceAdvertisement['local'] = [];
  const withLocal = servicesWithLocalEndpoints(input.nodeName, input.endpointSlices);

  const within = (ip: string, rs: Cidr[]) => {
    const c = parseCidr(ip);
    return c !== undefined && rs.some((r) => cidrContains(r, c));
  };
  for (const svc of input.services) {
    const s = (svc.spec ?? {}) as Record<string, any>;
    if (s.type === 'ExternalName') continue;
    const id = `${svc.metadata.namespace ?? 'default'}/${svc.metadata.name}`;
    if (!withLocal.has(id)) continue;
    const add = (ip: string, rs: Cidr[]) => {
      if (!ip || ip === 'None' || !within(ip, rs)) return;
      const p = hostPrefix(ip);
      if (p && !prefixes.has(p)) {
        prefixes.add(p);
        local.push({ prefix: p, service: id });
      }
    };
    if (s.internalTrafficPolicy === 'Local') {
      for (const ip of [s.clusterIP, ...(Array.isArray(s.clusterIPs) ? s.clusterIPs : [])]) add(ip, cluster.cidrs);
    }
    if (s.externalTrafficPolicy === 'Local') {
      for (const ip of Array.isArray(s.externalIPs) ? s.externalIPs : []) add(ip, external.cidrs);
      for (const ing of (svc.status as any)?.loadBalancer?.ingress ?? []) add(ing?.ip, lb.cidrs);
      for (const ip of [s.loadBalancerIP]) if (typeof ip === 'string') add(ip, lb.cidrs);
      // Calico also advertises the cluster IP /32 of a Local service (traffic from outside the
      // cluster to the cluster IP stays on nodes with endpoints).
      for (const ip of [s.clusterIP, ...(Array.isArray(s.clusterIPs) ? s.clusterIPs : [])]) add(ip, cluster.cidrs);
    }
  }
  return { prefixes: [...prefixes].sort(), local, errors };
}
