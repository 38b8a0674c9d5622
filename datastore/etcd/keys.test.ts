import { describe, expect, it } from 'vitest';
import '../validate.js';
import { parseEtcdKey } from './keys.js';

const C = '/calico/resources/v3/projectcalico.org/';
describe('parseEtcdKey', () => {
  it('reads Calico and Kubernetes resource keys, and nothing malformed', () => {
    expect(parseEtcdKey(`${C}nodes/node-1`)).toMatchObject({ form: 'resource', name: 'node-1', kind: { id: 'Node' } });
    const wep = parseEtcdKey(`${C}workloadendpoints/ns-1/n-k8s-p-eth0`);
    expect(wep).toMatchObject({ form: 'resource', namespace: 'ns-1', name: 'n-k8s-p-eth0', kind: { id: 'WorkloadEndpoint' } });
    expect(parseEtcdKey('/petrel/k8s/namespaces/default')).toMatchObject({ form: 'resource', name: 'default' });
    for (const bad of [`${C}nodes`, `${C}nodes/`, `${C}nodes/a/b`, `${C}workloadendpoints/ns`, `${C}workloadendpoints/ns/`, `${C}workloadendpoints//n`, `${C}workloadendpoints/ns/n/x`, `${C}nosuchkinds/x`, `${C}/x`, '/other/x']) {
      expect(parseEtcdKey(bad), bad).toBeUndefined();
    }
  });
});
