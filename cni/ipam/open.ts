// Opens the IPAM store of a datastore (CONTRACT §1 options) for `petrel ctl` and the agent.
import type { DatastoreOptions } from '../../datastore/types.js';
import type { IpamStore } from './store.js';

export async function openIpamStore(opts: DatastoreOptions): Promise<IpamStore> {
  switch (opts.type) {
    case 'etcdv3': {
      const { EtcdJson } = await import('../etcd.js');
      const { EtcdIpamStore } = await import('./etcd.js');
      return new EtcdIpamStore(new EtcdJson({ endpoints: opts.etcdEndpoints, caFile: opts.etcdCaCertFile, certFile: opts.etcdCertFile, keyFile: opts.etcdKeyFile }));
    }
    case 'kubernetes': {
      const { K8sClient } = await import('../k8s.js');
      const { K8sIpamStore } = await import('./k8s.js');
      return new K8sIpamStore(await K8sClient.fromKubeconfig(opts.kubeconfig));
    }
    case 'file': {
      const { FileIpamStore } = await import('./file.js');
      return new FileIpamStore(opts.path);
    }
  }
}
