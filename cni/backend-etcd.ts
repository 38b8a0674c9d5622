// etcd backend of the plugin: IPAM in /calico/ipam/v2/, the WorkloadEndpoint at
// /calico/resources/v3/projectcalico.org/workloadendpoints/<namespace>/<name> (CONTRACT §3).
// Pod metadata comes from the Kubernetes API when a kubeconfig is configured (as Calico's does).
import { type CniBackend, type EndpointInfo, type PodInfo, workloadEndpointResource } from './backend.js';
import type { NetConf } from './config.js';
import { EtcdJson } from './etcd.js';
import { EtcdIpamStore, RESOURCE_PREFIX } from './ipam/etcd.js';

export const wepKey = (ns: string, name: string) => `${RESOURCE_PREFIX}workloadendpoints/${ns}/${name}`;

export function openEtcdBackend(conf: NetConf): CniBackend {
  const etcd = new EtcdJson({ endpoints: conf.etcdEndpoints, caFile: conf.etcdCaCertFile, certFile: conf.etcdCertFile, keyFile: conf.etcdKeyFile });
  const store = new EtcdIpamStore(etcd);
  return {
    store,
    async podInfo(ns: string, pod: string): Promise<PodInfo | undefined> {
      if (!conf.kubeconfig) return undefined;
      const { K8sClient } = await import('./k8s.js');
      const c = await K8sClient.fromKubeconfig(conf.kubeconfig);
      try {
        return await c.podInfo(ns, pod);
      } finally {
        c.close();
      }
    },
    async writeEndpoint(ep: EndpointInfo) {
      await etcd.put(wepKey(ep.namespace, ep.name), JSON.stringify(workloadEndpointResource(ep)));
    },
    async removeEndpoint(ns: string, name: string, _pod: string | undefined, containerId: string) {
      for (let i = 0; i < 6; i++) {
        const kv = await etcd.get(wepKey(ns, name));
        if (!kv) return;
        let owner: string | undefined;
        try {
          owner = JSON.parse(kv.value).spec?.containerID;
        } catch {
          owner = undefined;
        }
        if (owner && owner !== containerId) return;
        if (await etcd.delete(kv.key, kv.modRevision)) return;
      }
    },
    async close() {
      etcd.close();
    },
  };
}
