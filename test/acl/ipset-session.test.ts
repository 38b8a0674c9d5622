// The long-lived `ipset -` session against a real kernel: batches land, a failed line is
// reported with the kernel's words and the session goes on, a killed session is restarted,
// and a node that cannot run it (no stdbuf) falls back to `ipset restore` with a warning.
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IptablesDataplane } from '../../acl/index.js';
import { IpsetSession, IpsetSessionError } from '../../acl/ipset-session.js';
import { DesiredState } from '../../acl/desired.js';
import { NetNs, requireRoot } from '../netns.js';

requireRoot();

describe('ipset session', () => {
  let ns: NetNs;
  const spawned: ChildProcessWithoutNullStreams[] = [];
  const spawner = (argv: string[]) => {
    const p = ns.spawn(argv[0]!, argv.slice(1)) as ChildProcessWithoutNullStreams;
    spawned.push(p);
    return p;
  };
  const members = async (set: string) => (await ns.exec('ipset', ['save', set])).stdout.split('\n').filter((l) => l.startsWith('add ')).map((l) => l.split(' ')[2]);

  beforeAll(async () => {
    ns = await NetNs.create('ptis');
    await ns.exec('ipset', ['create', 'pet-4s:sess', 'hash:net']);
  });
  afterAll(async () => {
    await ns?.destroy();
  });

  it('applies a batch and answers once every line is done', async () => {
    const s = new IpsetSession(spawner, pino({ level: 'silent' }));
    await s.run('add pet-4s:sess 10.70.0.1\nadd pet-4s:sess 10.70.0.2\n');
    expect((await members('pet-4s:sess')).sort()).toEqual(['10.70.0.1', '10.70.0.2']);
    // -exist: adding twice or deleting an absent member is not an error.
    await s.run('add pet-4s:sess 10.70.0.1\ndel pet-4s:sess 10.70.0.9\ndel pet-4s:sess 10.70.0.2\n');
    expect(await members('pet-4s:sess')).toEqual(['10.70.0.1']);
    s.close();
  });

  it("reports a failed line with the kernel's words, applies the others and stays usable", async () => {
    const s = new IpsetSession(spawner, pino({ level: 'silent' }));
    const err = await s.run('add pet-4s:nosuch 10.70.0.3\nadd pet-4s:sess 10.70.0.4\nadd pet-4s:sess 300.1.1.1\n').catch((e) => e);
    expect(err).toBeInstanceOf(IpsetSessionError);
    expect(err.message).toMatch(/does not exist/);
    expect(err.message).toMatch(/300\.1\.1\.1/);
    expect(await members('pet-4s:sess')).toContain('10.70.0.4');
    await s.run('add pet-4s:sess 10.70.0.5\n');
    expect(await members('pet-4s:sess')).toContain('10.70.0.5');
    s.close();
  });

  it('a killed session is replaced by a new one at the next batch', async () => {
    const s = new IpsetSession(spawner, pino({ level: 'silent' }));
    await s.run('add pet-4s:sess 10.70.0.6\n');
    const first = spawned[spawned.length - 1]!;
    first.kill('SIGKILL');
    await new Promise((r) => first.once('exit', r));
    await s.run('add pet-4s:sess 10.70.0.7\n');
    expect(spawned[spawned.length - 1]).not.toBe(first);
    expect(await members('pet-4s:sess')).toContain('10.70.0.7');
    s.close();
  });

  it('without stdbuf the dataplane says so once and uses ipset restore', async () => {
    const warnings: string[] = [];
    const log = pino({ level: 'warn' }, { write: (l: string) => warnings.push(l) });
    const noStdbuf = (argv: string[]) => spawner(['sh', '-c', argv[2]!.replace('stdbuf -o0', 'no-such-stdbuf')]);
    const restores: string[] = [];
    const exec = async (cmd: string, args: string[], input?: string) =>
      ns.exec(cmd, args, { input }).then(
        (x) => ({ code: 0, ...x }),
        (e: Error) => ({ code: 1, stdout: '', stderr: e.message }),
      );
    const dp = new IptablesDataplane({ ipVersions: [4], exec, backend: 'nft', refreshIntervalMs: 0, log, ipsetSession: noStdbuf, onRestore: (w) => restores.push(w) });
    const d = new DesiredState();
    d.ensureIpset('pet-4s:fallback', 'hash:net', 4);
    d.addMember('pet-4s:fallback', '10.71.0.1');
    await dp.apply(d);
    restores.length = 0;
    d.addMember('pet-4s:fallback', '10.71.0.2');
    await dp.apply(d);
    d.addMember('pet-4s:fallback', '10.71.0.3');
    await dp.apply(d);
    expect((await members('pet-4s:fallback')).sort()).toEqual(['10.71.0.1', '10.71.0.2', '10.71.0.3']);
    // The second apply tries the session, finds it cannot start and uses restore; the third goes straight to restore.
    expect(restores).toEqual(['ipset-session', 'ipset', 'ipset']);
    expect(warnings.filter((w) => w.includes('using ipset restore for every change'))).toHaveLength(1);
    dp.stop();
  });
});
