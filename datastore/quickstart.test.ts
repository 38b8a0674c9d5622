// examples/quickstart: every file validates with no errors and no warnings, and the cluster it
// describes is self-consistent (pods inside node-1's affine block, IPAM agrees with the pods,
// no BGP peer to dial, unprivileged BGP port).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { workloadEndpointFromPod } from './derive.js';
import { validateManifests, type ValidatedDoc } from './manifest.js';
import { cidrContains, formatIp, parseCidr } from './net.js';

const DIR = join(import.meta.dirname, '..', 'examples', 'quickstart');
const files = readdirSync(DIR).filter((f) => /\.(ya?ml|json)$/.test(f)).sort();
const all: ValidatedDoc[] = files.flatMap((f) => validateManifests(readFileSync(join(DIR, f), 'utf8'), f));
const ofKind = (kind: string, api?: string) => all.map((d) => d.resource).filter((r) => r.kind === kind && (!api || r.apiVersion === api));

describe('examples/quickstart', () => {
  for (const f of files) {
    it(`${f} validates with no warnings`, () => {
      const docs = validateManifests(readFileSync(join(DIR, f), 'utf8'), f);
      expect(docs.length).toBeGreaterThan(0);
      expect(docs.flatMap((d) => d.warnings)).toEqual([]);
    });
  }

  it('describes node-1 with a confirmed /26 of the 10.244.0.0/16 pool', () => {
    const [pool] = ofKind('IPPool');
    expect(pool.spec).toMatchObject({ cidr: '10.244.0.0/16', blockSize: 26 });
    expect(ofKind('Node', 'projectcalico.org/v3').map((n) => [n.metadata.name, n.spec!.bgp.ipv4Address])).toEqual([['node-1', '192.168.56.10/24']]);
    expect(ofKind('BlockAffinity').map((a) => a.spec)).toEqual([{ node: 'node-1', cidr: '10.244.0.0/26', state: 'confirmed', deleted: false }]);
  });

  it('never dials out: no BGPPeer, unprivileged listen port', () => {
    expect(ofKind('BGPPeer')).toEqual([]);
    const [bgp] = ofKind('BGPConfiguration');
    expect(bgp.metadata.name).toBe('default');
    expect(bgp.spec!.listenPort).toBe(1790);
  });

  it('every pod is a workload endpoint of node-1 inside its affine block, allocated in IPAM under its handle', () => {
    const block = parseCidr('10.244.0.0/26')!;
    const [ipamBlock] = ofKind('IPAMBlock');
    const handles = new Set(ofKind('IPAMHandle').map((h) => h.spec!.handleID));
    const pods = ofKind('Pod');
    expect(pods.length).toBeGreaterThanOrEqual(3);
    for (const pod of pods) {
      const wep = workloadEndpointFromPod(pod)!;
      expect(wep, pod.metadata.name).toBeDefined();
      expect(wep.spec!.node).toBe('node-1');
      const [net] = wep.spec!.ipNetworks as string[];
      const ip = parseCidr(net)!;
      expect(cidrContains(block, ip)).toBe(true);
      const ordinal = Number(ip.addr - block.addr);
      const attr = ipamBlock.spec!.attributes[ipamBlock.spec!.allocations[ordinal]];
      expect(attr.secondary).toMatchObject({ pod: pod.metadata.name, namespace: pod.metadata.namespace, node: 'node-1' });
      expect(attr.handle_id).toBe(`k8s-pod-network.${pod.metadata.annotations!['cni.projectcalico.org/containerID']}`);
      expect(handles.has(attr.handle_id)).toBe(true);
      expect(ipamBlock.spec!.unallocated).not.toContain(ordinal);
      expect(formatIp(4, ip.addr)).toBe((pod.status as any).podIP);
    }
    // allocations + unallocated cover the block exactly once
    const used = ipamBlock.spec!.allocations.map((a: number | null, i: number) => (a === null ? -1 : i)).filter((i: number) => i >= 0);
    expect([...used, ...ipamBlock.spec!.unallocated].sort((a, b) => a - b)).toEqual([...Array(64).keys()]);
  });

  it('has a Kubernetes NetworkPolicy and a Calico GlobalNetworkPolicy', () => {
    expect(ofKind('NetworkPolicy', 'networking.k8s.io/v1').length).toBeGreaterThan(0);
    expect(ofKind('GlobalNetworkPolicy').length).toBeGreaterThan(0);
    expect(ofKind('FelixConfiguration').map((f) => f.metadata.name)).toEqual(['default']);
  });
});
