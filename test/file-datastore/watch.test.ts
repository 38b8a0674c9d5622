// File datastore: initial load, watching (create, modify, atomic rename, rename, delete),
// broken files (last good kept, reported, recovery), duplicates. Real files, real fs.watch.
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileDatastore } from '../../datastore/file.js';
import type { DatastoreEvent, UpdateEvent } from '../../datastore/types.js';
import { Recorder, ippool, sleep, tempDir } from './helpers.js';

const updates = (ev: DatastoreEvent[]) => ev.filter((e): e is UpdateEvent => e.type === 'update');
const hasUpdate = (key: string, pred: (r: any) => boolean = () => true) => (ev: DatastoreEvent[]) =>
  updates(ev).some((e) => e.key === key && pred(e.resource));
const hasDelete = (key: string) => (ev: DatastoreEvent[]) => ev.some((e) => e.type === 'delete' && e.key === key);

describe('file datastore: load and watch', () => {
  let dir: string;
  let cleanup: () => void;
  let ds: FileDatastore;
  let rec: Recorder;

  beforeEach(async () => {
    ({ dir, cleanup } = tempDir());
    writeFileSync(join(dir, 'pools.yaml'), `# two pools\n${ippool('pool-a', '10.10.0.0/16')}---\n${ippool('pool-b', '10.20.0.0/16')}`);
    mkdirSync(join(dir, 'nested', 'deeper'), { recursive: true });
    writeFileSync(
      join(dir, 'nested', 'deeper', 'bgp.json'),
      JSON.stringify({ apiVersion: 'projectcalico.org/v3', kind: 'BGPConfiguration', metadata: { name: 'default' }, spec: { asNumber: 64513 } }),
    );
    writeFileSync(join(dir, '.hidden.yaml'), ippool('hidden', '10.99.0.0/16'));
    writeFileSync(join(dir, 'notes.txt'), 'not a manifest');
    ds = new FileDatastore({ path: dir, debounceMs: 30 });
    rec = new Recorder();
    await ds.watch(rec.handler);
  });

  afterEach(async () => {
    await ds.close();
    cleanup();
  });

  it('lists every manifest (recursive, multi-document, JSON) then in-sync; hidden and other files ignored', () => {
    const first = rec.batches[0];
    expect(first[first.length - 1]).toEqual({ type: 'in-sync' });
    expect(updates(first).map((e) => e.key).sort()).toEqual(['BGPConfiguration/default', 'IPPool/pool-a', 'IPPool/pool-b']);
    const a = updates(first).find((e) => e.key === 'IPPool/pool-a')!.resource;
    expect(a.spec?.cidr).toBe('10.10.0.0/16');
    expect(a.metadata.resourceVersion).toMatch(/^[0-9a-f]{16}$/);
    expect(ds.status()).toMatchObject({ type: 'file', inSync: true, connected: true, errors: [] });
  });

  it('sees a new file, a change, an atomic rename over a file, a plain rename and a delete', async () => {
    let m = rec.mark();
    writeFileSync(join(dir, 'new.yml'), ippool('pool-c', '10.30.0.0/16'));
    await rec.until(hasUpdate('IPPool/pool-c'), 5000, m);

    const rvBefore = (await ds.get('IPPool', 'pool-c'))!.metadata.resourceVersion;
    m = rec.mark();
    writeFileSync(join(dir, 'new.yml'), ippool('pool-c', '10.31.0.0/16'));
    await rec.until(hasUpdate('IPPool/pool-c', (r) => r.spec.cidr === '10.31.0.0/16'), 5000, m);
    expect((await ds.get('IPPool', 'pool-c'))!.metadata.resourceVersion).not.toBe(rvBefore);

    // Editors' save: write a temp file, rename it over the original.
    m = rec.mark();
    writeFileSync(join(dir, '.new.yml.swp'), ippool('pool-c', '10.32.0.0/16'));
    renameSync(join(dir, '.new.yml.swp'), join(dir, 'new.yml'));
    await rec.until(hasUpdate('IPPool/pool-c', (r) => r.spec.cidr === '10.32.0.0/16'), 5000, m);

    // A plain rename keeps the resources: no delete, no update.
    m = rec.mark();
    mkdirSync(join(dir, 'moved'));
    renameSync(join(dir, 'new.yml'), join(dir, 'moved', 'renamed.yaml'));
    for (let i = 0; i < 100 && (await ds.locate('IPPool', 'pool-c'))?.file !== 'moved/renamed.yaml'; i++) await sleep(20);
    expect(await ds.locate('IPPool', 'pool-c')).toEqual({ file: 'moved/renamed.yaml', index: 0 });
    expect(rec.since(m).filter((e) => e.type === 'update' || e.type === 'delete')).toEqual([]);
    expect((await ds.get('IPPool', 'pool-c'))!.spec?.cidr).toBe('10.32.0.0/16');

    // A file created in a directory created after the watch started.
    m = rec.mark();
    mkdirSync(join(dir, 'later', 'sub'), { recursive: true });
    writeFileSync(join(dir, 'later', 'sub', 'p.yaml'), ippool('pool-d', '10.40.0.0/16'));
    await rec.until(hasUpdate('IPPool/pool-d'), 5000, m);

    m = rec.mark();
    rmSync(join(dir, 'moved', 'renamed.yaml'));
    await rec.until(hasDelete('IPPool/pool-c'), 5000, m);
    expect(await ds.get('IPPool', 'pool-c')).toBeUndefined();
  });

  it('a file that becomes broken keeps its last good resources, says so, and recovers', async () => {
    let m = rec.mark();
    writeFileSync(join(dir, 'pools.yaml'), `${ippool('pool-a', '10.10.0.0/16')}---\nkind: IPPool\n  metadata: [unclosed\n`);
    await rec.until(() => ds.status().errors.length > 0, 5000);
    await sleep(200);
    expect(rec.since(m).filter((e) => e.type === 'delete' || e.type === 'update')).toEqual([]);
    const err = ds.status().errors[0];
    expect(err.source).toBe('pools.yaml');
    expect(err.message).toContain(join(dir, 'pools.yaml'));
    expect(err.message).toMatch(/document 1/);
    expect(err.message).toMatch(/YAML syntax error at line \d+/);
    expect(err.message).toMatch(/keeping the 2 resource\(s\) of its last good version/);
    expect((await ds.list('IPPool')).map((r) => r.metadata.name)).toEqual(['pool-a', 'pool-b']);

    // An invalid value: reported with document and field; last good still kept.
    writeFileSync(join(dir, 'pools.yaml'), `${ippool('pool-a', '10.10.0.0/16')}---\n${ippool('pool-b', '10.20.0.0/33')}`);
    await rec.until(() => /spec\.cidr/.test(ds.status().errors[0]?.message ?? ''), 5000);
    expect(ds.status().errors[0].message).toMatch(/document 1/);
    expect((await ds.list('IPPool')).map((r) => r.spec?.cidr)).toEqual(['10.10.0.0/16', '10.20.0.0/16']);

    // Fixed: the error goes, the new content applies (pool-b deleted, pool-a changed).
    m = rec.mark();
    writeFileSync(join(dir, 'pools.yaml'), ippool('pool-a', '10.11.0.0/16'));
    await rec.until((ev) => hasDelete('IPPool/pool-b')(ev) && hasUpdate('IPPool/pool-a', (r) => r.spec.cidr === '10.11.0.0/16')(ev), 5000, m);
    expect(ds.status().errors).toEqual([]);
  });

  it('a new broken file is skipped and reported; good files keep working', async () => {
    const m = rec.mark();
    writeFileSync(join(dir, 'bad.yaml'), `${ippool('pool-x', '10.50.0.0/16')}---\n${ippool('pool-y', 'not-a-cidr')}`);
    await rec.until(() => ds.status().errors.length > 0, 5000);
    const e = ds.status().errors[0];
    expect(e.source).toBe('bad.yaml');
    expect(e.message).toMatch(/document 1/);
    expect(e.message).toMatch(/pool-y/);
    expect(e.message).toMatch(/spec\.cidr/);
    expect(e.message).toMatch(/skipped/);
    await sleep(150);
    expect(updates(rec.since(m)).map((u) => u.key)).not.toContain('IPPool/pool-x');
    writeFileSync(join(dir, 'other.yaml'), ippool('pool-z', '10.60.0.0/16'));
    await rec.until(hasUpdate('IPPool/pool-z'), 5000, m);
    expect(ds.status().errors.map((x) => x.source)).toEqual(['bad.yaml']);
  });

  it('the same resource in two files: the later path wins, deterministically, and it is reported', async () => {
    const m = rec.mark();
    writeFileSync(join(dir, 'zz-override.yaml'), ippool('pool-a', '10.70.0.0/16'));
    await rec.until(hasUpdate('IPPool/pool-a', (r) => r.spec.cidr === '10.70.0.0/16'), 5000, m);
    const dup = ds.status().errors.find((x) => x.source === 'pools.yaml')!;
    expect(dup.message).toMatch(/IPPool\/pool-a is also defined in .*zz-override\.yaml/);
    // Removing the winner brings the other definition back.
    const m2 = rec.mark();
    rmSync(join(dir, 'zz-override.yaml'));
    await rec.until(hasUpdate('IPPool/pool-a', (r) => r.spec.cidr === '10.10.0.0/16'), 5000, m2);
    expect(ds.status().errors).toEqual([]);
  });

  it('keeps everything when the directory disappears, and resyncs when it comes back', async () => {
    const m = rec.mark();
    const aside = `${dir}-aside`;
    renameSync(dir, aside);
    try {
      await sleep(100);
      await ds.list('IPPool');
      expect(ds.status().connected).toBe(false);
      expect(rec.since(m).some((e) => e.type === 'delete')).toBe(false);
      expect((await ds.list('IPPool')).length).toBe(2);
      writeFileSync(join(aside, 'while-away.yaml'), ippool('pool-w', '10.80.0.0/16'));
    } finally {
      renameSync(aside, dir);
    }
    await ds.list('IPPool');
    expect(ds.status().connected).toBe(true);
    const after = rec.since(m);
    const st = after.filter((e) => e.type === 'status').map((e: any) => e.state);
    expect(st).toEqual(['disconnected', 'connected']);
    // The resync brings what changed meanwhile, then in-sync again.
    const tail = after.slice(after.findIndex((e: any) => e.type === 'status' && e.state === 'connected'));
    expect(tail.some((e) => e.type === 'update' && e.key === 'IPPool/pool-w')).toBe(true);
    expect(tail[tail.length - 1]).toEqual({ type: 'in-sync' });
  });
});
