// File datastore writes (in-place rewrite, new-file layout, conflicts, delete) and the
// cross-process directory lock.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileDatastore, LOCK_FILE, withDirectoryLock } from '../../datastore/file.js';
import { ConflictError, DatastoreUnavailableError, NotFoundError, type Resource } from '../../datastore/types.js';
import { Recorder, ippool, sleep, tempDir } from './helpers.js';

const pool = (name: string, cidr: string, rv?: string): Resource => ({
  apiVersion: 'projectcalico.org/v3',
  kind: 'IPPool',
  metadata: { name, ...(rv ? { resourceVersion: rv } : {}) },
  spec: { cidr },
});

describe('file datastore: writes', () => {
  let dir: string;
  let cleanup: () => void;
  let ds: FileDatastore;

  beforeEach(() => {
    ({ dir, cleanup } = tempDir());
    writeFileSync(
      join(dir, 'cluster.yaml'),
      `# The cluster's pools\n${ippool('pool-a', '10.10.0.0/16')}---\n# second one\n${ippool('pool-b', '10.20.0.0/16')}`,
    );
    ds = new FileDatastore({ path: dir });
  });
  afterEach(async () => {
    await ds.close();
    cleanup();
  });

  it('a new resource goes to <plural>/[<namespace>/]<name>.yaml, atomically', async () => {
    const created = await ds.create(pool('pool-c', '10.30.0.0/16'));
    expect(created.metadata.resourceVersion).toMatch(/^[0-9a-f]{16}$/);
    const text = readFileSync(join(dir, 'ippools', 'pool-c.yaml'), 'utf8');
    expect(text).toContain('cidr: 10.30.0.0/16');
    expect(text).not.toContain('resourceVersion');
    await ds.apply({
      apiVersion: 'projectcalico.org/v3',
      kind: 'NetworkPolicy',
      metadata: { name: 'allow-dns', namespace: 'kube-system' },
      spec: { selector: 'all()', types: ['Egress'], egress: [{ action: 'Allow' }] },
    });
    expect(existsSync(join(dir, 'networkpolicies', 'kube-system', 'allow-dns.yaml'))).toBe(true);
    // no temp files or lock left behind
    expect(readdirSync(dir).filter((f) => f.startsWith('.'))).toEqual([]);
    expect(readdirSync(join(dir, 'ippools'))).toEqual(['pool-c.yaml']);
    await expect(ds.create(pool('pool-c', '10.30.0.0/16'))).rejects.toBeInstanceOf(ConflictError);
  });

  it('a resource from a file is rewritten in place, other documents and comments kept', async () => {
    await ds.apply(pool('pool-b', '10.21.0.0/16'));
    const text = readFileSync(join(dir, 'cluster.yaml'), 'utf8');
    expect(text).toContain("# The cluster's pools");
    expect(text).toContain('# second one');
    expect(text).toContain('cidr: 10.10.0.0/16');
    expect(text).toContain('cidr: 10.21.0.0/16');
    expect(text).not.toContain('10.20.0.0/16');
    expect(existsSync(join(dir, 'ippools'))).toBe(false);
    expect((await ds.list('IPPool')).map((p) => p.spec?.cidr)).toEqual(['10.10.0.0/16', '10.21.0.0/16']);
    expect(await ds.locate('IPPool', 'pool-b')).toEqual({ file: 'cluster.yaml', index: 1 });
  });

  it('replace checks resourceVersion (stale → ConflictError) and existence (NotFoundError)', async () => {
    const cur = (await ds.get('IPPool', 'pool-a'))!;
    const next = await ds.replace(pool('pool-a', '10.11.0.0/16', cur.metadata.resourceVersion));
    expect(next.metadata.resourceVersion).not.toBe(cur.metadata.resourceVersion);
    await expect(ds.replace(pool('pool-a', '10.12.0.0/16', cur.metadata.resourceVersion))).rejects.toBeInstanceOf(ConflictError);
    expect((await ds.get('IPPool', 'pool-a'))!.spec?.cidr).toBe('10.11.0.0/16');
    await expect(ds.replace(pool('nope', '10.12.0.0/16'))).rejects.toBeInstanceOf(NotFoundError);
  });

  it('delete removes the document; a file left empty is removed', async () => {
    const del = await ds.delete('IPPool', 'pool-a');
    expect(del.spec?.cidr).toBe('10.10.0.0/16');
    const text = readFileSync(join(dir, 'cluster.yaml'), 'utf8');
    expect(text).not.toContain('pool-a');
    expect(text).toContain('pool-b');
    await ds.delete('IPPool', 'pool-b');
    expect(existsSync(join(dir, 'cluster.yaml'))).toBe(false);
    await expect(ds.delete('IPPool', 'pool-b')).rejects.toBeInstanceOf(NotFoundError);
  });

  it('JSON files and List documents are rewritten as JSON', async () => {
    writeFileSync(
      join(dir, 'list.json'),
      JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [pool('j1', '10.40.0.0/16'), pool('j2', '10.41.0.0/16')] }),
    );
    await ds.apply(pool('j2', '10.42.0.0/16'));
    const v = JSON.parse(readFileSync(join(dir, 'list.json'), 'utf8'));
    expect(v.items.map((i: Resource) => i.spec?.cidr)).toEqual(['10.40.0.0/16', '10.42.0.0/16']);
    await ds.delete('IPPool', 'j1');
    expect(JSON.parse(readFileSync(join(dir, 'list.json'), 'utf8')).items).toHaveLength(1);
  });

  it('refuses to rewrite a broken file, and the watcher sees writes', async () => {
    const rec = new Recorder();
    await ds.watch(rec.handler);
    const m = rec.mark();
    await ds.apply(pool('pool-c', '10.30.0.0/16'));
    await rec.until((ev) => ev.some((e) => e.type === 'update' && e.key === 'IPPool/pool-c'), 5000, m);
    writeFileSync(join(dir, 'cluster.yaml'), 'kind: [broken\n');
    await rec.until(() => ds.status().errors.length > 0);
    await expect(ds.apply(pool('pool-a', '10.99.0.0/16'))).rejects.toThrow(/broken/);
    expect(readFileSync(join(dir, 'cluster.yaml'), 'utf8')).toBe('kind: [broken\n');
  });

  it('a missing directory is DatastoreUnavailableError', async () => {
    const gone = new FileDatastore({ path: join(dir, 'does-not-exist') });
    await expect(gone.list('IPPool')).rejects.toBeInstanceOf(DatastoreUnavailableError);
    await expect(gone.apply(pool('x', '10.1.0.0/16'))).rejects.toBeInstanceOf(DatastoreUnavailableError);
  });
});

