// The etcdv3 backend against a real etcd: calicoctl-written data is read as is, IPAM keys become
// IPAM resources, bad values are reported without stopping the rest, writes compare-and-swap on
// the mod revision, TLS works, node status lives under a lease.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdDatastore } from '../../datastore/etcd/index.js';
import { ConflictError, NotFoundError } from '../../datastore/types.js';
import { startEtcd, type EtcdHandle } from '../etcd.js';
import { Recorder } from './helpers.js';

const pexec = promisify(execFile);
const fixtures: Record<string, unknown> = JSON.parse(readFileSync(new URL('./fixtures/etcd-calicoctl.json', import.meta.url), 'utf8'));

let etcd: EtcdHandle;
const ctl = (...a: string[]) => pexec('etcdctl', a, { env: { ...process.env, ...etcd.etcdctlEnv } }).then((r) => r.stdout);

beforeAll(async () => {
  etcd = await startEtcd();
  for (const [k, v] of Object.entries(fixtures)) await ctl('put', k, JSON.stringify(v));
});
afterAll(async () => {
  await etcd?.stop();
});

describe('etcdv3 datastore', () => {
  it('reads calicoctl-written resources and Calico IPAM keys, then streams changes', async () => {
    const ds = new EtcdDatastore({ endpoints: [etcd.endpoint] });
    const rec = new Recorder();
    try {
      await ds.watch(rec.handler);
      await rec.waitFor((r) => r.inSyncCount() === 1, 'in-sync');
      expect([...rec.view.keys()].sort()).toEqual([
        'BGPConfiguration/default',
        'BlockAffinity/node1-192-168-10-0-26',
        'GlobalNetworkPolicy/default.deny-all',
        'IPAMBlock/192-168-10-0-26',
        'IPAMHandle/k8s-pod-network.0123456789abcdef',
        'IPPool/default-ipv4-ippool',
        'NetworkPolicy/default/default.allow-nginx',
        'Node/node1',
        'WorkloadEndpoint/default/node1-k8s-nginx--1-eth0',
      ]);
      const aff = rec.view.get('BlockAffinity/node1-192-168-10-0-26')!;
      expect(aff.spec).toMatchObject({ node: 'node1', cidr: '192.168.10.0/26', state: 'confirmed' });
      expect(rec.view.get('IPAMBlock/192-168-10-0-26')!.spec).toMatchObject({ affinity: 'host:node1', cidr: '192.168.10.0/26' });
      const pool = rec.view.get('IPPool/default-ipv4-ippool')!;
      const modRev = JSON.parse(await ctl('get', '/calico/resources/v3/projectcalico.org/ippools/default-ipv4-ippool', '-w', 'json')).kvs[0].mod_revision;
      expect(pool.metadata.resourceVersion).toBe(String(modRev));
      expect(ds.status()).toMatchObject({ type: 'etcdv3', inSync: true, connected: true, errors: [] });

      // a bad value is reported by key and field; everything else keeps flowing
      const n = rec.events.length;
      await ctl('put', '/calico/resources/v3/projectcalico.org/ippools/broken', JSON.stringify({ kind: 'IPPool', apiVersion: 'projectcalico.org/v3', metadata: { name: 'broken' }, spec: { cidr: 'not-a-cidr' } }));
      await ctl('put', '/calico/resources/v3/projectcalico.org/ippools/second', JSON.stringify({ kind: 'IPPool', apiVersion: 'projectcalico.org/v3', metadata: { name: 'second' }, spec: { cidr: '10.70.0.0/16' } }));
      await rec.waitFor((r) => r.view.has('IPPool/second'), 'IPPool/second');
      expect(rec.view.has('IPPool/broken')).toBe(false);
      const errs = ds.status().errors;
      expect(errs).toHaveLength(1);
      expect(errs[0]!.source).toBe('/calico/resources/v3/projectcalico.org/ippools/broken');
      expect(errs[0]!.message).toMatch(/spec\.cidr/);
      await ctl('del', '/calico/resources/v3/projectcalico.org/ippools/broken');
      await ctl('del', '/calico/resources/v3/projectcalico.org/ippools/second');
      await rec.waitFor((r) => !r.view.has('IPPool/second'), 'delete of IPPool/second');
      expect(ds.status().errors).toEqual([]);
      expect(rec.since(n).filter((e) => e.type === 'delete').map((e) => (e as { key: string }).key)).toEqual(['IPPool/second']);
    } finally {
      await ds.close();
    }
  });

  it('writes with compare-and-swap on the mod revision', async () => {
    const ds = new EtcdDatastore({ endpoints: [etcd.endpoint] });
    try {
      const pool = { apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: 'cas-pool' }, spec: { cidr: '10.80.0.0/16' } };
      const created = await ds.create(pool);
      expect(created.metadata.resourceVersion).toMatch(/^\d+$/);
      await expect(ds.create(pool)).rejects.toThrow(ConflictError);
      await expect(ds.create(pool)).rejects.toThrow(/IPPool cas-pool already exists/);
      const stored = JSON.parse(await ctl('get', '--print-value-only', '/calico/resources/v3/projectcalico.org/ippools/cas-pool'));
      expect(stored).toMatchObject({ kind: 'IPPool', apiVersion: 'projectcalico.org/v3', metadata: { name: 'cas-pool' }, spec: { cidr: '10.80.0.0/16' } });
      expect(stored.metadata.resourceVersion).toBeUndefined();
      const r2 = await ds.replace({ ...created, spec: { ...created.spec, disabled: true } });
      expect(Number(r2.metadata.resourceVersion)).toBeGreaterThan(Number(created.metadata.resourceVersion));
      await expect(ds.replace({ ...created, spec: { cidr: '10.80.0.0/16', natOutgoing: true } })).rejects.toThrow(/resourceVersion \d+ is stale \(current \d+\)/);
      await expect(ds.replace({ ...pool, metadata: { name: 'nope' } })).rejects.toThrow(NotFoundError);
      const got = await ds.get('IPPool', 'cas-pool');
      expect(got?.spec).toMatchObject({ disabled: true });
      expect(got?.metadata.uid).toBe(created.metadata.uid);
      // the Kubernetes kinds live under /petrel/k8s/
      await ds.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team-a', labels: { team: 'a' } } });
      expect(await ctl('get', '--keys-only', '--prefix', '/petrel/k8s/namespaces/')).toMatch(/\/petrel\/k8s\/namespaces\/team-a/);
      // IPAM kinds round-trip through Calico's layout
      const aff = await ds.get('BlockAffinity', 'node1-192-168-10-0-26');
      expect(aff?.spec).toMatchObject({ state: 'confirmed' });
      const del = await ds.delete('IPPool', 'cas-pool');
      expect(del.metadata.name).toBe('cas-pool');
      await expect(ds.delete('IPPool', 'cas-pool')).rejects.toThrow(NotFoundError);
      expect((await ds.list('Namespace')).map((n) => n.metadata.name)).toEqual(['team-a']);
    } finally {
      await ds.close();
    }
  });

  it('reports node status under a lease that others can list', async () => {
    const a = new EtcdDatastore({ endpoints: [etcd.endpoint], nodeStatusTtlSeconds: 5 });
    const reader = new EtcdDatastore({ endpoints: [etcd.endpoint] });
    try {
      await a.reportNodeStatus('node-a', { ready: true, bgp: { peers: [{ address: '10.0.0.2', state: 'Established' }] } });
      await a.reportNodeStatus('node-a', { ready: true, bgp: { peers: [{ address: '10.0.0.2', state: 'Active' }] } });
      const all = await reader.listNodeStatuses();
      expect(all).toHaveLength(1);
      expect(all[0]).toMatchObject({ node: 'node-a', status: { ready: true, bgp: { peers: [{ state: 'Active' }] } } });
      const lease = JSON.parse(await ctl('get', '/petrel/nodestatus/node-a', '-w', 'json')).kvs[0].lease;
      expect(Number(lease)).toBeGreaterThan(0);
      await a.close(); // the agent stops: its lease is revoked and the entry goes
      expect(await reader.listNodeStatuses()).toEqual([]);
    } finally {
      await a.close();
      await reader.close();
    }
  });

  it('talks TLS with a CA, client certificate and key', async () => {
    const t = await startEtcd({ tls: true });
    const ds = new EtcdDatastore({ endpoints: [t.endpoint], caFile: t.tls!.caFile, certFile: t.tls!.certFile, keyFile: t.tls!.keyFile });
    try {
      await ds.create({ apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: 'tls-pool' }, spec: { cidr: '10.90.0.0/16' } });
      const rec = new Recorder();
      await ds.watch(rec.handler);
      await rec.waitFor((r) => r.inSyncCount() === 1 && r.view.has('IPPool/tls-pool'), 'TLS in-sync');
    } finally {
      await ds.close();
      await t.stop();
    }
  });
});
