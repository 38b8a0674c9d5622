// Calico's Kubernetes-datastore conversions (libcalico-go k8s/conversion): a Pod is a
// WorkloadEndpoint, a Namespace is Profile `kns.<ns>`, a ServiceAccount is Profile
// `ksa.<ns>.<sa>`. `deriveResources` applies them to any backend's event stream, so the same
// kubectl-style manifests drive the file datastore, etcd and the Kubernetes API alike.
import { createHash } from 'node:crypto';
import { LABELS } from './model.js';
import { formatIp, parseCidr, parseIp } from './net.js';
import {
  CALICO_API,
  type DatastoreEvent,
  type EventHandler,
  type KindId,
  type Resource,
  type ResourceKey,
  keyOf,
  kindOf,
} from './types.js';

const ANNOTATION_POD_IP = 'cni.projectcalico.org/podIP';
const ANNOTATION_POD_IPS = 'cni.projectcalico.org/podIPs';
const ANNOTATION_CONTAINER_ID = 'cni.projectcalico.org/containerID';
const ANNOTATION_FLOATING_IPS = 'cni.projectcalico.org/floatingIPs';

/**
 * Host-side interface name of a pod: the prefix (first of a comma-separated list) plus the
 * first 11 hex characters of SHA-1("<namespace>.<pod>"): `cali` + 11 = 15 characters.
 */
export function interfaceNameForPod(namespace: string, pod: string, prefix = 'cali'): string {
  const p = prefix.split(',')[0] || 'cali';
  return p + createHash('sha1').update(`${namespace}.${pod}`).digest('hex').slice(0, 11);
}

/** Calico's WorkloadEndpoint name segments: every '-' inside a segment is doubled. */
export function escapeNameSegment(s: string): string {
  return s.replace(/-/g, '--');
}

/** `<node>-k8s-<pod>-<endpoint>`, dashes doubled inside each segment. */
export function workloadEndpointName(node: string, pod: string, endpoint = 'eth0'): string {
  return [node, 'k8s', pod, endpoint].map(escapeNameSegment).join('-');
}

export function namespaceProfileName(ns: string): string {
  return `kns.${ns}`;
}

export function serviceAccountProfileName(ns: string, sa: string): string {
  return `ksa.${ns || 'default'}.${sa}`;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/** The pod's addresses as Calico reads them: status.podIPs, status.podIP, then the annotations. */
export function podIPs(pod: Resource): string[] {
  const status = (pod.status ?? {}) as Record<string, any>;
  const ann = pod.metadata.annotations ?? {};
  if (Array.isArray(status.podIPs) && status.podIPs.length) return status.podIPs.map((p: any) => String(p?.ip ?? ''));
  if (str(status.podIP)) return [status.podIP];
  if (str(ann[ANNOTATION_POD_IPS])) return ann[ANNOTATION_POD_IPS].split(',').map((s) => s.trim());
  if (str(ann[ANNOTATION_POD_IP])) return [ann[ANNOTATION_POD_IP].trim()];
  return [];
}

/** Succeeded/Failed pods (and deleted pods whose IP the CNI plugin already cleared) have no endpoint. */
export function podIsFinished(pod: Resource): boolean {
  const ann = pod.metadata.annotations ?? {};
  if (pod.metadata.deletionTimestamp && ann[ANNOTATION_POD_IP] === '') return true;
  const phase = (pod.status as any)?.phase;
  return phase === 'Succeeded' || phase === 'Failed' || phase === 'Completed';
}

/** An address (→ /32, /128) or CIDR as Go's net.IPNet prints it; undefined if malformed. */
function ipNetwork(text: string): string | undefined {
  const c = parseCidr(text);
  if (!c) return undefined;
  return `${formatIp(c.version, c.addr)}/${c.prefix}`;
}

function endpointPorts(spec: Record<string, any>): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  for (const list of [spec.containers, spec.initContainers]) {
    if (!Array.isArray(list)) continue;
    for (const c of list) {
      for (const p of Array.isArray(c?.ports) ? c.ports : []) {
        const port = Number(p?.containerPort ?? 0);
        const hostPort = Number(p?.hostPort ?? 0);
        if (!port || (!hostPort && !str(p?.name))) continue;
        const proto = p.protocol === undefined || p.protocol === '' ? 'TCP' : p.protocol;
        if (proto !== 'TCP' && proto !== 'UDP' && proto !== 'SCTP') continue; // Calico skips unknown protocols
        const ep: Record<string, unknown> = { name: p.name ?? '', protocol: proto, port };
        if (hostPort) ep.hostPort = hostPort;
        if (str(p.hostIP)) ep.hostIP = p.hostIP;
        out.push(ep);
      }
    }
  }
  return out;
}

