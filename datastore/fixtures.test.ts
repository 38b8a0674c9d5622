// Every sample manifest under test/fixtures/calico/ (written from Calico's and Kubernetes'
// documented field lists) validates unchanged: no errors, every field kept as written.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { KINDS, kindOf, validateManifests } from './index.js';
import { parseManifests } from './manifest.js';

const DIR = join(import.meta.dirname, '..', 'test', 'fixtures', 'calico');
const files = readdirSync(DIR).filter((f) => /\.(ya?ml|json)$/.test(f)).sort();

/** Fields Petrel accepts but does not implement: the only warnings a fixture may produce. */
const EXPECTED_WARNINGS: Record<string, string[]> = {
  'felixconfiguration.yaml': ['spec.routeTableRange'],
};

/** Values validation normalises (asdot AS numbers, protocol spelling). */
const NORMALISED: Record<string, (raw: any) => void> = {
  'bgppeer-node.yaml': (raw) => (raw.spec.asNumber = 65546),
  'felixconfiguration.yaml': (raw) => {
    for (const p of [...raw.spec.failsafeInboundHostPorts, ...raw.spec.failsafeOutboundHostPorts]) p.protocol = p.protocol.toUpperCase();
  },
};

describe('Calico sample manifests', () => {
  for (const f of files) {
    it(`${f} validates unchanged`, () => {
      const text = readFileSync(join(DIR, f), 'utf8');
      const docs = validateManifests(text, f);
      const raws = parseManifests(text, f);
      expect(docs.length).toBeGreaterThan(0);
      docs.forEach((d, i) => {
        const raw = structuredClone(raws[i].raw) as any;
        NORMALISED[f]?.(raw);
        expect(d.resource).toMatchObject(raw);
        expect(d.warnings.map((w) => w.path)).toEqual(EXPECTED_WARNINGS[f] ?? []);
      });
    });
  }

  it('cover every Calico kind Petrel reads, plus a Kubernetes NetworkPolicy', () => {
    const seen = new Set<string>();
    for (const f of files) {
      for (const d of parseManifests(readFileSync(join(DIR, f), 'utf8'), f)) {
        const r = d.raw as any;
        seen.add(kindOf(r.apiVersion, r.kind)!.id);
      }
    }
    const want = KINDS.filter((k) => k.apiVersion === 'projectcalico.org/v3').map((k) => k.id);
    for (const k of [...want, 'KubernetesNetworkPolicy']) expect(seen, k).toContain(k);
  });
});
