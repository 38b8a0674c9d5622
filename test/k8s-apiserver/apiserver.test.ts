// The test API server speaks the protocol real clients rely on: kubectl (get, get -w, apply)
// and raw list/watch semantics (paging from a snapshot, selectors, bookmarks, 410 after
// compaction, optimistic concurrency).
import { execFile, spawn } from 'node:child_process';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApiServer, type TestApiServer } from './index.js';

const pexec = promisify(execFile);
let s: TestApiServer;
let dir: string;

function call(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<{ code: number; body: any }> {
  return new Promise((resolve, reject) => {
    const u = new URL(path, s.url);
    const req = request(
      u,
      { method, ca: readFileSync(s.caFile), headers: { Authorization: `Bearer ${s.token}`, 'Content-Type': contentType } },
      (res) => {
        let d = '';
        res.on('data', (c) => (d += c));
        res.on('end', () => resolve({ code: res.statusCode ?? 0, body: d ? JSON.parse(d) : undefined }));
      },
    );
    req.on('error', reject);
    if (body !== undefined) req.write(typeof body === 'string' ? body : JSON.stringify(body));
    req.end();
  });
}

/** Opens a watch and collects its event lines until `until` returns true or the stream ends. */
function watch(path: string, until: (evs: any[]) => boolean, timeoutMs = 5000): Promise<any[]> {
  return new Promise((resolve, reject) => {
    const evs: any[] = [];
    let buf = '';
    const req = request(new URL(path, s.url), { ca: readFileSync(s.caFile), headers: { Authorization: `Bearer ${s.token}` } }, (res) => {
      res.on('data', (c) => {
        buf += c;
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          evs.push(JSON.parse(buf.slice(0, i)));
          buf = buf.slice(i + 1);
        }
        if (until(evs)) {
          req.destroy();
          resolve(evs);
        }
      });
      res.on('end', () => resolve(evs));
    });
    req.on('error', (e) => (req.destroyed ? undefined : reject(e)));
    setTimeout(() => {
      req.destroy();
      resolve(evs);
    }, timeoutMs);
    req.end();
  });
}

