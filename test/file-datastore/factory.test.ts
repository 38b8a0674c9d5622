// datastore/factory: options from argv/env, backend choice, and the derived stream (a Pod of the
// file datastore arrives as a WorkloadEndpoint too).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createBackend, createDatastore, datastoreOptionsFrom } from '../../datastore/factory.js';
import { FileDatastore } from '../../datastore/file.js';
import type { UpdateEvent } from '../../datastore/types.js';
import { Recorder, tempDir } from './helpers.js';

describe('datastore factory', () => {
  it('datastoreOptionsFrom: flag over env over default', () => {
    expect(datastoreOptionsFrom({}, {})).toEqual({
      type: 'file',
      path: './examples/quickstart',
      etcdEndpoints: ['http://127.0.0.1:2379'],
      etcdCaCertFile: undefined,
      etcdCertFile: undefined,
      etcdKeyFile: undefined,
      kubeconfig: undefined,
      nodename: 'localhost',
    });
    const env = { DATASTORE_TYPE: 'etcdv3', ETCD_ENDPOINTS: 'https://a:2379, https://b:2379', ETCD_CA_CERT_FILE: '/ca', NODENAME: 'n1' };
    expect(datastoreOptionsFrom({}, env)).toMatchObject({ type: 'etcdv3', etcdEndpoints: ['https://a:2379', 'https://b:2379'], etcdCaCertFile: '/ca', nodename: 'n1' });
    expect(datastoreOptionsFrom({ datastoreType: 'kubernetes', nodename: 'n2', kubeconfig: '/kc' }, env)).toMatchObject({ type: 'kubernetes', nodename: 'n2', kubeconfig: '/kc' });
  });

  it('chooses the backend; unknown types are an error', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const opts = datastoreOptionsFrom({ datastorePath: dir }, {});
      const b = await createBackend(opts);
      expect(b).toBeInstanceOf(FileDatastore);
      await b.close();
      const e = await createBackend({ ...opts, type: 'etcdv3', etcdEndpoints: ['http://127.0.0.1:9'] });
      expect(e.type).toBe('etcdv3');
      await e.close();
      await expect(createBackend({ ...opts, type: 'zookeeper' as never })).rejects.toThrow(/unknown datastore type zookeeper/);
    } finally {
      cleanup();
    }
  });

  it('createDatastore: Pods become WorkloadEndpoints in the stream', async () => {
    const { dir, cleanup } = tempDir();
    writeFileSync(
      join(dir, 'pod.yaml'),
      `apiVersion: v1
kind: Pod
metadata: { name: web-0, namespace: shop, labels: { app: web } }
spec: { nodeName: node-1, containers: [{ name: web, image: nginx }] }
status: { podIP: 10.244.1.5, podIPs: [{ ip: 10.244.1.5 }] }
`,
    );
    const ds = await createDatastore(datastoreOptionsFrom({ datastorePath: dir, nodename: 'node-1' }, {}));
    try {
      const rec = new Recorder();
      await ds.watch(rec.handler);
      const ev = await rec.until((e) => e.some((x) => x.type === 'in-sync'));
      const kinds = ev.filter((e): e is UpdateEvent => e.type === 'update').map((e) => e.kind);
      expect(kinds).toEqual(expect.arrayContaining(['Pod', 'WorkloadEndpoint']));
      const wep = ev.find((e): e is UpdateEvent => e.type === 'update' && e.kind === 'WorkloadEndpoint')!.resource;
      expect(wep.spec).toMatchObject({ node: 'node-1', pod: 'web-0', ipNetworks: ['10.244.1.5/32'] });
    } finally {
      await ds.close();
      cleanup();
    }
  });
});
