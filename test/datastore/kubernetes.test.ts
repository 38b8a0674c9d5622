// The Kubernetes backend against the honest test API server (test/k8s-apiserver): Calico CRDs
// read as projectcalico.org/v3, native kinds, list+watch with bookmarks, 410 relist without
// spurious deletes, outages with backoff, half-open watches, CAS writes, missing CRDs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KubernetesDatastore } from '../../datastore/kubernetes/index.js';
import { ConflictError, NotFoundError, type DatastoreEvent } from '../../datastore/types.js';
import { startTestApiServer, type TestApiServer } from '../k8s-apiserver/index.js';
import { Recorder } from './helpers.js';

let s: TestApiServer;
const pool = (name: string, cidr: string) => ({ apiVersion: 'crd.projectcalico.org/v1', kind: 'IPPool', metadata: { name }, spec: { cidr } });
const pod = (name: string, node: string, ip: string, labels: Record<string, string> = {}) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: 'default', labels, managedFields: [{ manager: 'kubelet' }] },
  spec: { nodeName: node, containers: [{ name: 'c', image: 'busybox', env: [{ name: 'A', value: 'b' }], ports: [{ name: 'http', containerPort: 80 }] }] },
  status: { phase: 'Running', podIP: ip, podIPs: [{ ip }] },
});
const deletes = (evs: DatastoreEvent[]) => evs.filter((e) => e.type === 'delete').map((e) => (e as { key: string }).key).sort();

