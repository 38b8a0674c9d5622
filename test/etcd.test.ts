import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { startEtcd } from './etcd.js';

describe('test/etcd harness', () => {
  it('starts, survives SIGKILL + restart with its data, and serves TLS', async () => {
    const e = await startEtcd();
    try {
      const ctl = (...a: string[]) => execFileSync('etcdctl', a, { env: { ...process.env, ...e.etcdctlEnv } }).toString();
      ctl('put', '/petrel-test/a', '1');
      await e.kill();
      expect(() => execFileSync('etcdctl', ['get', '/petrel-test/a', '--command-timeout=500ms'], { env: { ...process.env, ...e.etcdctlEnv }, stdio: 'pipe' })).toThrow();
      await e.restart();
      expect(ctl('get', '/petrel-test/a', '--print-value-only').trim()).toBe('1');
    } finally {
      await e.stop();
    }
    const t = await startEtcd({ tls: true });
    try {
      expect(t.endpoint).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      execFileSync('etcdctl', ['put', 'k', 'v'], { env: { ...process.env, ...t.etcdctlEnv } });
    } finally {
      await t.stop();
    }
  });
});
