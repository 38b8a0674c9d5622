// The newcomer's path: the built CLI runs the agent on examples/quickstart (dry-run), and it
// becomes ready with the quickstart's resources, routes and rules computed.
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO } from '../lab/lab.js';

describe('petrel agent on examples/quickstart (dry-run)', () => {
  let proc: ChildProcess;
  let port = 0;
  let log = '';
  beforeAll(async () => {
    proc = spawn(process.execPath, ['dist/agent/cli.js', 'agent', '--dataplane', 'dry-run', '--health-host', '127.0.0.1', '--health-port', '0'], {
      cwd: REPO,
      env: { ...process.env, NODENAME: 'node-1', LOG_LEVEL: 'info', CI: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    proc.stdout!.on('data', (d) => (log += d));
    proc.stderr!.on('data', (d) => (log += d));
    const end = Date.now() + 30_000;
    while (!port && Date.now() < end) {
      const m = log.match(/"port":(\d+),"msg":"health server listening"/);
      if (m) port = Number(m[1]);
      else await new Promise((r) => setTimeout(r, 50));
    }
    if (!port) throw new Error(`agent did not start: ${log}`);
  });
  afterAll(() => {
    proc?.kill('SIGTERM');
  });

  const get = async (path: string) => {
    const r = await fetch(`http://127.0.0.1:${port}${path}`);
    return { code: r.status, text: await r.text() };
  };

  it('is live, becomes ready, and shows what it would program', async () => {
    expect((await get('/liveness')).code).toBe(200);
    const end = Date.now() + 20_000;
    while ((await get('/readiness')).code !== 200 && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
    expect((await get('/readiness')).code).toBe(200);
    const status = JSON.parse((await get('/status')).text);
    expect(status.node).toBe('node-1');
    expect(status.datastore).toMatchObject({ type: 'file', inSync: true, errors: [] });
    expect(status.datastore.resources).toMatchObject({ IPPool: 1, Node: 1, GlobalNetworkPolicy: 1, KubernetesNetworkPolicy: 1 });
    // The quickstart's pods became workload endpoints, each with its /32 on its cali interface.
    expect(status.datastore.resources.WorkloadEndpoint).toBeGreaterThanOrEqual(3);
    const routes: string[] = status.dataplane.routes.routes;
    expect(routes).toContain('blackhole 10.244.0.0/26');
    expect(routes.filter((r) => / dev cali[0-9a-f]{11} scope link$/.test(r)).length).toBeGreaterThanOrEqual(3);
    expect(status.dataplane.policy.rules.some((r: string) => r.includes('-j DROP'))).toBe(true);
    expect(status.bgp.exports).toEqual(['10.244.0.0/26']);
    const metrics = (await get('/metrics')).text;
    expect(metrics).toMatch(/^petrel_datastore_resources\{kind="IPPool"\} 1$/m);
    expect(metrics).toMatch(/^petrel_build_info/m);
  });

  it('stops within 5 s on SIGTERM', async () => {
    const t0 = Date.now();
    const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    proc.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(Date.now() - t0).toBeLessThan(5000);
  });
});
