// The policy calculation the agent runs: datastore events in (WorkloadEndpoint, HostEndpoint,
// NetworkPolicy, GlobalNetworkPolicy, KubernetesNetworkPolicy, Profile, NetworkSet,
// GlobalNetworkSet, IPPool, FelixConfiguration), the desired iptables/ipset state out
// (`desired`, applied by acl's IptablesDataplane once `inSync`).
//
// Bad input never stops the rest: a policy that fails to convert keeps its last good version
// (nothing already programmed is lost) or, if it never had one, is left out; either way the
// error is logged and listed in `status().errors`.
import { createHash } from 'node:crypto';
import {
  convertCalicoPolicy,
  convertK8sPolicy,
  convertProfile,
  LABEL_NAMESPACE,
  LABEL_ORCHESTRATOR,
  LABEL_SERVICEACCOUNT,
  PolicyEngine,
  type DesiredState,
  type EndpointInput,
  type Family,
  type NormPolicy,
  type RenderConfig,
} from '../../acl/index.js';
import { parseCidr, type DatastoreEvent, type Resource } from '../../datastore/index.js';
import { logger, type Logger } from '../log.js';
import { gauge } from '../metrics.js';

const policiesActive = gauge({ name: 'petrel_policies_active', help: 'Policies that apply to at least one local endpoint' });
const endpointsActive = gauge({ name: 'petrel_endpoints_active', help: 'Local endpoints with policy chains' });

export interface PolicyCalculatorOptions {
  nodeName: string;
  /** chain/ipset prefix (default `pet-`). */
  prefix?: string;
  ipVersions?: Family[];
  log?: Logger;
}

export interface PolicyCalculatorStatus {
  inSync: boolean;
  policies: number;
  policiesActive: number;
  endpoints: number;
  endpointsActive: number;
  ipsetMembers: number;
  errors: Array<{ resource: string; message: string }>;
  warnings: Array<{ resource: string; message: string }>;
  /** SHA-1 of the sorted keys of the policies in the model (`policyDigest(keys)`): tells tests which set is loaded. */
  policyDigest: string;
  /** Changes computed but not yet taken by the dataplane. */
  pending: boolean;
}

/** Digest of a set of policy resource keys (`KubernetesNetworkPolicy/ns/name`, `GlobalNetworkPolicy/name`...). */
export function policyDigest(keys: Iterable<string>): string {
  return createHash('sha1').update([...keys].sort().join('\n')).digest('hex').slice(0, 16);
}

/** FelixConfiguration fields the policy dataplane honours (also the dataplane's: refresh, backend). */
export interface PolicyFelixConfig {
  render: Partial<RenderConfig>;
  iptablesRefreshIntervalMs?: number;
  iptablesBackend?: 'auto' | 'nft' | 'legacy';
}

const HANDLED = new Set([
  'WorkloadEndpoint',
  'HostEndpoint',
  'NetworkPolicy',
  'GlobalNetworkPolicy',
  'KubernetesNetworkPolicy',
  'Profile',
  'NetworkSet',
  'GlobalNetworkSet',
  'IPPool',
  'FelixConfiguration',
]);

function durationMs(v: unknown): number | undefined {
  if (typeof v === 'number') return v * 1000;
  if (typeof v !== 'string') return undefined;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
  let total = 0;
  let m: RegExpExecArray | null;
  let any = false;
  while ((m = re.exec(v))) {
    any = true;
    const n = Number(m[1]);
    total += m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : m[2] === 'm' ? n * 60_000 : n * 3_600_000;
  }
  return any ? total : undefined;
}

const cap = (s: unknown) => (typeof s === 'string' && s ? s[0]!.toUpperCase() + s.slice(1).toLowerCase() : undefined);

