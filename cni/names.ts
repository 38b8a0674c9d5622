// Names Calico derives and Petrel must derive identically (CONTRACT §4, calico.md §3):
// the host-side veth and the WorkloadEndpoint name.
import { createHash } from 'node:crypto';

/**
 * Host-side veth: prefix + the first 11 hex chars of sha1("<namespace>.<pod>") in Kubernetes,
 * prefix + the first 11 chars of the container ID otherwise. Same as datastore/derive.ts's
 * interfaceNameForPod (kept here so the plugin's start-up loads nothing else; a test checks both agree).
 */
export function hostVethName(prefix: string, podNamespace: string | undefined, podName: string | undefined, containerId: string): string {
  if (podNamespace && podName) {
    return (prefix + createHash('sha1').update(`${podNamespace}.${podName}`).digest('hex')).slice(0, prefix.length + 11).slice(0, 15);
  }
  return (prefix + containerId.slice(0, 11)).slice(0, 15);
}

const esc = (s: string) => s.replace(/-/g, '--');

/** Calico's WorkloadEndpoint name: `<node>-k8s-<pod>-<iface>` (or `-cni-<containerID>-`), `-` doubled in each part. */
export function workloadEndpointName(node: string, orchestrator: 'k8s' | 'cni', workload: string, endpoint: string): string {
  return `${esc(node)}-${orchestrator}-${esc(workload)}-${esc(endpoint)}`;
}

/** calico-ipam's handle: `<network name>.<container ID>` (`k8s-pod-network.<id>` with the usual conflist). */
export function handleIdFor(network: string, containerId: string): string {
  return `${network}.${containerId}`.split('\r')[0];
}
