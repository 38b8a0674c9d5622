import { describe, expect, it } from 'vitest';
import {
  deriveResources,
  interfaceNameForPod,
  profileFromNamespace,
  profileFromServiceAccount,
  workloadEndpointFromPod,
  workloadEndpointName,
} from './derive.js';
import { type DatastoreEvent, type Resource, keyOf, kindOf } from './types.js';
import { validateResource } from './validate.js';

function pod(over: { name?: string; ns?: string; node?: string; labels?: Record<string, string>; annotations?: Record<string, string>; spec?: Record<string, unknown>; status?: Record<string, unknown> } = {}): Resource {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: over.name ?? 'web-0', namespace: over.ns ?? 'web', labels: over.labels ?? { app: 'web' }, annotations: over.annotations, uid: 'u-1' },
    spec: { nodeName: over.node ?? 'node-1', serviceAccountName: 'web-sa', containers: [{ name: 'c', ports: [{ name: 'http', containerPort: 8080 }] }], ...over.spec },
    status: over.status ?? { phase: 'Running', podIP: '10.244.0.5', podIPs: [{ ip: '10.244.0.5' }, { ip: 'fd00:10:244::5' }] },
  };
}

describe('names', () => {
  it('host interface is the prefix + first 11 hex chars of SHA-1("<ns>.<pod>")', () => {
    // Values from `echo -n default.nginx | sha1sum`.
    expect(interfaceNameForPod('default', 'nginx')).toBe('calic440f455693');
    expect(interfaceNameForPod('web', 'web-0')).toBe('calic3928f99cbc');
    expect(interfaceNameForPod('kube-system', 'coredns-5d78c9869d-abcde')).toBe('cali4d5f75c480c');
    expect(interfaceNameForPod('web', 'web-0')).toHaveLength(15);
    expect(interfaceNameForPod('web', 'web-0', 'tap,cali')).toBe('tapc3928f99cbc');
  });

  it('workload endpoint names double the dashes inside each segment', () => {
    expect(workloadEndpointName('node-1', 'web-0')).toBe('node--1-k8s-web--0-eth0');
    expect(workloadEndpointName('n', 'p')).toBe('n-k8s-p-eth0');
    expect(workloadEndpointName('a--b', 'c')).toBe('a----b-k8s-c-eth0');
  });
});

describe('workloadEndpointFromPod', () => {
  it('maps a running pod exactly as Calico does', () => {
    const wep = workloadEndpointFromPod(pod({ annotations: { 'cni.projectcalico.org/containerID': 'abc123' } }))!;
    expect(wep).toEqual({
      apiVersion: 'projectcalico.org/v3',
      kind: 'WorkloadEndpoint',
      metadata: {
        name: 'node--1-k8s-web--0-eth0',
        namespace: 'web',
        uid: 'u-1',
        labels: {
          app: 'web',
          'projectcalico.org/namespace': 'web',
          'projectcalico.org/orchestrator': 'k8s',
          'projectcalico.org/serviceaccount': 'web-sa',
        },
      },
      spec: {
        orchestrator: 'k8s',
        node: 'node-1',
        pod: 'web-0',
        endpoint: 'eth0',
        containerID: 'abc123',
        serviceAccountName: 'web-sa',
        ipNetworks: ['10.244.0.5/32', 'fd00:10:244::5/128'],
        profiles: ['kns.web', 'ksa.web.web-sa'],
        interfaceName: 'calic3928f99cbc',
        ports: [{ name: 'http', protocol: 'TCP', port: 8080 }],
      },
    });
    // What we derive is itself a valid WorkloadEndpoint.
    expect(() => validateResource(wep, {})).not.toThrow();
  });

  it('reads IPs from status.podIPs, then status.podIP, then the Calico annotations', () => {
    const ips = (p: Resource) => workloadEndpointFromPod(p)?.spec?.ipNetworks;
    expect(ips(pod({ status: { podIP: '10.244.0.7' } }))).toEqual(['10.244.0.7/32']);
    expect(ips(pod({ status: {}, annotations: { 'cni.projectcalico.org/podIPs': '10.244.0.8/32,fd00::8/128' } }))).toEqual(['10.244.0.8/32', 'fd00::8/128']);
    expect(ips(pod({ status: {}, annotations: { 'cni.projectcalico.org/podIP': '10.244.0.9/32' } }))).toEqual(['10.244.0.9/32']);
    expect(ips(pod({ status: { podIPs: [{ ip: 'FD00:0:0::A' }] } }))).toEqual(['fd00::a/128']);
  });

  it('yields nothing for unscheduled, host-network, finished, IP-less or malformed pods', () => {
    expect(workloadEndpointFromPod(pod({ spec: { nodeName: undefined } }))).toBeUndefined();
    expect(workloadEndpointFromPod(pod({ spec: { hostNetwork: true } }))).toBeUndefined();
    expect(workloadEndpointFromPod(pod({ status: { phase: 'Succeeded', podIP: '10.244.0.5' } }))).toBeUndefined();
    expect(workloadEndpointFromPod(pod({ status: { phase: 'Failed', podIP: '10.244.0.5' } }))).toBeUndefined();
    expect(workloadEndpointFromPod(pod({ status: { phase: 'Pending' } }))).toBeUndefined();
    expect(workloadEndpointFromPod(pod({ status: { podIP: 'not-an-ip' } }))).toBeUndefined();
  });

  it('named and host ports only; UDP/SCTP kept, other protocols skipped; init containers too', () => {
    const wep = workloadEndpointFromPod(
      pod({
        spec: {
          containers: [
            {
              name: 'a',
              ports: [
                { containerPort: 80 },
                { name: 'dns', containerPort: 53, protocol: 'UDP' },
                { containerPort: 9000, hostPort: 19000, hostIP: '192.168.56.10' },
                { name: 'odd', containerPort: 1, protocol: 'ICMP' },
              ],
            },
          ],
          initContainers: [{ name: 'i', ports: [{ name: 'sctp', containerPort: 3868, protocol: 'SCTP' }] }],
        },
      }),
    )!;
    expect(wep.spec!.ports).toEqual([
      { name: 'dns', protocol: 'UDP', port: 53 },
      { name: '', protocol: 'TCP', port: 9000, hostPort: 19000, hostIP: '192.168.56.10' },
      { name: 'sctp', protocol: 'SCTP', port: 3868 },
    ]);
  });

  it('defaults the service account to "default" as the API server would', () => {
    const wep = workloadEndpointFromPod(pod({ spec: { serviceAccountName: undefined } }))!;
    expect(wep.spec!.profiles).toEqual(['kns.web', 'ksa.web.default']);
    expect(wep.metadata.labels!['projectcalico.org/serviceaccount']).toBe('default');
  });
});