/** FelixConfiguration (default merged with node.<name>) → what the policy dataplane uses. */
export function felixPolicyConfig(spec: Record<string, any>): PolicyFelixConfig {
  const r: Partial<RenderConfig> = {};
  if (typeof spec.interfacePrefix === 'string' && spec.interfacePrefix) r.interfacePrefixes = spec.interfacePrefix.split(',').map((s: string) => s.trim()).filter(Boolean);
  const toHost = cap(spec.defaultEndpointToHostAction);
  if (toHost === 'Drop' || toHost === 'Accept' || toHost === 'Return') r.defaultEndpointToHostAction = toHost;
  const allow = cap(spec.iptablesFilterAllowAction);
  if (allow === 'Accept' || allow === 'Return') r.filterAllowAction = allow;
  const deny = cap(spec.iptablesFilterDenyAction);
  if (deny === 'Drop' || deny === 'Reject') r.filterDenyAction = deny;
  if (typeof spec.disableConntrackInvalidCheck === 'boolean') r.disableConntrackInvalidCheck = spec.disableConntrackInvalidCheck;
  const mode = cap(spec.chainInsertMode);
  if (mode === 'Insert' || mode === 'Append') r.chainInsertMode = mode;
  if (typeof spec.logPrefix === 'string' && spec.logPrefix) r.logPrefix = spec.logPrefix;
  if (typeof spec.maxIpsetSize === 'number' && spec.maxIpsetSize > 0) r.maxIpsetSize = spec.maxIpsetSize;
  const ports = (v: unknown) =>
    Array.isArray(v)
      ? v
          .filter((p: any) => p && Number.isInteger(Number(p.port)))
          .map((p: any) => ({ protocol: String(p.protocol ?? 'tcp').toLowerCase(), port: Number(p.port), ...(p.net ? { net: String(p.net) } : {}) }))
      : undefined;
  const fin = ports(spec.failsafeInboundHostPorts);
  if (fin) r.failsafeInbound = fin;
  const fout = ports(spec.failsafeOutboundHostPorts);
  if (fout) r.failsafeOutbound = fout;
  const backend = typeof spec.iptablesBackend === 'string' ? spec.iptablesBackend.toLowerCase() : undefined;
  return {
    render: r,
    iptablesRefreshIntervalMs: durationMs(spec.iptablesRefreshInterval),
    iptablesBackend: backend === 'nft' || backend === 'legacy' || backend === 'auto' ? backend : undefined,
  };
}

export class PolicyCalculator {
  readonly engine: PolicyEngine;
  private readonly log: Logger;
  private readonly nodeName: string;
  private synced = false;
  private readonly errors = new Map<string, string>();
  private readonly warnings = new Map<string, string>();
  /** resource key → policy id (for deletes). */
  private readonly policyIds = new Map<string, string>();
  private readonly profileNames = new Map<string, string>();
  private readonly pools = new Map<string, { cidr: string; natOutgoing: boolean; disabled: boolean }>();
  private readonly felixConfigs = new Map<string, Record<string, any>>();
  private felix: PolicyFelixConfig = { render: {} };
  private gaugesAt = 0;

  constructor(opts: PolicyCalculatorOptions) {
    this.nodeName = opts.nodeName;
    this.log = opts.log ?? logger('policy');
    this.engine = new PolicyEngine({ prefix: opts.prefix, ipVersions: opts.ipVersions });
  }

  get desired(): DesiredState {
    return this.engine.desired;
  }

  get inSync(): boolean {
    return this.synced;
  }

  /** The FelixConfiguration-derived settings (the agent passes refresh/backend to the dataplane). */
  get felixConfig(): PolicyFelixConfig {
    return this.felix;
  }