/**
 * The WorkloadEndpoint Calico's Kubernetes datastore makes of a v1 Pod; undefined for pods
 * that are not scheduled, host-networked, finished, or have no (valid) IP yet.
 */
export function workloadEndpointFromPod(pod: Resource): Resource | undefined {
  const spec = (pod.spec ?? {}) as Record<string, any>;
  const node = str(spec.nodeName);
  if (!node || spec.hostNetwork === true || podIsFinished(pod)) return undefined;
  const ns = pod.metadata.namespace || 'default';
  const name = pod.metadata.name;
  const nets: string[] = [];
  for (const ip of podIPs(pod)) {
    const n = ipNetwork(ip);
    if (!n) return undefined; // Calico fails the conversion on a malformed IP
    nets.push(n);
  }
  if (nets.length === 0) return undefined;

  // Kubernetes' ServiceAccount admission gives every pod one; manifests may omit it.
  const sa = str(spec.serviceAccountName) ?? str(spec.serviceAccount) ?? 'default';
  const labels: Record<string, string> = { ...(pod.metadata.labels ?? {}) };
  labels[LABELS.namespace] = ns;
  labels[LABELS.orchestrator] = 'k8s';
  if (sa.length < 63) labels[LABELS.serviceAccount] = sa;

  const ann = pod.metadata.annotations ?? {};
  const wepSpec: Record<string, unknown> = {
    orchestrator: 'k8s',
    node,
    pod: name,
    endpoint: 'eth0',
  };
  if (str(ann[ANNOTATION_CONTAINER_ID])) wepSpec.containerID = ann[ANNOTATION_CONTAINER_ID];
  wepSpec.serviceAccountName = sa;
  wepSpec.ipNetworks = nets;
  const nats = floatingIPs(ann[ANNOTATION_FLOATING_IPS], nets);
  if (nats === null) return undefined; // Calico fails the conversion on a malformed annotation
  if (nats.length) wepSpec.ipNATs = nats;
  wepSpec.profiles = [namespaceProfileName(ns), serviceAccountProfileName(ns, sa)];
  wepSpec.interfaceName = interfaceNameForPod(ns, name);
  const ports = endpointPorts(spec);
  if (ports.length) wepSpec.ports = ports;

  const metadata: Resource['metadata'] = { name: workloadEndpointName(node, name), namespace: ns, labels };
  if (pod.metadata.uid) metadata.uid = pod.metadata.uid;
  if (pod.metadata.creationTimestamp) metadata.creationTimestamp = pod.metadata.creationTimestamp;
  if (pod.metadata.resourceVersion) metadata.resourceVersion = pod.metadata.resourceVersion;
  return { apiVersion: CALICO_API, kind: 'WorkloadEndpoint', metadata, spec: wepSpec };
}

/** `cni.projectcalico.org/floatingIPs` (JSON list) → ipNATs; null when malformed. */
function floatingIPs(annotation: string | undefined, nets: string[]): Array<{ internalIP: string; externalIP: string }> | null {
  if (annotation === undefined) return [];
  let ips: unknown;
  try {
    ips = JSON.parse(annotation);
  } catch {
    return null;
  }
  if (!Array.isArray(ips)) return null;
  const v4 = nets.find((n) => parseCidr(n)?.version === 4)?.split('/')[0];
  const v6 = nets.find((n) => parseCidr(n)?.version === 6)?.split('/')[0];
  const out: Array<{ internalIP: string; externalIP: string }> = [];
  for (const ip of ips) {
    if (typeof ip !== 'string' || !parseIp(ip)) return null;
    const internal = ip.includes(':') ? v6 : v4;
    if (internal) out.push({ internalIP: internal, externalIP: ip });
  }
  return out;
}

function prefixed(prefix: string, labels: Record<string, string> | undefined, name: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels ?? {})) out[prefix + k] = v;
  out[`${prefix}${LABELS.name}`] = name;
  return out;
}

function profileMeta(name: string, src: Resource): Resource['metadata'] {
  const m: Resource['metadata'] = { name };
  if (src.metadata.uid) m.uid = src.metadata.uid;
  if (src.metadata.creationTimestamp) m.creationTimestamp = src.metadata.creationTimestamp;
  return m;
}

