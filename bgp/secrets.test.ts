import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { secretResolverFromDir } from './secrets.js';

const dir = mkdtempSync(join(tmpdir(), 'ptbg-sec-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('secretResolverFromDir', () => {
  it('reads <dir>/<name>/<key> like a mounted Secret, refuses path tricks', () => {
    mkdirSync(join(dir, 'bgp-secrets'));
    writeFileSync(join(dir, 'bgp-secrets', 'rr-password'), 's3cret\n');
    writeFileSync(join(dir, 'outside'), 'no');
    const r = secretResolverFromDir(dir);
    expect(r({ name: 'bgp-secrets', key: 'rr-password' })).toBe('s3cret');
    expect(r({ name: 'bgp-secrets', key: 'missing' })).toBeUndefined();
    expect(r({ name: '..', key: 'outside' })).toBeUndefined();
    expect(r({ name: 'bgp-secrets/..', key: 'outside' })).toBeUndefined();
  });
});