  /** Feeds a batch of datastore events; returns true when the desired state changed. */
  onEvents(events: DatastoreEvent[]): boolean {
    let felixChanged = false;
    for (const ev of events) {
      if (ev.type === 'in-sync') {
        this.synced = true;
        continue;
      }
      if (ev.type === 'status' || !HANDLED.has(ev.kind)) continue;
      try {
        if (ev.kind === 'FelixConfiguration') {
          if (ev.type === 'update') this.felixConfigs.set(ev.resource.metadata.name, (ev.resource.spec ?? {}) as Record<string, any>);
          else this.felixConfigs.delete(ev.key.split('/').pop()!);
          felixChanged = true;
          continue;
        }
        if (ev.type === 'update') this.update(ev.kind, ev.key, ev.resource);
        else this.remove(ev.kind, ev.key);
      } catch (e) {
        const msg = String((e as Error).message ?? e);
        this.errors.set(ev.key, msg);
        this.log.error({ resource: ev.key, err: msg }, 'cannot use resource; keeping its last good version');
      }
    }
    if (felixChanged) this.applyFelixConfig();
    const before = this.engine.desired.dirty;
    this.engine.flush();
    // The gauges need a walk over everything: at most once a second.
    const now = Date.now();
    if (now - this.gaugesAt > 1000) {
      this.gaugesAt = now;
      const c = this.engine.counts();
      policiesActive.set(c.policiesActive);
      endpointsActive.set(c.endpointsActive);
    }
    return before || this.engine.desired.dirty;
  }

  status(): PolicyCalculatorStatus {
    const c = this.engine.counts();
    return {
      inSync: this.synced,
      policies: this.policyIds.size,
      policiesActive: c.policiesActive,
      endpoints: c.endpoints,
      endpointsActive: c.endpointsActive,
      ipsetMembers: c.ipsetMembers,
      errors: [...this.errors].map(([resource, message]) => ({ resource, message })),
      warnings: [...this.warnings].map(([resource, message]) => ({ resource, message })),
      policyDigest: policyDigest(this.policyIds.keys()),
      pending: this.engine.desired.dirty,
    };
  }

  private applyFelixConfig(): void {
    const merged = { ...(this.felixConfigs.get('default') ?? {}), ...(this.felixConfigs.get(`node.${this.nodeName}`) ?? {}) };
    this.felix = felixPolicyConfig(merged);
    this.engine.setConfig(this.felix.render);
  }

  private warn(key: string, list: string[]): void {
    if (list.length) {
      const msg = list.join('; ');
      if (this.warnings.get(key) !== msg) this.log.warn({ resource: key, warnings: list }, 'policy fields not implemented');
      this.warnings.set(key, msg);
    } else this.warnings.delete(key);
  }

  private update(kind: string, key: string, r: Resource): void {
    const spec = (r.spec ?? {}) as Record<string, any>;
    switch (kind) {
      case 'WorkloadEndpoint':
      case 'HostEndpoint':
        this.engine.upsertEndpoint(this.endpointInput(kind, key, r));
        break;
      case 'NetworkPolicy':
      case 'GlobalNetworkPolicy':
      case 'KubernetesNetworkPolicy': {
        const p: NormPolicy = kind === 'KubernetesNetworkPolicy' ? convertK8sPolicy(r) : convertCalicoPolicy(r, kind === 'GlobalNetworkPolicy');
        const old = this.policyIds.get(key);
        if (old && old !== p.id) this.engine.deletePolicy(old);
        this.policyIds.set(key, p.id);
        this.engine.upsertPolicy(p);
        this.warn(key, p.warnings);
        break;
      }
      case 'Profile': {
        const p = convertProfile(r);
        this.profileNames.set(key, p.name);
        this.engine.upsertProfile(p);
        break;
      }
      case 'NetworkSet':
      case 'GlobalNetworkSet': {
        const ns = kind === 'NetworkSet' ? (r.metadata.namespace ?? 'default') : undefined;
        const labels: Record<string, string> = { ...(r.metadata.labels ?? {}) };
        if (ns) labels[LABEL_NAMESPACE] = ns;
        const nets = (Array.isArray(spec.nets) ? spec.nets : []).map(String).map((n: string) => {
          const c = parseCidr(n.includes('/') ? n : n.includes(':') ? `${n}/128` : `${n}/32`);
          if (!c) throw new Error(`${kind} ${r.metadata.name}: spec.nets: invalid CIDR ${JSON.stringify(n)}`);
          return n.includes('/') ? n : n.includes(':') ? `${n}/128` : `${n}/32`;
        });
        this.engine.upsertNetworkSet({ key, nets, labels, profiles: ns ? [`kns.${ns}`] : [] });
        break;
      }
      case 'IPPool': {
        const cidr = String(spec.cidr ?? '');
        if (!parseCidr(cidr)) throw new Error(`IPPool ${r.metadata.name}: spec.cidr: invalid CIDR ${JSON.stringify(spec.cidr)}`);
        this.pools.set(key, { cidr, natOutgoing: spec.natOutgoing === true, disabled: spec.disabled === true });
        this.engine.setPools([...this.pools.values()].sort((a, b) => (a.cidr < b.cidr ? -1 : 1)));
        break;
      }
    }
    this.errors.delete(key);
  }

