// Kubernetes backend of the plugin: IPAM in Calico's CRDs; the pod's addresses recorded as
// Calico does, by patching the pod (status subresource) with the cni.projectcalico.org/podIP,
// podIPs and containerID annotations. The pod itself is the workload endpoint (CONTRACT §3).
import type { CniBackend, EndpointInfo } from './backend.js';
import type { NetConf } from './config.js';
import { K8sClient, K8sHttpError } from './k8s.js';
import { K8sIpamStore } from './ipam/k8s.js';

const ANN = 'cni.projectcalico.org/';

export async function openK8sBackend(conf: NetConf): Promise<CniBackend> {
  const client = await K8sClient.fromKubeconfig(conf.kubeconfig);
  const store = new K8sIpamStore(client);
  const podPath = (ns: string, pod: string) => `/api/v1/namespaces/${encodeURIComponent(ns)}/pods/${encodeURIComponent(pod)}`;
  const patch = async (ns: string, pod: string, annotations: Record<string, string | null>) => {
    // As Calico: through the status subresource (kubelet-like RBAC: pods/status). An API server
    // that ignores metadata there gets the same patch on the pod itself.
    for (const sub of ['/status', '']) {
      const r = await client.request('PATCH', `${podPath(ns, pod)}${sub}`, { metadata: { annotations } }, 'application/merge-patch+json');
      if (r.status === 404) return false;
      if (r.status !== 200) throw new K8sHttpError(r.status, `patching pod ${ns}/${pod}: HTTP ${r.status}: ${r.body?.message ?? ''}`);
      const got = r.body?.metadata?.annotations ?? {};
      if (Object.entries(annotations).every(([k, v]) => (v === null ? !(k in got) : got[k] === v))) return true;
    }
    throw new K8sHttpError(500, `patching pod ${ns}/${pod}: the API server did not keep the annotations`);
  };
  return {
    store,
    podInfo: (ns, pod) => client.podInfo(ns, pod),
    async writeEndpoint(ep: EndpointInfo) {
      if (!ep.pod) return; // outside Kubernetes there is no pod to annotate
      const cidrs = ep.ips.map((ip) => `${ip}/${ip.includes(':') ? 128 : 32}`);
      const ok = await patch(ep.namespace, ep.pod, { [`${ANN}podIP`]: cidrs[0] ?? '', [`${ANN}podIPs`]: cidrs.join(','), [`${ANN}containerID`]: ep.containerId });
      if (!ok) throw new K8sHttpError(404, `pod ${ep.namespace}/${ep.pod} no longer exists`);
    },
    async removeEndpoint(ns: string, _name: string, pod: string | undefined, containerId: string) {
      if (!pod) return;
      const r = await client.request('GET', podPath(ns, pod));
      if (r.status === 404) return;
      const owner = r.body?.metadata?.annotations?.[`${ANN}containerID`];
      if (owner && owner !== containerId) return; // a DEL for an old sandbox
      await patch(ns, pod, { [`${ANN}podIP`]: '', [`${ANN}podIPs`]: '' });
    },
    async close() {
      client.close();
    },
  };
}
