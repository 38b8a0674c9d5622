import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { ExecServer, spawnExec, type Exec } from './exec.js';

let servers: ExecServer[] = [];
afterEach(() => {
  for (const s of servers) s.close();
  servers = [];
});

function server(): ExecServer {
  const s = new ExecServer();
  servers.push(s);
  return s;
}

const viaServer = (): Exec => {
  const s = server();
  return (c, a, i) => s.run(c, a, i);
};

describe.each([
  ['exec server', viaServer],
  ['direct spawn', (): Exec => spawnExec],
])('%s', (_name, make) => {
  it('passes stdin, returns stdout, stderr and the exit code', async () => {
    const exec = make();
    const r = await exec('sh', ['-c', 'cat; echo oops >&2; exit 3'], 'hello\n');
    expect(r).toEqual({ code: 3, stdout: 'hello\n', stderr: 'oops\n' });
  });

  it('hands a large input over whole', async () => {
    const exec = make();
    const input = 'add petrel-x 10.0.0.1\n'.repeat(100_000); // 2.2 MB
    const r = await exec('wc', ['-c'], input);
    expect(r.code).toBe(0);
    expect(Number(r.stdout.trim())).toBe(input.length);
  });

  it('gives arguments to the command verbatim, never to a shell', async () => {
    const exec = make();
    const args = ["it's", '$HOME', '`id`', '$(id)', 'a b', '"q"', '\\', '*', ';', '&', '|', '>x', ''];
    const r = await exec('printf', ['%s|', ...args]);
    expect(r.stdout).toBe(args.map((a) => `${a}|`).join(''));
  });

  it('rejects with ENOENT when the command does not exist', async () => {
    const exec = make();
    await expect(exec('petrel-no-such-command', ['x'])).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('runs commands side by side, each with its own output', async () => {
    const exec = make();
    const t0 = Date.now();
    const rs = await Promise.all(Array.from({ length: 20 }, (_, i) => exec('sh', ['-c', `sleep 0.3; cat; echo ${i} >&2`], `in-${i}`)));
    expect(Date.now() - t0).toBeLessThan(20 * 300); // not one after another
    rs.forEach((r, i) => expect(r).toEqual({ code: 0, stdout: `in-${i}`, stderr: `${i}\n` }));
  });
});

/** Runs `body` (with `m` = the built acl/exec.js) in a fresh node process. */
function runNode(body: string) {
  const mod = resolve(dirname(fileURLToPath(import.meta.url)), '../dist/acl/exec.js'); // `npm test` builds first
  return spawnSync(process.execPath, ['--input-type=module', '-e', `import(${JSON.stringify(mod)}).then(async (m) => { ${body} })`], {
    timeout: 10_000,
    encoding: 'utf8',
  });
}

describe('exec server', () => {
  it('leaves no temporary files behind', async () => {
    const s = server();
    const r = await s.run('sh', ['-c', 'cat; echo err >&2'], 'x'.repeat(100_000));
    expect(r.stdout.length).toBe(100_000);
    // The private directory the files went to is empty again.
    const probe = await s.run('true', [], 'y');
    expect(probe.code).toBe(0);
    const dir = s.lastTempDir();
    expect(dir && readdirSync(dir)).toEqual([]);
  });

  it('fails the commands in flight when the server dies, and starts a new one for the next', async () => {
    const s = server();
    const slow = s.run('sleep', ['5']);
    await new Promise((r) => setTimeout(r, 100));
    s.killForTest();
    await expect(slow).rejects.toThrow(/exec server ended/);
    const r = await s.run('echo', ['again']);
    expect(r).toEqual({ code: 0, stdout: 'again\n', stderr: '' });
  });

  it('falls back to spawning directly when no shell can be started', async () => {
    const s = new ExecServer('/nonexistent/sh');
    servers.push(s);
    const r = await s.run('echo', ['hi']);
    expect(r.stdout).toBe('hi\n');
    expect(s.unusable).toMatch(/could not start/);
  });

  it('removes the temp directory of an agent that was killed, not that of a live one', async () => {
    const s = server();
    await s.run('true', []); // this process has its directory
    const base = dirname(s.lastTempDir()!);
    // A process that starts the server, runs a command and is then SIGKILLed: its directory stays.
    const p = runNode(`await m.defaultExec('true', []); console.log(process.pid); process.kill(process.pid, 'SIGKILL');`);
    const pid = p.stdout.trim();
    expect(pid).toMatch(/^\d+$/);
    const left = () => readdirSync(base).filter((n) => n.startsWith(`petrel-exec-${pid}-`));
    expect(left()).toHaveLength(1);
    // A new process's first command clears it.
    const q = runNode(`await m.defaultExec('true', []);`);
    expect(q.status).toBe(0);
    expect(left()).toEqual([]);
    // This (live) process's is still there.
    expect(readdirSync(base).filter((n) => n.startsWith(`petrel-exec-${process.pid}-`))).toHaveLength(1);
  });

  it('does not keep an idle process alive', () => {
    // A script that runs one command through the shared server and then has nothing to do
    // must exit by itself.
    const p = runNode(`const r = await m.defaultExec('echo', ['done']); process.stdout.write(r.stdout);`);
    expect(p.status).toBe(0);
    expect(p.stdout).toBe('done\n');
  });
});
