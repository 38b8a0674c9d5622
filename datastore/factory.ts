// Chooses the backend from DatastoreOptions (CONTRACT §1) and wraps its stream so that Pods of
// this node become WorkloadEndpoints in every backend (CONTRACT §3). The etcd and Kubernetes
// backends are imported only when chosen, so `petrel ctl` on the file datastore starts lean.

import { FileDatastore } from './file/datastore.js';
import type { Datastore, DatastoreOptions, EventHandler } from './types.js';

/**
 * DatastoreOptions from parsed CLI argv (CONTRACT §1 common options, camelCase keys), with
 * the environment and the defaults filling what argv lacks.
 */
export function datastoreOptionsFrom(argv: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): DatastoreOptions {
  const str = (v: unknown) => (v === undefined || v === null || v === '' ? undefined : String(v));
  return {
    type: (str(argv.datastoreType) ?? env.DATASTORE_TYPE ?? 'file') as DatastoreOptions['type'],
    path: str(argv.datastorePath) ?? env.DATASTORE_PATH ?? './examples/quickstart',
    etcdEndpoints: (str(argv.etcdEndpoints) ?? env.ETCD_ENDPOINTS ?? 'http://127.0.0.1:2379')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    etcdCaCertFile: str(argv.etcdCaCertFile) ?? str(env.ETCD_CA_CERT_FILE),
    etcdCertFile: str(argv.etcdCertFile) ?? str(env.ETCD_CERT_FILE),
    etcdKeyFile: str(argv.etcdKeyFile) ?? str(env.ETCD_KEY_FILE),
    kubeconfig: str(argv.kubeconfig) ?? str(env.KUBECONFIG),
    nodename: str(argv.nodename) ?? str(env.NODENAME) ?? 'localhost',
  };
}

/** Wraps `watch` so every handler sees the derived stream (Pod → WorkloadEndpoint, ...). */
export async function withDerivedResources<D extends Datastore>(ds: D): Promise<D> {
  const { deriveResources } = await import('./derive.js');
  const watch = ds.watch.bind(ds);
  return Object.assign(ds, {
    watch: (handler: EventHandler) => watch(deriveResources(handler)),
  });
}

/** The raw backend (no derived resources): `petrel ctl` reads and writes what is stored. */
export async function createBackend(opts: DatastoreOptions): Promise<Datastore> {
  switch (opts.type) {
    case 'file':
      return new FileDatastore({ path: opts.path });
    case 'etcdv3': {
      const { createEtcdDatastore } = await import('./etcd/index.js');
      return createEtcdDatastore(opts);
    }
    case 'kubernetes': {
      const { createKubernetesDatastore } = await import('./kubernetes/index.js');
      return createKubernetesDatastore(opts);
    }
    default:
      throw new Error(`unknown datastore type ${String((opts as { type?: unknown }).type)} (expected file, etcdv3 or kubernetes)`);
  }
}

/** The datastore the agent uses: the backend with Pods of every backend derived into WorkloadEndpoints. */
export async function createDatastore(opts: DatastoreOptions): Promise<Datastore> {
  return await withDerivedResources(await createBackend(opts));
}