describe('withDirectoryLock', () => {
  let dir: string;
  let cleanup: () => void;
  beforeEach(() => ({ dir, cleanup } = tempDir('petrel-lock-')));
  afterEach(() => cleanup());

  it('serialises callers in one process and is re-entrant', async () => {
    const order: string[] = [];
    const job = (n: string) =>
      withDirectoryLock(dir, async () => {
        order.push(`${n}+`);
        await sleep(20);
        await withDirectoryLock(dir, async () => order.push(`${n}inner`));
        order.push(`${n}-`);
      });
    await Promise.all([job('a'), job('b'), job('c')]);
    expect(order).toEqual(['a+', 'ainner', 'a-', 'b+', 'binner', 'b-', 'c+', 'cinner', 'c-']);
    expect(existsSync(join(dir, LOCK_FILE))).toBe(false);
  });

  it('waits for another process holding the lock, and breaks a dead holder\'s stale lock', async () => {
    // The child runs the real lock.ts (transpiled to a temp dir; no TS loader in Node 20).
    const ts = (await import('typescript')).default;
    const js = tempDir('petrel-lockjs-');
    try {
      mkdirSync(join(js.dir, 'datastore', 'file'), { recursive: true });
      for (const f of ['datastore/types.ts', 'datastore/file/lock.ts']) {
        const src = readFileSync(new URL(`../../${f}`, import.meta.url), 'utf8');
        const out = ts.transpileModule(src, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } });
        writeFileSync(join(js.dir, f.replace(/\.ts$/, '.mjs')), out.outputText.replaceAll("'../types.js'", "'../types.mjs'"));
      }
      const script = `
        import { withDirectoryLock } from ${JSON.stringify(join(js.dir, 'datastore/file/lock.mjs'))};
        await withDirectoryLock(${JSON.stringify(dir)}, async () => {
          console.log('held');
          await new Promise((r) => setTimeout(r, 600));
        });`;
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (b) => (out += b));
      for (let i = 0; i < 250 && !out.includes('held'); i++) await sleep(20);
      expect(out).toContain('held');
      expect(existsSync(join(dir, LOCK_FILE))).toBe(true);
      const t0 = Date.now();
      await withDirectoryLock(dir, async () => {
        expect(child.exitCode === null || child.exitCode === 0).toBe(true);
      });
      expect(Date.now() - t0).toBeGreaterThan(200);
      await new Promise((r) => (child.exitCode !== null ? r(null) : child.on('exit', r)));
      expect(child.exitCode).toBe(0);
    } finally {
      js.cleanup();
    }

    // A lock left by a process that is gone (pid that cannot exist) is broken at once.
    const pidns = (await import('node:fs')).readlinkSync('/proc/self/ns/pid');
    writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: 2 ** 22 + 12345, host: (await import('node:os')).hostname(), pidns, token: 'x', at: Date.now() }));
    const t1 = Date.now();
    await withDirectoryLock(dir, async () => undefined);
    expect(Date.now() - t1).toBeLessThan(1000);
  });

  it('times out with DatastoreUnavailableError while a live holder keeps it', async () => {
    const pidns = (await import('node:fs')).readlinkSync('/proc/self/ns/pid');
    writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: process.ppid, host: (await import('node:os')).hostname(), pidns, token: 'y', at: Date.now() }));
    await expect(withDirectoryLock(dir, async () => undefined, { timeoutMs: 300 })).rejects.toBeInstanceOf(DatastoreUnavailableError);
    // The same dead-looking pid from another PID namespace (a container) is not judged by pid.
    writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: 2 ** 22 + 12345, host: (await import('node:os')).hostname(), pidns: 'pid:[1]', token: 'z', at: Date.now() }));
    await expect(withDirectoryLock(dir, async () => undefined, { timeoutMs: 300 })).rejects.toBeInstanceOf(DatastoreUnavailableError);
    // ... but by age.
    writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: 2 ** 22 + 12345, host: 'elsewhere', token: 'w', at: Date.now() - 60_000 }));
    await withDirectoryLock(dir, async () => undefined, { timeoutMs: 300 });
  });
});