describe('profiles', () => {
  it('namespace → kns.<ns> allowing all, with pcns.* labels', () => {
    const p = profileFromNamespace({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'web', labels: { team: 'a' } } });
    expect(p).toEqual({
      apiVersion: 'projectcalico.org/v3',
      kind: 'Profile',
      metadata: { name: 'kns.web' },
      spec: {
        ingress: [{ action: 'Allow' }],
        egress: [{ action: 'Allow' }],
        labelsToApply: { 'pcns.team': 'a', 'pcns.projectcalico.org/name': 'web' },
      },
    });
    expect(() => validateResource(p, {})).not.toThrow();
  });

  it('service account → ksa.<ns>.<sa> with pcsa.* labels and no rules', () => {
    const p = profileFromServiceAccount({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'web-sa', namespace: 'web', labels: { role: 'fe' } } });
    expect(p.metadata.name).toBe('ksa.web.web-sa');
    expect(p.spec).toEqual({ labelsToApply: { 'pcsa.role': 'fe', 'pcsa.projectcalico.org/name': 'web-sa' } });
  });
});

describe('deriveResources', () => {
  const upd = (r: Resource): DatastoreEvent => ({ type: 'update', key: keyOf(r), kind: kindOf(r.apiVersion, r.kind)!.id, resource: r });
  const del = (r: Resource): DatastoreEvent => ({ type: 'delete', key: keyOf(r), kind: kindOf(r.apiVersion, r.kind)!.id });
  const WEP = 'WorkloadEndpoint/web/node--1-k8s-web--0-eth0';

  function stream() {
    const batches: DatastoreEvent[][] = [];
    const h = deriveResources((evs) => batches.push(evs));
    return { h, batches, last: () => batches[batches.length - 1].map((e) => `${e.type} ${'key' in e ? e.key : ''}`.trim()) };
  }

  it('adds derived updates and deletes after each source event, in the same batch', () => {
    const s = stream();
    const ns = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'web' } };
    s.h([upd(ns), upd(pod()), { type: 'in-sync' }]);
    expect(s.last()).toEqual(['update Namespace/web', 'update Profile/kns.web', 'update Pod/web/web-0', `update ${WEP}`, 'in-sync']);

    // Same pod again (status noise): passed through, no duplicate endpoint update.
    s.h([upd(pod())]);
    expect(s.last()).toEqual(['update Pod/web/web-0']);

    // New IP: endpoint updated.
    s.h([upd(pod({ status: { podIP: '10.244.0.6' } }))]);
    expect(s.last()).toEqual(['update Pod/web/web-0', `update ${WEP}`]);
    expect((s.batches[2][1] as any).resource.spec.ipNetworks).toEqual(['10.244.0.6/32']);

    // Pod loses its IP (e.g. completed): endpoint deleted.
    s.h([upd(pod({ status: { phase: 'Succeeded', podIP: '10.244.0.6' } }))]);
    expect(s.last()).toEqual(['update Pod/web/web-0', `delete ${WEP}`]);

    // Gets it back, then the pod is deleted.
    s.h([upd(pod())]);
    s.h([del(pod())]);
    expect(s.last()).toEqual(['delete Pod/web/web-0', `delete ${WEP}`]);

    // Deleting again derives nothing; namespace deletion deletes its profile.
    s.h([del(pod()), del(ns)]);
    expect(s.last()).toEqual(['delete Pod/web/web-0', 'delete Namespace/web', 'delete Profile/kns.web']);
  });

  it('a stored WorkloadEndpoint with the same key wins over the derived one', () => {
    const s = stream();
    const stored = workloadEndpointFromPod(pod({ status: { podIP: '10.244.0.99' } }))!;
    s.h([upd(stored)]);
    s.h([upd(pod())]);
    expect(s.last()).toEqual(['update Pod/web/web-0']);
    // The stored one goes: the derived one takes its place instead of a delete.
    s.h([del(stored)]);
    expect(s.last()).toEqual([`update ${WEP}`]);
    expect((s.batches[2][0] as any).resource.spec.ipNetworks).toEqual(['10.244.0.5/32', 'fd00:10:244::5/128']);
  });

  it('passes status events and other kinds through untouched', () => {
    const s = stream();
    const pool = { apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: 'p' }, spec: { cidr: '10.0.0.0/16' } };
    s.h([{ type: 'status', state: 'connected' }, upd(pool), del(pool)]);
    expect(s.last()).toEqual(['status', 'update IPPool/p', 'delete IPPool/p']);
  });
});
