// The Kubernetes datastore backend (CONTRACT §3): Calico CRDs + native kinds via list+watch.
import type { DatastoreOptions } from '../types.js';
import { KubernetesDatastore } from './datastore.js';

export { KubernetesDatastore, API_TYPES, CALICO_CRD_API, CALICO_CRD_GROUP, collectionPath, type ApiType, type KubernetesDatastoreOptions } from './datastore.js';
export { KubeClient, ApiError, TransportError, loadKubeConfig } from './client.js';

export function createKubernetesDatastore(opts: DatastoreOptions): KubernetesDatastore {
  return new KubernetesDatastore({ kubeconfig: opts.kubeconfig, nodename: opts.nodename });
}
