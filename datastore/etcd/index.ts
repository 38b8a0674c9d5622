// The etcdv3 datastore backend (CONTRACT §3): Calico's key layout, watch with outage-safe resync.
import type { DatastoreOptions } from '../types.js';
import { EtcdDatastore } from './datastore.js';

export { EtcdDatastore, type EtcdDatastoreOptions, type NodeStatusRecord } from './datastore.js';
export * from './keys.js';

export function createEtcdDatastore(opts: DatastoreOptions): EtcdDatastore {
  return new EtcdDatastore({
    endpoints: opts.etcdEndpoints,
    caFile: opts.etcdCaCertFile,
    certFile: opts.etcdCertFile,
    keyFile: opts.etcdKeyFile,
  });
}
