// The Range client (unary gRPC over node:http2) against a real etcd: pages pinned to a revision,
// the two alternating read buffers, failover past a dead endpoint, etcd's errors passed on with
// their message (a compacted revision is recognisable), refused and silent endpoints, TLS.
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEtcd, type EtcdHandle } from '../../test/etcd.js';
import { RangeClient, type RangeResult } from './range.js';

let etcd: EtcdHandle;
const P = '/range-test/';
const END = Buffer.from('/range-test0');
const ctl = async (...args: string[]) => {
  const { execFile } = await import('node:child_process');
  return new Promise<string>((resolve, reject) =>
    execFile('etcdctl', args, { env: { ...process.env, ...etcd.etcdctlEnv } }, (err, out) => (err ? reject(err) : resolve(out))),
  );
};
const values = (r: RangeResult) => r.kvs.map((kv) => `${kv.key}=${kv.buf.toString('utf8', kv.valueStart, kv.valueEnd)}`);

async function deadPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

beforeAll(async () => {
  etcd = await startEtcd();
  for (let i = 0; i < 30; i++) await ctl('put', `${P}k${String(i).padStart(2, '0')}`, `{"v":${i},"s":"${'x'.repeat(i * 10)}"}`);
});
afterAll(async () => {
  await etcd?.stop();
});

describe('RangeClient', () => {
  it('reads pages pinned to a revision; a result stays intact while the next page is read', async () => {
    const rc = new RangeClient({ endpoints: [etcd.endpoint] });
    try {
      const first = await rc.range({ key: Buffer.from(P), end: END, limit: 10 }, 5000);
      expect(first.kvs).toHaveLength(10);
      expect(first.more).toBe(true);
      const firstValues = values(first);
      expect(firstValues[0]).toBe(`${P}k00={"v":0,"s":""}`);
      // a write after the first page is not seen by pages pinned to its revision
      await ctl('put', `${P}k15`, 'changed');
      const second = await rc.range({ key: Buffer.concat([first.lastKey!, Buffer.from([0])]), end: END, limit: 10, revision: first.revision }, 5000);
      expect(values(first)).toEqual(firstValues);
      expect(second.kvs.map((kv) => kv.key)).toEqual(Array.from({ length: 10 }, (_, i) => `${P}k${i + 10}`));
      expect(values(second)[5]).toBe(`${P}k15={"v":15,"s":"${'x'.repeat(150)}"}`);
      expect(Number(second.kvs[5]!.modRevision)).toBeGreaterThan(0);
      const third = await rc.range({ key: Buffer.concat([second.lastKey!, Buffer.from([0])]), end: END, limit: 10, revision: first.revision }, 5000);
      expect(values(second)[5]).toBe(`${P}k15={"v":15,"s":"${'x'.repeat(150)}"}`);
      expect(third.kvs).toHaveLength(10);
      expect(third.more).toBe(false);
      rc.release();
      // after release, the next call reconnects and reads the current revision
      const now = await rc.range({ key: Buffer.from(`${P}k15`), end: Buffer.from(`${P}k16`), limit: 0 }, 5000);
      expect(values(now)).toEqual([`${P}k15=changed`]);
      expect(BigInt(now.revision)).toBeGreaterThan(BigInt(first.revision));
    } finally {
      rc.close();
    }
  });

  it('fails over past an unreachable endpoint, and fails fast when none answers', async () => {
    const dead = `http://127.0.0.1:${await deadPort()}`;
    const rc = new RangeClient({ endpoints: [dead, etcd.endpoint] });
    try {
      const r = await rc.range({ key: Buffer.from(P), end: END, limit: 5 }, 5000);
      expect(r.kvs).toHaveLength(5);
    } finally {
      rc.close();
    }
    const none = new RangeClient({ endpoints: [dead] });
    // refused: an answer at once, not the deadline's
    await expect(none.range({ key: Buffer.from(P), end: END, limit: 5 }, 5000)).rejects.toThrow(/UNAVAILABLE: .*ECONNREFUSED/);
    none.close();
    await expect(none.range({ key: Buffer.from(P), end: END, limit: 5 }, 5000)).rejects.toThrow(/closed/);
  });

  it('gives up on an endpoint that accepts but never answers at the deadline', async () => {
    const silent = createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const rc = new RangeClient({ endpoints: [`http://127.0.0.1:${(silent.address() as { port: number }).port}`] });
    try {
      await expect(rc.range({ key: Buffer.from(P), end: END, limit: 1 }, 300)).rejects.toThrow(/DEADLINE_EXCEEDED/);
    } finally {
      rc.close();
      silent.close();
    }
  });

  it("passes etcd's errors on with their message: a compacted revision is recognisable", async () => {
    const rc = new RangeClient({ endpoints: [etcd.endpoint] });
    try {
      const r = await rc.range({ key: Buffer.from(P), end: END, limit: 1 }, 5000);
      const old = String(BigInt(r.revision) - 5n);
      await ctl('put', `${P}zz`, 'x');
      await ctl('compact', String(BigInt(r.revision) + 1n));
      await expect(rc.range({ key: Buffer.from(P), end: END, limit: 1, revision: old }, 5000)).rejects.toThrow(/OUT_OF_RANGE: .*compacted/);
      await expect(rc.range({ key: Buffer.from(P), end: END, limit: 1, revision: String(BigInt(r.revision) + 1000n) }, 5000)).rejects.toThrow(/future rev/);
      // the client is still usable
      expect((await rc.range({ key: Buffer.from(P), end: END, limit: 2 }, 5000)).kvs).toHaveLength(2);
    } finally {
      rc.close();
    }
  });

  it('reads over TLS with a client certificate', async () => {
    const t = await startEtcd({ tls: true });
    try {
      const env = { ...process.env, ...t.etcdctlEnv };
      const { execFileSync } = await import('node:child_process');
      execFileSync('etcdctl', ['put', `${P}tls`, 'secure'], { env });
      const rc = new RangeClient({ endpoints: [t.endpoint], caFile: t.tls!.caFile, certFile: t.tls!.certFile, keyFile: t.tls!.keyFile });
      try {
        expect(values(await rc.range({ key: Buffer.from(P), end: END, limit: 0 }, 5000))).toEqual([`${P}tls=secure`]);
      } finally {
        rc.close();
      }
      // without the client certificate etcd refuses the connection: an error, not a hang
      const anon = new RangeClient({ endpoints: [t.endpoint], caFile: t.tls!.caFile });
      await expect(anon.range({ key: Buffer.from(P), end: END, limit: 0 }, 5000)).rejects.toThrow();
      anon.close();
    } finally {
      await t.stop();
    }
  });
});
