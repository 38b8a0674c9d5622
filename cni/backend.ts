// What the plugin needs of a datastore, opened lazily per backend so that each CNI call loads
// only one client: the IPAM store, where the workload endpoint goes, and the pod's metadata.
import type { NetConf } from './config.js';
import type { IpamStore } from './ipam/store.js';

export interface PodInfo {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  serviceAccount?: string;
  namespaceAnnotations: Record<string, string>;
}

export interface EndpointInfo {
  node: string;
  namespace: string;
  name: string;
  pod?: string;
  containerId: string;
  ifname: string;
  hostIf: string;
  ips: string[];
  mac: string;
  pod_: PodInfo | undefined;
}

export interface CniBackend {
  store: IpamStore;
  /** the pod's labels and annotations, when the datastore knows pods */
  podInfo(namespace: string, pod: string): Promise<PodInfo | undefined>;
  writeEndpoint(ep: EndpointInfo): Promise<void>;
  /** Removes the endpoint if it still belongs to `containerId` (a DEL for an old sandbox leaves it). */
  removeEndpoint(namespace: string, name: string, pod: string | undefined, containerId: string): Promise<void>;
  close(): Promise<void>;
}

/** The v3 WorkloadEndpoint Calico's plugin writes (etcd) — also what the file datastore stores. */
export function workloadEndpointResource(ep: EndpointInfo): Record<string, any> {
  const k8s = ep.pod !== undefined;
  const sa = ep.pod_?.serviceAccount;
  const labels: Record<string, string> = {
    ...(ep.pod_?.labels ?? {}),
    'projectcalico.org/namespace': ep.namespace,
    'projectcalico.org/orchestrator': k8s ? 'k8s' : 'cni',
    ...(sa ? { 'projectcalico.org/serviceaccount': sa } : {}),
  };
  return {
    apiVersion: 'projectcalico.org/v3',
    kind: 'WorkloadEndpoint',
    metadata: { name: ep.name, namespace: ep.namespace, labels },
    spec: {
      orchestrator: k8s ? 'k8s' : 'cni',
      workload: k8s ? '' : ep.containerId,
      node: ep.node,
      ...(k8s ? { pod: ep.pod } : {}),
      containerID: ep.containerId,
      endpoint: ep.ifname,
      ...(sa ? { serviceAccountName: sa } : {}),
      ipNetworks: ep.ips.map((ip) => `${ip}/${ip.includes(':') ? 128 : 32}`),
      profiles: k8s ? [`kns.${ep.namespace}`, ...(sa ? [`ksa.${ep.namespace}.${sa}`] : [])] : [],
      interfaceName: ep.hostIf,
      mac: ep.mac,
    },
  };
}

export async function openBackend(conf: NetConf): Promise<CniBackend> {
  switch (conf.datastoreType) {
    case 'etcdv3':
      return (await import('./backend-etcd.js')).openEtcdBackend(conf);
    case 'kubernetes':
      return (await import('./backend-k8s.js')).openK8sBackend(conf);
    case 'file':
      return (await import('./backend-file.js')).openFileBackend(conf);
  }
}
