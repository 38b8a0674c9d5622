// The file datastore inside the real agent (dist/agent/cli.js, dry-run): a broken file is
// reported in /status naming the file and document, its last good resources stay, the fix
// clears it, new files are picked up without a restart.
import { type ChildProcess, spawn } from 'node:child_process';
import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../etcd.js';
import { ippool, sleep, tempDir } from './helpers.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLI = join(ROOT, 'dist', 'agent', 'cli.js');

describe('agent on the file datastore (real binary, dry-run, real HTTP)', () => {
  let child: ChildProcess;
  let base = '';
  let dir = '';
  let cleanup = () => undefined as void;
  let log = '';

  async function status(): Promise<any> {
    return (await fetch(`${base}/status`)).json();
  }
  async function until<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 15_000): Promise<T> {
    const end = Date.now() + ms;
    for (;;) {
      const v = await fn().catch(() => undefined);
      if (v) return v;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}; agent log tail:\n${log.slice(-3000)}`);
      await sleep(50);
    }
  }

  beforeAll(async () => {
    expect(existsSync(CLI), `${CLI} missing: run "npm run build" (npm test does it)`).toBe(true);
    ({ dir, cleanup } = tempDir('petrel-agent-fds-'));
    cpSync(join(ROOT, 'examples', 'quickstart'), dir, { recursive: true });
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    child = spawn(
      process.execPath,
      [CLI, 'agent', '--dataplane', 'dry-run', '--health-host', '127.0.0.1', '--health-port', String(port), '--datastore-path', dir, '--nodename', 'node-1'],
      { env: { ...process.env, LOG_LEVEL: 'info', VITEST: '' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout!.on('data', (b) => (log += b));
    child.stderr!.on('data', (b) => (log += b));
    await until('in sync', async () => (await status()).datastore?.inSync === true);
  });

  afterAll(async () => {
    if (child && child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
    }
    cleanup();
  });

  it('reports a broken file, keeps its resources, clears the error when fixed', async () => {
    const before = (await status()).datastore.resources;
    expect(before.IPPool).toBeGreaterThanOrEqual(1);
    const file = join(dir, '00-cluster.yaml');
    const good = readFileSync(file, 'utf8');
    writeFileSync(file, `${good}\n---\napiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: broken\nspec:\n  cidr: 10.1.2.3/40\n`);
    const st = await until('the error in /status', async () => {
      const s = await status();
      return s.datastore.errors?.length > 0 && s;
    });
    expect(st.datastore.errors[0].source).toBe('00-cluster.yaml');
    expect(st.datastore.errors[0].message).toMatch(/00-cluster\.yaml.*document \d+.*spec\.cidr/);
    expect(st.datastore.errors[0].message).toMatch(/last good version/);
    expect(st.datastore.resources).toEqual(before);
    expect(log).toMatch(/00-cluster\.yaml/);

    writeFileSync(file, good);
    await until('the error cleared', async () => (await status()).datastore.errors?.length === 0);

    writeFileSync(join(dir, '90-extra-pool.yaml'), ippool('extra', '10.99.0.0/16'));
    await until('the new pool', async () => (await status()).datastore.resources.IPPool === before.IPPool + 1);
  });
});
