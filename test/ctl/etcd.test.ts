// `petrel ctl` is datastore-neutral: the same round trip against a real etcd (Calico's layout).
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { runCtl } from '../../agent/ctl/index.js';
import { type EtcdHandle, startEtcd } from '../etcd.js';
import { tempDir } from '../file-datastore/helpers.js';

describe('petrel ctl against etcd', () => {
  let etcd: EtcdHandle;
  let work: { dir: string; cleanup: () => void };
  beforeAll(async () => {
    etcd = await startEtcd();
    work = tempDir('petrel-ctl-etcd-');
  });
  afterAll(async () => {
    await etcd?.stop();
    work?.cleanup();
  });

  async function ctl(...args: string[]) {
    let out = '';
    let err = '';
    const code = await runCtl(['--datastore-type', 'etcdv3', '--etcd-endpoints', etcd.endpoint, ...args], {
      out: (t) => void (out += t),
      err: (t) => void (err += t),
    });
    return { code, out, err };
  }

  it('apply, get, replace conflict, delete; stored where calicoctl stores it', async () => {
    const file = join(work.dir, 'pools.yaml');
    writeFileSync(
      file,
      `apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: pool-e
spec:
  cidr: 10.50.0.0/16
---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: pool-bad
spec:
  cidr: 10.51.0.1/16
`,
    );
    let r = await ctl('apply', '-f', file);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/document 1.*spec\.cidr/s);
    expect(execFileSync('etcdctl', ['get', '--prefix', '--keys-only', '/calico/resources/v3/projectcalico.org/ippools/'], { env: { ...process.env, ...etcd.etcdctlEnv } }).toString().trim()).toBe('');

    writeFileSync(file, `apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: pool-e\nspec:\n  cidr: 10.50.0.0/16\n`);
    r = await ctl('apply', '-f', file);
    expect([r.code, r.err]).toEqual([0, '']);
    const keys = execFileSync('etcdctl', ['get', '--prefix', '--keys-only', '/calico/resources/v3/projectcalico.org/ippools/'], {
      env: { ...process.env, ...etcd.etcdctlEnv },
    }).toString();
    expect(keys).toContain('/calico/resources/v3/projectcalico.org/ippools/pool-e');

    r = await ctl('get', 'pool', 'pool-e', '-o', 'yaml');
    expect(r.code).toBe(0);
    const cur = parseYaml(r.out);
    expect(cur.spec.cidr).toBe('10.50.0.0/16');
    cur.spec.natOutgoing = true;
    writeFileSync(file, JSON.stringify(cur));
    expect((await ctl('replace', '-f', file)).code).toBe(0);
    const again = await ctl('replace', '-f', file); // same, now stale, resourceVersion
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/stale|conflict|resourceVersion/i);

    r = await ctl('get', 'ippools');
    expect(r.out).toMatch(/^NAME\s+CIDR\s+SELECTOR\npool-e\s+10\.50\.0\.0\/16\s+all\(\)\n$/);
    expect((await ctl('delete', 'ippool', 'pool-e')).code).toBe(0);
    expect((await ctl('get', 'ippool', 'pool-e')).code).toBe(1);
  });

  it('node status --all prints every node that reported its status', async () => {
    const { createEtcdDatastore } = await import('../../datastore/etcd/index.js');
    const ds = createEtcdDatastore({ type: 'etcdv3', path: '', etcdEndpoints: [etcd.endpoint], nodename: 'node-a' });
    try {
      const peer = (address: string, state: string) => ({ address, type: 'node-mesh', state, since: new Date().toISOString(), prefixesReceived: 1, prefixesAdvertised: 1 });
      await ds.reportNodeStatus('node-a', { node: 'node-a', ready: true, bgp: { asNumber: 64512, peers: [peer('10.0.0.2', 'Established')] } });
      await ds.reportNodeStatus('node-b', { node: 'node-b', ready: false, bgp: { asNumber: 64512, peers: [peer('10.0.0.1', 'Active')] } });
      const r = await ctl('node', 'status', '--all');
      expect([r.code, r.err]).toEqual([0, '']);
      expect(r.out).toMatch(/^Node node-a \(reported [^)]*, ready\)\n\nIPv4 BGP status\n/);
      expect(r.out).toMatch(/\| 10\.0\.0\.2 +\| node-to-node mesh \| up +\|/);
      expect(r.out).toMatch(/Node node-b \(reported [^)]*, NOT ready\)\n\nIPv4 BGP status\n/);
      expect(r.out).toMatch(/\| 10\.0\.0\.1 +\| node-to-node mesh \| start \|/);
    } finally {
      await ds.close();
    }
    // The file datastore keeps no node statuses: a clear error, exit 1.
    let err = '';
    const code = await runCtl(['--datastore-path', work.dir, 'node', 'status', '--all'], { out: () => undefined, err: (t) => void (err += t) });
    expect(code).toBe(1);
    expect(err).toMatch(/does not hold node statuses/);
  });

  it('exit 2 once etcd is gone', async () => {
    const prev = process.env.PETREL_CTL_TIMEOUT_MS;
    process.env.PETREL_CTL_TIMEOUT_MS = '4000';
    try {
      await etcd.kill();
      const r = await ctl('get', 'ippools');
      expect(r.code).toBe(2);
    } finally {
      if (prev === undefined) delete process.env.PETREL_CTL_TIMEOUT_MS;
      else process.env.PETREL_CTL_TIMEOUT_MS = prev;
    }
  });
});