beforeAll(async () => {
  s = await startTestApiServer({ bookmarkIntervalMs: 300 });
  s.put(pool('pool-a', '10.65.0.0/16'));
  s.put(pod('web-1', 'node-a', '10.65.0.5', { app: 'web' }));
  s.put(pod('db-1', 'node-b', '10.65.1.7', { app: 'db' }));
  s.put({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team-a', labels: { team: 'a' } } });
});
afterAll(async () => {
  await s?.stop();
});

describe('kubernetes datastore', () => {
  it('lists and watches Calico CRDs and native kinds; relists after 410 without spurious deletes', async () => {
    const ds = new KubernetesDatastore({ kubeconfig: s.kubeconfigPath, nodename: 'node-a', pageSize: 2, minBackoffMs: 50, maxBackoffMs: 300 });
    const rec = new Recorder();
    try {
      await ds.watch(rec.handler);
      await rec.waitFor((r) => r.inSyncCount() === 1, 'in-sync');
      const p = rec.view.get('IPPool/pool-a')!;
      expect(p.apiVersion).toBe('projectcalico.org/v3');
      expect(p.spec).toMatchObject({ cidr: '10.65.0.0/16' });
      expect(rec.view.has('Namespace/team-a')).toBe(true);
      // this node's pod whole, another node's pod trimmed to what policy needs
      const mine = rec.view.get('Pod/default/web-1')!;
      expect(mine.spec?.containers[0].env).toEqual([{ name: 'A', value: 'b' }]);
      expect(mine.metadata.managedFields).toBeUndefined();
      const other = rec.view.get('Pod/default/db-1')!;
      expect(other.spec?.containers).toEqual([{ name: 'c', ports: [{ name: 'http', containerPort: 80 }] }]);
      expect(other.status).toMatchObject({ podIP: '10.65.1.7' });
      expect(other.metadata.labels).toEqual({ app: 'db' });
      expect(ds.status()).toMatchObject({ inSync: true, connected: true, errors: [] });

      // a change arrives over the watch
      s.put(pool('pool-b', '10.66.0.0/16'));
      await rec.waitFor((r) => r.view.has('IPPool/pool-b'), 'IPPool/pool-b');

      // bookmarks keep the resourceVersion fresh: a dropped watch resumes without a relist
      await rec.waitFor(() => s.counters.bookmarks > 30, 'bookmarks');
      const lists = s.counters.lists;
      s.dropWatches();
      s.put(pool('pool-c', '10.67.0.0/16'));
      await rec.waitFor((r) => r.view.has('IPPool/pool-c'), 'IPPool/pool-c after drop');
      expect(s.counters.lists).toBe(lists);

      // history compacted while the watches are down: 410 → relist and diff
      const n = rec.events.length;
      s.stallWatches(); // hold events back from the open watches
      s.put(pool('pool-a', '10.65.0.0/17')); // changed
      s.remove('crd.projectcalico.org/v1', 'IPPool', 'pool-b'); // gone
      s.put(pool('pool-d', '10.68.0.0/16')); // new
      s.compact();
      s.dropWatches();
      await rec.waitFor((r) => r.view.has('IPPool/pool-d') && !r.view.has('IPPool/pool-b'), 'relist diff');
      await rec.waitFor((r) => r.inSyncCount() >= 2, 'in-sync after relist');
      expect(s.counters.gone410).toBeGreaterThan(0);
      const after = rec.since(n);
      expect(deletes(after)).toEqual(['IPPool/pool-b']);
      expect(rec.view.get('IPPool/pool-a')!.spec).toMatchObject({ cidr: '10.65.0.0/17' });
      // nothing unchanged was re-sent
      expect(after.filter((e) => e.type === 'update').map((e) => (e as { key: string }).key).sort()).toEqual(['IPPool/pool-a', 'IPPool/pool-d']);
    } finally {
      await ds.close();
    }
  });

  it('reports an unreachable API (disconnected, with the reason) and recovers with backoff; recycles half-open watches', async () => {
    const ds = new KubernetesDatastore({ kubeconfig: s.kubeconfigPath, nodename: 'node-a', minBackoffMs: 50, maxBackoffMs: 200, idleTimeoutMs: 1500 });
    const rec = new Recorder();
    try {
      await ds.watch(rec.handler);
      await rec.waitFor((r) => r.inSyncCount() === 1, 'in-sync');
      s.failNext({ path: '/ippools', watch: true, code: 503, reason: 'ServiceUnavailable', count: 4 });
      s.dropWatches();
      const is503 = (e: DatastoreEvent) => e.type === 'status' && e.state === 'disconnected' && /ippools.crd.projectcalico.org: .*HTTP 503 ServiceUnavailable/.test(e.reason ?? '');
      await rec.waitFor((r) => r.events.some(is503), 'disconnected status naming the 503');
      expect(ds.status().connected === false || rec.events.some(is503)).toBe(true);
      await rec.waitFor(() => ds.status().connected, 'reconnected');
      s.put(pool('after-outage', '10.70.0.0/16'));
      await rec.waitFor((r) => r.view.has('IPPool/after-outage'), 'change after outage');
      expect(deletes(rec.events)).toEqual([]);

      // a garbage line ends that watch; it resumes from its resourceVersion and loses nothing
      const lists = s.counters.lists;
      s.injectWatchLine('{"type":"MODIFIED","object":{"kind":"IPPool"');
      s.put(pool('after-garbage', '10.76.0.0/16'));
      await rec.waitFor((r) => r.view.has('IPPool/after-garbage'), 'change after a garbage line');
      expect(s.counters.lists).toBe(lists);
      // an ERROR 500 event ends the watch the same way
      s.errorWatches(500);
      s.put(pool('after-error', '10.77.0.0/16'));
      await rec.waitFor((r) => r.view.has('IPPool/after-error'), 'change after an ERROR event');
      expect(deletes(rec.events)).toEqual([]);

      // a half-open watch (socket kept, nothing written) is recycled by the idle watchdog
      const w = s.counters.watches;
      s.stallWatches();
      s.put(pool('after-stall', '10.71.0.0/16'));
      await rec.waitFor((r) => r.view.has('IPPool/after-stall'), 'change after stalled watch', 10_000);
      expect(s.counters.watches).toBeGreaterThan(w);
    } finally {
      await ds.close();
    }
  });

  it('writes Calico resources through the CRD endpoints with resourceVersion conflicts', async () => {
    const ds = new KubernetesDatastore({ kubeconfig: s.kubeconfigPath, nodename: 'node-a' });
    try {
      const p = { apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: 'ctl-pool' }, spec: { cidr: '10.72.0.0/16' } };
      const c = await ds.create(p);
      expect(c.apiVersion).toBe('projectcalico.org/v3');
      await expect(ds.create(p)).rejects.toThrow(ConflictError);
      const r = await ds.replace({ ...c, spec: { ...c.spec, disabled: true } });
      expect(r.metadata.resourceVersion).not.toBe(c.metadata.resourceVersion);
      await expect(ds.replace({ ...c, spec: { cidr: '10.72.0.0/16', natOutgoing: true } })).rejects.toThrow(/stale/);
      const a = await ds.apply({ ...p, spec: { cidr: '10.72.0.0/16', natOutgoing: true } });
      expect(a.spec).toMatchObject({ natOutgoing: true });
      expect((await ds.get('IPPool', 'ctl-pool'))?.spec).toMatchObject({ natOutgoing: true });
      await ds.apply({ apiVersion: 'projectcalico.org/v3', kind: 'NetworkPolicy', metadata: { name: 'allow-web', namespace: 'team-a' }, spec: { selector: "app == 'web'", ingress: [{ action: 'Allow' }] } });
      expect((await ds.list('NetworkPolicy', { namespace: 'team-a' })).map((x) => x.metadata.name)).toEqual(['allow-web']);
      await ds.delete('IPPool', 'ctl-pool');
      await expect(ds.delete('IPPool', 'ctl-pool')).rejects.toThrow(NotFoundError);
      expect(await ds.get('IPPool', 'ctl-pool')).toBeUndefined();
    } finally {
      await ds.close();
    }
  });

  it('reports an invalid object by its path and field, keeps its last good version, clears when fixed', async () => {
    const ds = new KubernetesDatastore({ kubeconfig: s.kubeconfigPath, nodename: 'node-a' });
    const rec = new Recorder();
    try {
      s.put(pool('flaky', '10.74.0.0/16'));
      await ds.watch(rec.handler);
      await rec.waitFor((r) => r.inSyncCount() === 1 && r.view.has('IPPool/flaky'), 'in-sync');
      s.put(pool('flaky', 'not-a-cidr'));
      await rec.waitFor(() => ds.status().errors.length === 1, 'error reported');
      const err = ds.status().errors[0]!;
      expect(err.source).toBe('/apis/crd.projectcalico.org/v1/ippools/flaky');
      expect(err.message).toMatch(/spec\.cidr/);
      expect(rec.view.get('IPPool/flaky')!.spec).toMatchObject({ cidr: '10.74.0.0/16' });
      s.put(pool('flaky', '10.75.0.0/16'));
      await rec.waitFor((r) => r.view.get('IPPool/flaky')?.spec?.cidr === '10.75.0.0/16', 'fixed');
      expect(ds.status().errors).toEqual([]);
      s.remove('crd.projectcalico.org/v1', 'IPPool', 'flaky');
      await rec.waitFor((r) => !r.view.has('IPPool/flaky'), 'deleted');
    } finally {
      await ds.close();
    }
  });

  it('relists when a too-old watch is answered with HTTP 410 instead of an ERROR event', async () => {
    const gone = await startTestApiServer({ goneAsHttpStatus: true, bookmarkIntervalMs: 0 });
    const ds = new KubernetesDatastore({ kubeconfig: gone.kubeconfigPath, nodename: 'node-a', minBackoffMs: 50, maxBackoffMs: 200 });
    const rec = new Recorder();
    try {
      gone.put(pool('keep', '10.80.0.0/16'));
      gone.put(pool('drop', '10.81.0.0/16'));
      await ds.watch(rec.handler);
      await rec.waitFor((r) => r.inSyncCount() === 1 && r.view.has('IPPool/drop'), 'in-sync');
      const n = rec.events.length;
      gone.stallWatches();
      gone.remove('crd.projectcalico.org/v1', 'IPPool', 'drop');
      gone.put(pool('new', '10.82.0.0/16'));
      gone.compact();
      gone.dropWatches();
      await rec.waitFor((r) => r.view.has('IPPool/new') && !r.view.has('IPPool/drop'), 'relist after HTTP 410');
      expect(gone.counters.gone410).toBeGreaterThan(0);
      expect(deletes(rec.since(n))).toEqual(['IPPool/drop']);
      expect(rec.view.has('IPPool/keep')).toBe(true);
    } finally {
      await ds.close();
      await gone.stop();
    }
  });

  it('publishes node status as ConfigMaps that every node can list', async () => {
    const { reportNodeStatus, listNodeStatuses } = await import('../../datastore/index.js');
    const a = new KubernetesDatastore({ kubeconfig: s.kubeconfigPath, nodename: 'node-a' });
    const b = new KubernetesDatastore({ kubeconfig: s.kubeconfigPath, nodename: 'node-b' });
    try {
      await reportNodeStatus(a, 'node-a', { ready: true, bgp: { peers: [{ address: '10.0.0.2', state: 'Established' }] } });
      await reportNodeStatus(a, 'node-a', { ready: false });
      await reportNodeStatus(b, 'node-b', { ready: true });
      const all = await listNodeStatuses(b);
      expect(all.map((x) => [x.node, x.status])).toEqual([
        ['node-a', { ready: false }],
        ['node-b', { ready: true }],
      ]);
      expect(all[0]!.expired).toBeUndefined();
      b.nodeStatusTtlSeconds = 0;
      await new Promise((r) => setTimeout(r, 20));
      expect((await b.listNodeStatuses()).every((x) => x.expired)).toBe(true);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('names a CRD that is not installed and syncs everything else', async () => {
    const bare = await startTestApiServer({ calicoCrds: false });
    const ds = new KubernetesDatastore({ kubeconfig: bare.kubeconfigPath, nodename: 'node-a', missingCrdPollMs: 200 });
    const rec = new Recorder();
    try {
      await ds.watch(rec.handler);
      await rec.waitFor((r) => r.inSyncCount() === 1, 'in-sync without CRDs');
      expect(rec.view.has('Namespace/default')).toBe(true);
      const errs = ds.status().errors.map((e) => e.message);
      expect(errs.some((m) => /ippools\.crd\.projectcalico\.org is not installed/.test(m))).toBe(true);
      // installing the CRDs later is picked up
      const { loadCrdManifests } = await import('../k8s-apiserver/index.js');
      for (const crd of loadCrdManifests()) bare.registerCrd(crd);
      bare.put(pool('late', '10.73.0.0/16'));
      await rec.waitFor((r) => r.view.has('IPPool/late'), 'resource of a late CRD', 10_000);
      await rec.waitFor(() => ds.status().errors.length === 0, 'errors cleared', 10_000);
    } finally {
      await ds.close();
      await bare.stop();
    }
  });
});
