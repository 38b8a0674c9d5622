export * from './types.js';
export * from './net.js';
export * from './model.js';
export * from './validate.js';
export * from './manifest.js';
export * from './derive.js';
export * from './file.js';
export * from './factory.js';

// ---- node status (etcdv3 and kubernetes datastores; appended by the datastore-backends engineer)
import type { Datastore as _NodeStatusDatastore } from './types.js';
import type { NodeStatusRecord } from './etcd/datastore.js';
export type { NodeStatusRecord } from './etcd/datastore.js';

interface _NodeStatusCapable {
  reportNodeStatus(node: string, status: unknown): Promise<void>;
  listNodeStatuses(): Promise<NodeStatusRecord[]>;
}
function _nodeStatusOf(ds: _NodeStatusDatastore): _NodeStatusCapable {
  const c = ds as unknown as Partial<_NodeStatusCapable>;
  if (typeof c.reportNodeStatus !== 'function' || typeof c.listNodeStatuses !== 'function') {
    throw new Error(`node status of every node needs the etcdv3 or kubernetes datastore (this is ${ds.type})`);
  }
  return c as _NodeStatusCapable;
}
/** The agent publishes its status (BGP peers, readiness...) for `petrel ctl node status --all`. */
export function reportNodeStatus(ds: _NodeStatusDatastore, node: string, status: unknown): Promise<void> {
  return _nodeStatusOf(ds).reportNodeStatus(node, status);
}
/** Every node's last published status (etcd: under a lease; kubernetes: ConfigMaps in kube-system). */
export function listNodeStatuses(ds: _NodeStatusDatastore): Promise<NodeStatusRecord[]> {
  return _nodeStatusOf(ds).listNodeStatuses();
}
export function supportsNodeStatus(ds: _NodeStatusDatastore): boolean {
  return typeof (ds as unknown as Partial<_NodeStatusCapable>).listNodeStatuses === 'function';
}
