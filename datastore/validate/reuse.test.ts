// validateResource(raw, source, { reuseInput: true }) (the etcd backend's mode: raw is freshly
// parsed and normalised in place) reports exactly what the copying mode reports and yields the
// same resource: every sample manifest, the benchmark's resources, and seeded mutations of them
// (fields removed, nulled, retyped, renamed) compared between the two modes.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../types.js';
import { validateResource } from '../validate.js';
import { parseManifests } from '../manifest.js';

const DIR = join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'calico');
const docs: unknown[] = [];
for (const f of readdirSync(DIR).filter((x) => /\.(ya?ml|json)$/.test(x)).sort()) {
  for (const d of parseManifests(readFileSync(join(DIR, f), 'utf8'), f)) docs.push(JSON.parse(JSON.stringify(d.raw)));
}
docs.push({
  kind: 'WorkloadEndpoint',
  apiVersion: 'projectcalico.org/v3',
  metadata: { name: 'node--1-k8s-app--1-eth0', namespace: 'ns-1', uid: 'u', creationTimestamp: '2026-11-20T10:00:00Z', labels: { app: 'app-1', 'projectcalico.org/namespace': 'ns-1' } },
  spec: { orchestrator: 'k8s', node: 'node-1', containerID: 'c0001', pod: 'app-1', endpoint: 'eth0', ipNetworks: ['10.64.0.1/32'], profiles: ['kns.ns-1'], interfaceName: 'cali0001', mac: 'ee:ee:ee:ee:ee:ee' },
});
docs.push({ kind: 'Node', apiVersion: 'projectcalico.org/v3', metadata: { name: 'node-1', labels: { 'kubernetes.io/os': 'linux' } }, spec: { bgp: { ipv4Address: '10.0.1.1/16' }, orchRefs: [{ nodeName: 'node-1', orchestrator: 'k8s' }] }, status: {} });

function outcome(raw: unknown, reuse: boolean): unknown {
  try {
    const { resource, warnings } = validateResource(raw, { file: 'x' }, { reuseInput: reuse });
    return { resource: JSON.parse(JSON.stringify(resource)), warnings };
  } catch (e) {
    if (e instanceof ValidationError) return { error: e.message };
    throw e;
  }
}

const REPLACEMENTS: unknown[] = [null, 5, -1, 'x', '', 'TCP', '10.0.0.1', '10.0.0.0/8', 'fd00::/64', true, [], {}, [null], ['x'], [{}], { a: 'b' }, { 'bad key!': 1 }, 1.5];

describe('validation in place (reuseInput)', () => {
  it('matches the copying mode on samples and seeded mutations', () => {
    let seed = 1;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    let compared = 0;
    for (const doc of docs) {
      expect(outcome(structuredClone(doc), true)).toEqual(outcome(structuredClone(doc), false));
      for (let m = 0; m < 150; m++) {
        const mutant = structuredClone(doc) as any;
        // walk to a random container and change one of its entries
        let node = mutant;
        for (let depth = 0; depth < 1 + rnd(4); depth++) {
          const keys = Object.keys(node);
          if (!keys.length) break;
          const k = keys[rnd(keys.length)]!;
          if (typeof node[k] !== 'object' || node[k] === null || rnd(3) === 0) {
            const op = rnd(4);
            if (op === 0) delete node[k];
            else if (op === 1 && !Array.isArray(node)) {
              node[`${k}x`] = node[k];
              delete node[k];
            } else node[k] = structuredClone(REPLACEMENTS[rnd(REPLACEMENTS.length)]);
            break;
          }
          node = node[k];
        }
        expect(outcome(structuredClone(mutant), true)).toEqual(outcome(structuredClone(mutant), false));
        compared++;
      }
    }
    expect(compared).toBeGreaterThan(2000);
  });
});