/** Profile `kns.<ns>`: allows all traffic, applies the namespace's labels as `pcns.*`. */
export function profileFromNamespace(ns: Resource): Resource {
  const name = ns.metadata.name;
  return {
    apiVersion: CALICO_API,
    kind: 'Profile',
    metadata: profileMeta(namespaceProfileName(name), ns),
    spec: {
      ingress: [{ action: 'Allow' }],
      egress: [{ action: 'Allow' }],
      labelsToApply: prefixed('pcns.', ns.metadata.labels, name),
    },
  };
}

/** Profile `ksa.<ns>.<sa>`: no rules, applies the service account's labels as `pcsa.*`. */
export function profileFromServiceAccount(sa: Resource): Resource {
  const name = sa.metadata.name;
  return {
    apiVersion: CALICO_API,
    kind: 'Profile',
    metadata: profileMeta(serviceAccountProfileName(sa.metadata.namespace ?? 'default', name), sa),
    spec: { labelsToApply: prefixed('pcsa.', sa.metadata.labels, name) },
  };
}

/** What a source resource derives into (undefined = nothing). */
export function deriveFrom(kind: KindId, r: Resource): Resource | undefined {
  switch (kind) {
    case 'Pod':
      return workloadEndpointFromPod(r);
    case 'Namespace':
      return profileFromNamespace(r);
    case 'ServiceAccount':
      return profileFromServiceAccount(r);
    default:
      return undefined;
  }
}

const SOURCE_KINDS = new Set<KindId>(['Pod', 'Namespace', 'ServiceAccount']);
const DERIVED_KINDS = new Set<KindId>(['WorkloadEndpoint', 'Profile']);

/**
 * Stateful stream transform. Every event passes through; events of Pods, Namespaces and
 * ServiceAccounts are followed (in the same batch) by update/delete events of what they
 * derive into. A stored WorkloadEndpoint or Profile with the same key as a derived one wins
 * (its deletion brings the derived one back).
 */
export class Deriver {
  private readonly stored = new Set<ResourceKey>();
  private readonly derived = new Map<ResourceKey, { kind: KindId; resource: Resource; json: string }>();
  private readonly bySource = new Map<ResourceKey, ResourceKey>();

  process(events: DatastoreEvent[]): DatastoreEvent[] {
    const out: DatastoreEvent[] = [];
    for (const ev of events) {
      if (ev.type === 'update' && DERIVED_KINDS.has(ev.kind)) {
        this.stored.add(ev.key);
        out.push(ev);
      } else if (ev.type === 'delete' && DERIVED_KINDS.has(ev.kind)) {
        this.stored.delete(ev.key);
        const d = this.derived.get(ev.key);
        out.push(d ? { type: 'update', key: ev.key, kind: d.kind, resource: d.resource } : ev);
      } else if (ev.type === 'update' && SOURCE_KINDS.has(ev.kind)) {
        out.push(ev);
        this.setDerived(ev.key, deriveFrom(ev.kind, ev.resource), out);
      } else if (ev.type === 'delete' && SOURCE_KINDS.has(ev.kind)) {
        out.push(ev);
        this.setDerived(ev.key, undefined, out);
      } else {
        out.push(ev);
      }
    }
    return out;
  }

  private setDerived(source: ResourceKey, r: Resource | undefined, out: DatastoreEvent[]): void {
    const oldKey = this.bySource.get(source);
    const newKey = r ? keyOf(r) : undefined;
    if (oldKey !== undefined && oldKey !== newKey) {
      const old = this.derived.get(oldKey)!;
      this.bySource.delete(source);
      this.derived.delete(oldKey);
      if (!this.stored.has(oldKey)) out.push({ type: 'delete', key: oldKey, kind: old.kind });
    }
    if (!r || newKey === undefined) return;
    const kind = kindOf(r.apiVersion, r.kind)!.id;
    const json = JSON.stringify(r);
    const prev = this.derived.get(newKey);
    this.bySource.set(source, newKey);
    this.derived.set(newKey, { kind, resource: r, json });
    if (prev?.json === json || this.stored.has(newKey)) return;
    out.push({ type: 'update', key: newKey, kind, resource: r });
  }
}

/** Wraps a handler so that it sees the derived stream (used by every backend via the factory). */
export function deriveResources(handler: EventHandler): EventHandler {
  const d = new Deriver();
  return (events) => handler(d.process(events));
}
