// Table output of `petrel ctl get`, in calicoctl's style: upper-case headers, columns aligned
// with three spaces, one row per resource; `-o wide` adds calicoctl's wide columns.

import type { KindId, Resource } from '../../datastore/types.js';

type Cell = (r: Resource) => unknown;
interface Column {
  header: string;
  cell: Cell;
  wide?: boolean;
}

const name: Column = { header: 'NAME', cell: (r) => r.metadata.name };
const s = (f: (spec: any, r: Resource) => unknown): Cell => (r) => f(r.spec ?? {}, r);
const list = (v: unknown): string => (Array.isArray(v) ? v.join(',') : v === undefined || v === null ? '' : String(v));

const COLUMNS: Partial<Record<KindId, Column[]>> = {
  IPPool: [
    name,
    { header: 'CIDR', cell: s((p) => p.cidr) },
    { header: 'NAT', cell: s((p) => p.natOutgoing ?? false), wide: true },
    { header: 'IPIPMODE', cell: s((p) => p.ipipMode ?? 'Never'), wide: true },
    { header: 'VXLANMODE', cell: s((p) => p.vxlanMode ?? 'Never'), wide: true },
    { header: 'DISABLED', cell: s((p) => p.disabled ?? false), wide: true },
    { header: 'DISABLEBGPEXPORT', cell: s((p) => p.disableBGPExport ?? false), wide: true },
    { header: 'SELECTOR', cell: s((p) => p.nodeSelector ?? 'all()') },
  ],
  Node: [
    name,
    { header: 'ASN', cell: s((n) => n.bgp?.asNumber ?? (n.bgp ? '(64512)' : '')), wide: true },
    { header: 'IPV4', cell: s((n) => n.bgp?.ipv4Address), wide: true },
    { header: 'IPV6', cell: s((n) => n.bgp?.ipv6Address), wide: true },
  ],
  BGPPeer: [
    name,
    { header: 'PEERIP', cell: s((p) => p.peerIP ?? (p.peerSelector ? `(selector) ${p.peerSelector}` : '')) },
    { header: 'NODE', cell: s((p) => p.node ?? p.nodeSelector ?? '(global)') },
    { header: 'ASN', cell: s((p) => p.asNumber ?? '') },
  ],
  BGPConfiguration: [
    name,
    { header: 'LOGSEVERITY', cell: s((c) => c.logSeverityScreen ?? 'Info') },
    { header: 'MESHENABLED', cell: s((c) => c.nodeToNodeMeshEnabled ?? true) },
    { header: 'ASNUMBER', cell: s((c) => c.asNumber ?? '') },
  ],
  WorkloadEndpoint: [
    { header: 'WORKLOAD', cell: s((w, r) => w.pod ?? w.workload ?? r.metadata.name) },
    { header: 'NODE', cell: s((w) => w.node) },
    { header: 'NETWORKS', cell: s((w) => list(w.ipNetworks)) },
    { header: 'INTERFACE', cell: s((w) => w.interfaceName) },
    { header: 'PROFILES', cell: s((w) => list(w.profiles)), wide: true },
    { header: 'NATS', cell: s((w) => list((w.ipNATs ?? []).map((n: any) => `${n.internalIP}->${n.externalIP}`))), wide: true },
  ],
  HostEndpoint: [
    name,
    { header: 'NODE', cell: s((h) => h.node) },
    { header: 'INTERFACE', cell: s((h) => h.interfaceName), wide: true },
    { header: 'IPS', cell: s((h) => list(h.expectedIPs)), wide: true },
    { header: 'PROFILES', cell: s((h) => list(h.profiles)), wide: true },
  ],
  NetworkPolicy: [
    name,
    { header: 'ORDER', cell: s((p) => p.order ?? ''), wide: true },
    { header: 'SELECTOR', cell: s((p) => p.selector ?? 'all()'), wide: true },
  ],
  GlobalNetworkPolicy: [
    name,
    { header: 'ORDER', cell: s((p) => p.order ?? ''), wide: true },
    { header: 'SELECTOR', cell: s((p) => p.selector ?? 'all()'), wide: true },
  ],
  NetworkSet: [name, { header: 'NETS', cell: s((n) => list(n.nets)) }],
  GlobalNetworkSet: [name, { header: 'NETS', cell: s((n) => list(n.nets)) }],
  Profile: [name, { header: 'LABELS', cell: s((p) => list(Object.entries(p.labelsToApply ?? {}).map(([k, v]) => `${k}=${v}`))), wide: true }],
  FelixConfiguration: [name],
  BlockAffinity: [
    name,
    { header: 'NODE', cell: s((a) => a.node) },
    { header: 'CIDR', cell: s((a) => a.cidr) },
    { header: 'STATE', cell: s((a) => a.state ?? '') },
  ],
  IPAMBlock: [
    name,
    { header: 'CIDR', cell: s((b) => b.cidr) },
    { header: 'AFFINITY', cell: s((b) => b.affinity ?? '') },
    { header: 'ALLOCATED', cell: s((b) => (Array.isArray(b.allocations) ? b.allocations.filter((a: unknown) => a !== null).length : '')) },
  ],
  IPAMHandle: [name, { header: 'BLOCKS', cell: s((h) => list(Object.keys(h.block ?? {}))) }],
  KubernetesNetworkPolicy: [
    name,
    { header: 'POD-SELECTOR', cell: s((p) => list(Object.entries(p.podSelector?.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`)) || '<none>') },
  ],
  Namespace: [name],
  Pod: [
    name,
    { header: 'NODE', cell: s((p) => p.nodeName ?? '<none>') },
    { header: 'IP', cell: (r) => r.status?.podIP ?? '<none>' },
  ],
  Service: [
    name,
    { header: 'TYPE', cell: s((p) => p.type ?? 'ClusterIP') },
    { header: 'CLUSTER-IP', cell: s((p) => p.clusterIP ?? '<none>') },
    { header: 'EXTERNAL-IP', cell: s((p) => list(p.externalIPs) || '<none>') },
  ],
  ServiceAccount: [name],
  KubernetesNode: [name, { header: 'POD-CIDRS', cell: s((n) => list(n.podCIDRs ?? n.podCIDR) || '<none>') }],
  EndpointSlice: [name, { header: 'SERVICE', cell: (r) => r.metadata.labels?.['kubernetes.io/service-name'] ?? '' }],
};

/** Aligned columns, calicoctl/kubectl style. */
export function formatTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i])))
      .join('   ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

export function resourceTable(kind: KindId, items: Resource[], opts: { wide?: boolean; namespaceColumn?: boolean }): string {
  let cols = (COLUMNS[kind] ?? [name]).filter((c) => opts.wide || !c.wide);
  if (opts.namespaceColumn) cols = [{ header: 'NAMESPACE', cell: (r) => r.metadata.namespace ?? '' }, ...cols];
  const rows = items.map((r) =>
    cols.map((c) => {
      const v = c.cell(r);
      return v === undefined || v === null ? '' : String(v);
    }),
  );
  return formatTable(
    cols.map((c) => c.header),
    rows,
  );
}

/** calicoctl-style boxed table (used by `node status`). */
export function boxTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const sep = `+${widths.map((w) => '-'.repeat(w + 2)).join('+')}+`;
  const center = (t: string, w: number) => {
    const left = Math.floor((w - t.length) / 2);
    return ' '.repeat(left) + t + ' '.repeat(w - t.length - left);
  };
  const head = `|${headers.map((h, i) => ` ${center(h, widths[i])} `).join('|')}|`;
  const body = rows.map((r) => `|${r.map((c, i) => ` ${c.padEnd(widths[i])} `).join('|')}|`);
  return [sep, head, sep, ...body, sep].join('\n') + '\n';
}

const SECRET_KEYS = new Set(['password', 'nodemeshpassword', 'secretkeyref', 'token', 'secret', 'privatekey']);

/** Secrets (BGP passwords, secretKeyRef values) as `<redacted>`, structure kept. */
export function redactSecrets<T>(v: T, under = false): T {
  if (Array.isArray(v)) return v.map((x) => redactSecrets(x, under)) as T;
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) out[k] = redactSecrets(x, under || SECRET_KEYS.has(k.toLowerCase()));
    return out as T;
  }
  if (under && v !== null && v !== undefined) return '<redacted>' as T;
  return v;
}
