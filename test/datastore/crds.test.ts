// deploy/crds holds a CRD for every Calico kind the Kubernetes backend reads, each matching it
// (group, version, plural, kind, scope), and nothing the backend does not know.
import { describe, expect, it } from 'vitest';
import { API_TYPES } from '../../datastore/kubernetes/index.js';
import { loadCrdManifests } from '../k8s-apiserver/index.js';

/** CRDs shipped for the CNI plugin / IPAM (not watched by the agent). */
const EXTRA = new Set(['ipamconfigs', 'clusterinformations']);

describe('deploy/crds', () => {
  it('matches the kinds the Kubernetes backend reads', () => {
    const crds = loadCrdManifests();
    const byPlural = new Map(crds.map((c) => [c.spec.names.plural, c]));
    for (const t of API_TYPES.filter((x) => x.crd)) {
      const c = byPlural.get(t.plural);
      expect(c, `CRD for ${t.kind.kind}`).toBeDefined();
      expect(c.metadata.name).toBe(`${t.plural}.${t.group}`);
      expect(c.spec.group).toBe(t.group);
      expect(c.spec.names.kind).toBe(t.kind.kind);
      expect(c.spec.scope).toBe(t.kind.namespaced ? 'Namespaced' : 'Cluster');
      const v = c.spec.versions.find((x: any) => x.name === t.version);
      expect(v?.served && v?.storage).toBe(true);
      expect(v.schema.openAPIV3Schema.properties.spec['x-kubernetes-preserve-unknown-fields']).toBe(true);
    }
    const read = new Set(API_TYPES.filter((x) => x.crd).map((x) => x.plural));
    for (const c of crds) expect(read.has(c.spec.names.plural) || EXTRA.has(c.spec.names.plural), `unexpected CRD ${c.metadata.name}`).toBe(true);
  });
});