  private remove(kind: string, key: string): void {
    this.errors.delete(key);
    this.warnings.delete(key);
    switch (kind) {
      case 'WorkloadEndpoint':
      case 'HostEndpoint':
        this.engine.deleteEndpoint(key);
        break;
      case 'NetworkPolicy':
      case 'GlobalNetworkPolicy':
      case 'KubernetesNetworkPolicy': {
        const id = this.policyIds.get(key);
        if (id) this.engine.deletePolicy(id);
        this.policyIds.delete(key);
        break;
      }
      case 'Profile': {
        const name = this.profileNames.get(key);
        if (name) this.engine.deleteProfile(name);
        this.profileNames.delete(key);
        break;
      }
      case 'NetworkSet':
      case 'GlobalNetworkSet':
        this.engine.deleteNetworkSet(key);
        break;
      case 'IPPool':
        this.pools.delete(key);
        this.engine.setPools([...this.pools.values()].sort((a, b) => (a.cidr < b.cidr ? -1 : 1)));
        break;
    }
  }

  private endpointInput(kind: string, key: string, r: Resource): EndpointInput {
    const spec = (r.spec ?? {}) as Record<string, any>;
    const labels: Record<string, string> = { ...(r.metadata.labels ?? {}) };
    const nets: string[] = [];
    const addrs: unknown[] = kind === 'WorkloadEndpoint' ? (spec.ipNetworks ?? []) : (spec.expectedIPs ?? []);
    for (const a of Array.isArray(addrs) ? addrs : []) {
      const t = String(a);
      const c = t.includes('/') ? t : t.includes(':') ? `${t}/128` : `${t}/32`;
      if (!parseCidr(c)) throw new Error(`${kind} ${r.metadata.name}: invalid address ${JSON.stringify(a)}`);
      nets.push(c);
    }
    if (kind === 'WorkloadEndpoint') {
      const ns = r.metadata.namespace ?? 'default';
      labels[LABEL_NAMESPACE] ??= ns;
      if (spec.orchestrator) labels[LABEL_ORCHESTRATOR] ??= String(spec.orchestrator);
      if (spec.serviceAccountName) labels[LABEL_SERVICEACCOUNT] ??= String(spec.serviceAccountName);
    }
    let iface = typeof spec.interfaceName === 'string' && spec.interfaceName ? spec.interfaceName : undefined;
    if (iface === '*') {
      this.warn(key, ['interfaceName "*" (all-interfaces host endpoint) is not implemented by Petrel; only its addresses are used in selectors']);
      iface = undefined;
    }
    if (iface && !/^[A-Za-z0-9_.@:-]{1,15}$/.test(iface)) throw new Error(`${kind} ${r.metadata.name}: spec.interfaceName: invalid interface name ${JSON.stringify(iface)}`);
    return {
      key,
      kind: kind === 'WorkloadEndpoint' ? 'wep' : 'hep',
      local: spec.node === this.nodeName,
      iface,
      nets,
      labels,
      profiles: Array.isArray(spec.profiles) ? spec.profiles.map(String) : [],
      ports: (Array.isArray(spec.ports) ? spec.ports : [])
        .filter((p: any) => p && typeof p.name === 'string' && p.name && Number.isInteger(Number(p.port)))
        .map((p: any) => ({ name: p.name, protocol: String(p.protocol ?? 'TCP').toLowerCase(), port: Number(p.port) })),
    };
  }
}