beforeAll(async () => {
  s = await startTestApiServer({ bookmarkIntervalMs: 200 });
  dir = mkdtempSync(join(tmpdir(), 'petrel-apiserver-test-'));
});
afterAll(async () => {
  await s?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('test API server with kubectl', () => {
  it('kubectl get, get -w and apply -f work against it', async () => {
    const k = (...a: string[]) => pexec('kubectl', ['--kubeconfig', s.kubeconfigPath, ...a]).then((r) => r.stdout);
    expect(await k('get', 'namespaces')).toMatch(/default/);
    const file = join(dir, 'm.yaml');
    const manifest = `apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: default, labels: {app: web}}
spec: {nodeName: node-a, containers: [{name: c, image: busybox}]}
---
apiVersion: crd.projectcalico.org/v1
kind: IPPool
metadata: {name: pool-a}
spec: {cidr: 10.65.0.0/16}
`;
    writeFileSync(file, manifest);
    const w = spawn('kubectl', ['--kubeconfig', s.kubeconfigPath, 'get', 'pods', '-w', '-o', 'name'], { stdio: 'pipe' });
    let wout = '';
    w.stdout.on('data', (d) => (wout += d));
    try {
      await new Promise((r) => setTimeout(r, 800));
      expect(await k('apply', '--validate=false', '-f', file)).toMatch(/pod\/web-1 created[\s\S]*ippool.crd.projectcalico.org\/pool-a created/);
      expect(await k('apply', '--validate=false', '-f', file)).toMatch(/pod\/web-1 unchanged/);
      writeFileSync(file, manifest.replace('app: web', 'app: web2'));
      expect(await k('apply', '--validate=false', '-f', file)).toMatch(/pod\/web-1 configured/);
      const pod = JSON.parse(await k('get', 'pod', 'web-1', '-o', 'json'));
      expect(pod.metadata.labels).toEqual({ app: 'web2' });
      expect(JSON.parse(await k('get', 'ippools', '-o', 'json')).items[0].spec.cidr).toBe('10.65.0.0/16');
      for (let i = 0; i < 50 && !wout.includes('pod/web-1'); i++) await new Promise((r) => setTimeout(r, 100));
      expect(wout).toContain('pod/web-1');
    } finally {
      w.kill();
    }
    await k('delete', 'pod', 'web-1');
    await k('delete', 'ippool', 'pool-a');
    // server-side apply
    expect(await k('apply', '--server-side', '--validate=false', '-f', file)).toMatch(/ippool.crd.projectcalico.org\/pool-a serverside-applied/);
    expect(await k('get', 'ippool', 'pool-a', '-o', 'jsonpath={.spec.cidr}')).toBe('10.65.0.0/16');
  });

  it('kubectl apply -f deploy/crds registers the Calico kinds on a bare server', async () => {
    const bare = await startTestApiServer({ calicoCrds: false });
    try {
      const k = (...a: string[]) => pexec('kubectl', ['--kubeconfig', bare.kubeconfigPath, ...a]).then((r) => r.stdout);
      const crdDir = new URL('../../deploy/crds/', import.meta.url).pathname;
      expect(await k('apply', '--validate=false', '-f', crdDir)).toMatch(/customresourcedefinition.apiextensions.k8s.io\/ippools.crd.projectcalico.org created/);
      expect(await k('api-resources', '--api-group=crd.projectcalico.org', '-o', 'name')).toMatch(/^ippools.crd.projectcalico.org$/m);
      expect(await k('get', 'ippools')).toBe('');
    } finally {
      await bare.stop();
    }
  });
});

describe('list/watch protocol', () => {
  it('pages a list from one snapshot and filters by label and field selectors', async () => {
    await call('POST', '/api/v1/namespaces', { metadata: { name: 'pg' } });
    for (let i = 0; i < 7; i++) {
      const r = await call('POST', '/api/v1/namespaces/pg/pods', { metadata: { name: `p${i}`, labels: { i: String(i % 2) } }, spec: { nodeName: i < 3 ? 'n1' : 'n2' } });
      expect(r.code).toBe(201);
    }
    const first = await call('GET', '/api/v1/namespaces/pg/pods?limit=3');
    expect(first.body.items.map((p: any) => p.metadata.name)).toEqual(['p0', 'p1', 'p2']);
    expect(first.body.metadata.remainingItemCount).toBe(4);
    await call('DELETE', '/api/v1/namespaces/pg/pods/p5');
    const second = await call('GET', `/api/v1/namespaces/pg/pods?limit=3&continue=${first.body.metadata.continue}`);
    expect(second.body.metadata.resourceVersion).toBe(first.body.metadata.resourceVersion);
    expect(second.body.items.map((p: any) => p.metadata.name)).toEqual(['p3', 'p4', 'p5']); // snapshot still has p5
    const sel = await call('GET', '/api/v1/pods?fieldSelector=spec.nodeName%3Dn1&labelSelector=i%20in%20(0)');
    expect(sel.body.items.map((p: any) => p.metadata.name)).toEqual(['p0', 'p2']);
    const bad = await call('GET', '/api/v1/pods?fieldSelector=spec.foo%3Dx');
    expect(bad.code).toBe(400);
    expect(bad.body.message).toMatch(/"spec.foo" is not a known field selector/);
    s.compact();
    const expired = await call('GET', `/api/v1/namespaces/pg/pods?limit=3&continue=${second.body.metadata.continue}`);
    expect(expired.code).toBe(410);
    expect(expired.body.reason).toBe('Expired');
  });

  it('watches from an exact resourceVersion with bookmarks, selector transitions and 410 after compaction', async () => {
    const list = await call('GET', '/api/v1/pods?fieldSelector=spec.nodeName%3Dn1');
    const rv = list.body.metadata.resourceVersion;
    const evsP = watch(`/api/v1/pods?watch=1&resourceVersion=${rv}&allowWatchBookmarks=true&fieldSelector=spec.nodeName%3Dn1`, (e) => e.length >= 4 && e.some((x) => x.type === 'BOOKMARK'));
    await new Promise((r) => setTimeout(r, 100));
    await call('POST', '/api/v1/namespaces/pg/pods', { metadata: { name: 'q1' }, spec: { nodeName: 'n1' } });
    await call('PATCH', '/api/v1/namespaces/pg/pods/q1', { metadata: { labels: { x: 'y' } } }, 'application/merge-patch+json');
    await call('PATCH', '/api/v1/namespaces/pg/pods/p3', { spec: { nodeName: 'n1' } }, 'application/merge-patch+json'); // moves into the selector
    const evs = await evsP;
    expect(evs.filter((e) => e.type !== 'BOOKMARK').map((e) => `${e.type} ${e.object.metadata.name}`)).toEqual(['ADDED q1', 'MODIFIED q1', 'ADDED p3']);
    const bm = evs.find((e) => e.type === 'BOOKMARK');
    expect(Object.keys(bm.object.metadata)).toEqual(['resourceVersion']);
    s.compact();
    const gone = await watch(`/api/v1/pods?watch=1&resourceVersion=${rv}`, () => false, 2000);
    expect(gone).toHaveLength(1);
    expect(gone[0].type).toBe('ERROR');
    expect(gone[0].object).toMatchObject({ kind: 'Status', code: 410, reason: 'Expired' });
    expect(gone[0].object.message).toMatch(/^too old resource version: \d+ \(\d+\)$/);
  });

  it('rejects stale updates and duplicate creates with Status objects', async () => {
    const c = await call('POST', '/apis/crd.projectcalico.org/v1/ippools', { apiVersion: 'crd.projectcalico.org/v1', kind: 'IPPool', metadata: { name: 'cas' }, spec: { cidr: '10.9.0.0/16' } });
    expect(c.code).toBe(201);
    const dup = await call('POST', '/apis/crd.projectcalico.org/v1/ippools', c.body);
    expect(dup).toMatchObject({ code: 409, body: { reason: 'AlreadyExists' } });
    const u = await call('PUT', '/apis/crd.projectcalico.org/v1/ippools/cas', { ...c.body, spec: { cidr: '10.10.0.0/16' } });
    expect(u.code).toBe(200);
    const stale = await call('PUT', '/apis/crd.projectcalico.org/v1/ippools/cas', { ...c.body, spec: { cidr: '10.11.0.0/16' } });
    expect(stale).toMatchObject({ code: 409, body: { kind: 'Status', reason: 'Conflict' } });
    const smp = await call('PATCH', '/apis/crd.projectcalico.org/v1/ippools/cas', { spec: {} }, 'application/strategic-merge-patch+json');
    expect(smp.code).toBe(415);
    const unknown = await call('GET', '/apis/crd.projectcalico.org/v1/nosuchthings');
    expect(unknown).toMatchObject({ code: 404, body: { reason: 'NotFound' } });
  });
});
