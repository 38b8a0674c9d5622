// Kubernetes kinds. NetworkPolicy is validated fully (Petrel enforces it); for Pods, Services,
// Nodes and the rest only the fields Petrel reads are checked, and everything else passes
// through untouched (their schemas are huge and not ours to police).
import { cidrContains } from '../net.js';
import type { KindId } from '../types.js';
import type { KindSchema } from './calico.js';
import { type Check, any, at, bool, int, join, list, map, obj, oneOf, required, str, string, refine } from './schema.js';
import { checkCidr, ip, labelKeyProblem, labelValue, name, net } from './values.js';

/** IANA service name (a named container/service port): 1-15 chars, a letter, no "--". */
export const IANA_SVC_NAME = /^(?=.*[a-z])(?!.*--)[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$/;

const ianaName = str({ pattern: IANA_SVC_NAME, patternText: 'a port name is 1-15 lower-case alphanumerics or "-", with a letter and no "--"' });

const labelSelector = obj({
  matchLabels: map(labelValue, labelKeyProblem),
  matchExpressions: list(
    refine(
      obj({
        key: required(str({ nonEmpty: true })),
        operator: required(oneOf(['In', 'NotIn', 'Exists', 'DoesNotExist'])),
        values: list(string),
      }),
      (e, path, ctx) => {
        const bad = labelKeyProblem(e.key);
        if (bad) ctx.error(join(path, 'key'), bad);
        const n = e.values?.length ?? 0;
        if ((e.operator === 'In' || e.operator === 'NotIn') && n === 0) ctx.error(join(path, 'values'), `must be non-empty when operator is ${e.operator}`);
        if ((e.operator === 'Exists' || e.operator === 'DoesNotExist') && n > 0) ctx.error(join(path, 'values'), `must be empty when operator is ${e.operator}`);
      },
    ),
  ),
});

const portNumberOrName: Check = (value, path, ctx) => {
  if (typeof value === 'number') return int(1, 65535)(value, path, ctx);
  if (typeof value === 'string' && /^\d+$/.test(value)) {
    ctx.error(path, `${JSON.stringify(value)}: numeric ports must be numbers, not strings`);
    return value;
  }
  return ianaName(value, path, ctx);
};

const npPort = refine(
  obj({ protocol: oneOf(['TCP', 'UDP', 'SCTP']), port: portNumberOrName, endPort: int(1, 65535) }),
  (p, path, ctx) => {
    p.protocol ??= 'TCP';
    if (p.endPort !== undefined) {
      if (p.port === undefined) ctx.error(join(path, 'endPort'), 'may not be specified without port');
      else if (typeof p.port !== 'number') ctx.error(join(path, 'endPort'), 'may not be specified when port is a named port');
      else if (p.endPort < p.port) ctx.error(join(path, 'endPort'), `endPort ${p.endPort} must be greater than or equal to port ${p.port}`);
    }
  },
);

const ipBlock = refine(obj({ cidr: required(string), except: list(string) }), (b, path, ctx) => {
  const outer = checkCidr(b.cidr, join(path, 'cidr'), ctx);
  (b.except ?? []).forEach((e: unknown, i: number) => {
    const inner = checkCidr(e, at(join(path, 'except'), i), ctx);
    if (outer && inner && !(cidrContains(outer, inner) && inner.prefix > outer.prefix)) {
      ctx.error(at(join(path, 'except'), i), `${JSON.stringify(e)} must be a strict subset of cidr ${JSON.stringify(b.cidr)}`);
    }
  });
});

const peer = refine(obj({ podSelector: labelSelector, namespaceSelector: labelSelector, ipBlock }), (p, path, ctx) => {
  if (p.ipBlock && (p.podSelector || p.namespaceSelector)) ctx.error(join(path, 'ipBlock'), 'may not be combined with podSelector or namespaceSelector');
  else if (!p.ipBlock && !p.podSelector && !p.namespaceSelector) ctx.error(path, 'must specify one of podSelector, namespaceSelector or ipBlock');
});

const networkPolicySpec = obj({
  podSelector: required(labelSelector),
  policyTypes: refine(list(oneOf(['Ingress', 'Egress'])), (v: string[], path, ctx) => {
    v.forEach((t, i) => {
      if (v.indexOf(t) !== i) ctx.error(at(path, i), `duplicate policy type "${t}"`);
    });
  }),
  ingress: list(obj({ from: list(peer), ports: list(npPort) })),
  egress: list(obj({ to: list(peer), ports: list(npPort) })),
});

function finalizeNetworkPolicy(r: { spec: Record<string, any> }): void {
  const s = r.spec;
  // Kubernetes' defaulting: Ingress always, Egress when there are egress rules.
  if (!s.policyTypes?.length) s.policyTypes = s.egress?.length ? ['Ingress', 'Egress'] : ['Ingress'];
}

// ---------------------------------------------------------------------------------------
// Pass-through kinds: check only what Petrel reads.

const open = { open: true };

const containerPorts = list(
  obj(
    {
      name: ianaName,
      containerPort: required(int(1, 65535)),
      hostPort: int(0, 65535),
      hostIP: ip(),
      protocol: oneOf(['TCP', 'UDP', 'SCTP']),
    },
    open,
  ),
);

const container = obj({ name: string, ports: containerPorts }, open);

const podSpec = obj(
  {
    nodeName: name(),
    serviceAccountName: name(),
    serviceAccount: string,
    hostNetwork: bool,
    containers: list(container),
    initContainers: list(container),
  },
  open,
);

const podStatus = obj(
  {
    phase: string,
    podIP: ip(),
    podIPs: list(obj({ ip: required(ip()) }, open)),
  },
  open,
);

const ipOrNone: Check = (v, path, ctx) => (v === 'None' || v === '' ? v : ip()(v, path, ctx));

const serviceSpec = obj(
  {
    type: oneOf(['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName']),
    clusterIP: ipOrNone,
    clusterIPs: list(ipOrNone),
    externalIPs: list(ip()),
    loadBalancerIP: ipOrNone,
    externalTrafficPolicy: oneOf(['Cluster', 'Local']),
    internalTrafficPolicy: oneOf(['Cluster', 'Local']),
    selector: map(labelValue),
    ports: list(obj({ name: string, protocol: oneOf(['TCP', 'UDP', 'SCTP']), port: required(int(1, 65535)), nodePort: int(0, 65535) }, open)),
  },
  open,
);

const k8sNodeSpec = obj({ podCIDR: net, podCIDRs: list(net) }, open);

const k8sNodeStatus = obj({ addresses: list(obj({ type: required(string), address: required(string) }, open)) }, open);

const sliceEndpoints = list(obj({ addresses: required(list(string)), nodeName: string }, open));

export const K8S_SCHEMAS: Partial<Record<KindId, KindSchema & { topLevel?: Record<string, Check>; nameKind?: 'subdomain' | 'label' | 'dns1035' }>> = {
  KubernetesNetworkPolicy: { spec: networkPolicySpec, status: any, finalize: finalizeNetworkPolicy },
  Namespace: { spec: any, status: any, nameKind: 'label' },
  Pod: { spec: podSpec, status: podStatus },
  Service: { spec: serviceSpec, status: any, nameKind: 'dns1035' },
  ServiceAccount: { topLevel: { secrets: any, imagePullSecrets: any, automountServiceAccountToken: bool } },
  KubernetesNode: { spec: k8sNodeSpec, status: k8sNodeStatus },
  EndpointSlice: {
    topLevel: { addressType: oneOf(['IPv4', 'IPv6', 'FQDN']), endpoints: sliceEndpoints, ports: any },
  },
};

/** Used by validate.ts: K8s kinds keep unknown top-level fields (except NetworkPolicy). */
export function isStrictK8s(kind: KindId): boolean {
  return kind === 'KubernetesNetworkPolicy';
}
