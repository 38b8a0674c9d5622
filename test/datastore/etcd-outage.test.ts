// Outage with a real etcd: SIGKILL mid-stream, writes fail as unavailable meanwhile, changes and
// a compaction happen before the agent reconnects; the stream converges to etcd's content with
// a delete only for what was really deleted, and status() names the outage meanwhile.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { metricsRegistry } from '../../agent/metrics.js';
import { EtcdDatastore } from '../../datastore/etcd/index.js';
import { DatastoreUnavailableError, type DatastoreEvent } from '../../datastore/types.js';
import { startEtcd, type EtcdHandle } from '../etcd.js';
import { Recorder } from './helpers.js';

const pexec = promisify(execFile);
let etcd: EtcdHandle | undefined;
afterAll(async () => {
  await etcd?.stop();
});

const poolKey = (n: string) => `/calico/resources/v3/projectcalico.org/ippools/${n}`;
const poolJson = (n: string, cidr: string) => JSON.stringify({ kind: 'IPPool', apiVersion: 'projectcalico.org/v3', metadata: { name: n }, spec: { cidr } });

async function metric(name: string): Promise<number> {
  const m = await metricsRegistry.getSingleMetric(name)?.get();
  return (m?.values ?? []).filter((v) => v.labels.datastore === 'etcdv3').reduce((a, v) => a + v.value, 0);
}

describe('etcd outage', () => {
  it('keeps state through SIGKILL, fails writes meanwhile, and resyncs without spurious deletes', async () => {
    etcd = await startEtcd();
    const ctl = (...a: string[]) => pexec('etcdctl', a, { env: { ...process.env, ...etcd!.etcdctlEnv } }).then((r) => r.stdout);
    for (let i = 0; i < 20; i++) await ctl('put', poolKey(`pool-${i}`), poolJson(`pool-${i}`, `10.${100 + i}.0.0/16`));
    const ds = new EtcdDatastore({ endpoints: [etcd.endpoint], callTimeoutMs: 1500, minBackoffMs: 1500, maxBackoffMs: 2000 });
    const rec = new Recorder();
    const restarts0 = await metric('petrel_datastore_watch_restarts_total');
    const resyncs0 = await metric('petrel_datastore_resync_total');
    try {
      await ds.watch(rec.handler);
      await rec.waitFor((r) => r.inSyncCount() === 1, 'first in-sync');
      expect(rec.view.size).toBe(20);

      // mid-stream changes, then the kill
      await ctl('put', poolKey('pool-0'), poolJson('pool-0', '10.200.0.0/16'));
      await rec.waitFor((r) => r.view.get('IPPool/pool-0')?.spec?.cidr === '10.200.0.0/16', 'mid-stream update');
      const before = rec.events.length;
      await etcd.kill();
      await rec.waitFor(() => !ds.status().connected, 'disconnected');
      const st = ds.status();
      expect(st.inSync).toBe(false);
      expect(st.reason).toMatch(/etcd|connection|unavailable|UNAVAILABLE/i);
      const statusEv = rec.since(before).find((e) => e.type === 'status' && e.state === 'disconnected') as Extract<DatastoreEvent, { type: 'status' }>;
      expect(statusEv.reason).toBeTruthy();

      // writes during the outage fail clearly
      await expect(ds.create({ apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: 'during' }, spec: { cidr: '10.250.0.0/16' } })).rejects.toThrow(DatastoreUnavailableError);
      await expect(ds.list('IPPool')).rejects.toThrow(/etcd unreachable/);

      // back, and changes + a compaction land before the agent's next attempt
      await etcd.restart();
      await ctl('put', poolKey('pool-1'), poolJson('pool-1', '10.201.0.0/16'));
      await ctl('del', poolKey('pool-2'));
      await ctl('put', poolKey('pool-new'), poolJson('pool-new', '10.202.0.0/16'));
      const rev = JSON.parse(await ctl('get', poolKey('pool-new'), '-w', 'json')).header.revision;
      await ctl('compact', String(rev));
      // (if the compaction lands after the resync's pinned revision, the new watch is refused
      // as compacted and one more resync follows: either way it settles connected and in sync)
      await rec.waitFor(
        (r) => r.inSyncCount() >= 2 && ds.status().connected && ds.status().inSync && r.view.has('IPPool/pool-new') && !r.view.has('IPPool/pool-2'),
        'in-sync after the outage',
        30_000,
      );

      const after = rec.since(before);
      expect(after.filter((e) => e.type === 'delete').map((e) => (e as { key: string }).key)).toEqual(['IPPool/pool-2']);
      expect(after.filter((e) => e.type === 'update').map((e) => (e as { key: string }).key).sort()).toEqual(['IPPool/pool-1', 'IPPool/pool-new']);
      // the view equals etcd's content
      const stored = (await ds.list('IPPool')).map((r) => `${r.metadata.name}=${r.spec?.cidr}`).sort();
      expect([...rec.view.values()].map((r) => `${r.metadata.name}=${r.spec?.cidr}`).sort()).toEqual(stored);
      // and it keeps streaming
      await ctl('put', poolKey('pool-3'), poolJson('pool-3', '10.203.0.0/16'));
      await rec.waitFor((r) => r.view.get('IPPool/pool-3')?.spec?.cidr === '10.203.0.0/16', 'update after resync');
      expect(await metric('petrel_datastore_watch_restarts_total')).toBeGreaterThan(restarts0);
      expect(await metric('petrel_datastore_resync_total')).toBeGreaterThan(resyncs0);
    } finally {
      await ds.close();
    }
  });

  it('starts while etcd is down: disconnected with the reason, in sync once etcd is up', async () => {
    const e = await startEtcd();
    try {
      await pexec('etcdctl', ['put', poolKey('early'), poolJson('early', '10.99.0.0/16')], { env: { ...process.env, ...e.etcdctlEnv } });
      await e.kill();
      const ds = new EtcdDatastore({ endpoints: [e.endpoint], callTimeoutMs: 1000, minBackoffMs: 200, maxBackoffMs: 500 });
      const rec = new Recorder();
      try {
        await ds.watch(rec.handler);
        expect(ds.status()).toMatchObject({ connected: false, inSync: false });
        await rec.waitFor(() => /etcd unreachable at http:\/\/127\.0\.0\.1:\d+/.test(ds.status().reason ?? ''), 'reason naming the endpoint');
        expect(rec.inSyncCount()).toBe(0);
        await e.restart();
        await rec.waitFor((r) => r.inSyncCount() === 1 && r.view.has('IPPool/early'), 'in-sync after etcd came up');
        expect(ds.status()).toMatchObject({ connected: true, inSync: true });
      } finally {
        await ds.close();
      }
    } finally {
      await e.stop();
    }
  });
});
