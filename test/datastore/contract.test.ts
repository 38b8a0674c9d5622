// One contract, three backends: the same sequence of writes through the Datastore interface
// (with the factory's derived resources: Pod → WorkloadEndpoint, Namespace → Profile) gives the
// same event stream after in-sync and the same final state, on the file datastore, a real etcd
// and the Kubernetes API (test server).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatastore } from '../../datastore/factory.js';
import { ConflictError, type Datastore, type DatastoreEvent, type DatastoreOptions, type KindId, type Resource } from '../../datastore/types.js';
import { startEtcd, type EtcdHandle } from '../etcd.js';
import { startTestApiServer, type TestApiServer } from '../k8s-apiserver/index.js';
import { Recorder, normalise } from './helpers.js';

const NODE = 'node-1';
let etcd: EtcdHandle;
let api: TestApiServer;
let dir: string;

beforeAll(async () => {
  [etcd, api] = await Promise.all([startEtcd(), startTestApiServer()]);
  dir = mkdtempSync(join(tmpdir(), 'petrel-contract-'));
});
afterAll(async () => {
  await Promise.all([etcd?.stop(), api?.stop()]);
  rmSync(dir, { recursive: true, force: true });
});

const nsObj = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'ct-ns', labels: { team: 'a' } } };
const podObj = (labels: Record<string, string>) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'ct-pod', namespace: 'ct-ns', labels, annotations: { 'cni.projectcalico.org/podIP': '10.10.0.5/32' } },
  spec: { nodeName: NODE, serviceAccountName: 'default', containers: [{ name: 'web', image: 'nginx', ports: [{ name: 'http', containerPort: 80 }] }] },
});
const poolObj = { apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: 'ct-pool' }, spec: { cidr: '10.10.0.0/16' } };
const npObj = { apiVersion: 'projectcalico.org/v3', kind: 'NetworkPolicy', metadata: { name: 'ct-allow', namespace: 'ct-ns' }, spec: { selector: "app == 'web'", ingress: [{ action: 'Allow' }] } };
const gnpObj = { apiVersion: 'projectcalico.org/v3', kind: 'GlobalNetworkPolicy', metadata: { name: 'ct-gnp' }, spec: { selector: 'all()', types: ['Ingress'], ingress: [{ action: 'Deny' }] } };

/** Events of the test's own resources, normalised (server-set fields and batching removed). */
function streamOf(evs: DatastoreEvent[]): string[] {
  return evs
    .filter((e): e is Extract<DatastoreEvent, { type: 'update' | 'delete' }> => (e.type === 'update' || e.type === 'delete') && e.key.includes('ct-'))
    .map((e) => (e.type === 'delete' ? `delete ${e.key}` : `update ${e.key} ${JSON.stringify(canon(e.resource))}`));
}
function canon(r: Resource): Resource {
  const c = normalise(r);
  if (c.kind === 'Namespace') delete c.status; // the API server sets status.phase
  return c;
}

interface Run {
  stream: string[];
  final: Record<string, string[]>;
  conflicts: string[];
}

async function runContract(opts: DatastoreOptions): Promise<Run> {
  const ds: Datastore = await createDatastore(opts);
  const rec = new Recorder();
  const conflicts: string[] = [];
  try {
    await ds.watch(rec.handler);
    await rec.waitFor((r) => r.inSyncCount() >= 1, `${opts.type} in-sync`);
    const start = rec.events.length;
    const step = async (what: string, write: () => Promise<unknown>, done: (r: Recorder) => boolean) => {
      await write();
      await rec.waitFor(done, `${opts.type}: ${what}`);
      await new Promise((r) => setTimeout(r, 150)); // stray events would show up as differences
    };
    const wep = 'WorkloadEndpoint/ct-ns/node--1-k8s-ct--pod-eth0';
    await step('namespace', () => ds.create(nsObj), (r) => r.view.has('Profile/kns.ct-ns'));
    await step('pool', () => ds.create(poolObj), (r) => r.view.has('IPPool/ct-pool'));
    await step('pod', () => ds.create(podObj({ app: 'web' })), (r) => r.view.has(wep));
    await step('policy', () => ds.create(npObj), (r) => r.view.has('NetworkPolicy/ct-ns/ct-allow'));
    const pool = (await ds.get('IPPool', 'ct-pool'))!;
    await step('replace pool', () => ds.replace({ ...pool, spec: { ...pool.spec, natOutgoing: true } }), (r) => r.view.get('IPPool/ct-pool')?.spec?.natOutgoing === true);
    await step('relabel pod', () => ds.apply(podObj({ app: 'web2' })), (r) => r.view.get(wep)?.metadata.labels?.app === 'web2');
    for (const bad of [() => ds.create(poolObj), () => ds.replace({ ...pool, spec: { ...pool.spec, disabled: true } })]) {
      try {
        await bad();
        conflicts.push('no error');
      } catch (e) {
        conflicts.push(e instanceof ConflictError ? 'ConflictError' : `${(e as Error).name}: ${(e as Error).message}`);
      }
    }
    await step('delete policy', () => ds.delete('NetworkPolicy', 'ct-allow', 'ct-ns'), (r) => !r.view.has('NetworkPolicy/ct-ns/ct-allow'));
    await step('gnp', () => ds.apply(gnpObj), (r) => r.view.has('GlobalNetworkPolicy/ct-gnp'));
    await step('delete pod', () => ds.delete('Pod', 'ct-pod', 'ct-ns'), (r) => !r.view.has(wep));
    const final: Record<string, string[]> = {};
    for (const k of ['IPPool', 'NetworkPolicy', 'GlobalNetworkPolicy', 'Namespace', 'Pod'] as KindId[]) {
      final[k] = (await ds.list(k)).filter((r) => r.metadata.name.startsWith('ct-')).map((r) => JSON.stringify(canon(r))).sort();
    }
    final.view = [...rec.view.entries()].filter(([k]) => k.includes('ct-')).map(([k, r]) => `${k} ${JSON.stringify(canon(r))}`).sort();
    return { stream: streamOf(rec.since(start)), final, conflicts };
  } finally {
    await ds.close();
  }
}

describe('datastore contract (file, etcdv3, kubernetes)', () => {
  it('the same writes give the same event stream and final state on every backend', async () => {
    const base = { path: dir, etcdEndpoints: [etcd.endpoint], kubeconfig: api.kubeconfigPath, nodename: NODE };
    const file = await runContract({ ...base, type: 'file' });
    const etcdRun = await runContract({ ...base, type: 'etcdv3' });
    const k8s = await runContract({ ...base, type: 'kubernetes' });
    expect(file.conflicts).toEqual(['ConflictError', 'ConflictError']);
    expect(file.stream.length).toBeGreaterThanOrEqual(12);
    expect(file.final.IPPool).toHaveLength(1);
    expect(file.final.Pod).toEqual([]);
    expect(etcdRun).toEqual(file);
    expect(k8s).toEqual(file);
  });
});
