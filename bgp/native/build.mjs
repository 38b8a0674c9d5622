// Builds the socket-option addon (bgp/native) with node-gyp against the running Node's own
// headers (no download). Run by `npm ci`/`npm install` (package.json "install" script).
// A failed build is reported but does not fail the install: the speaker then runs without
// TCP-MD5/TTL-security and reports peers that need them as not configurable.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const nodedir = resolve(dirname(process.execPath), '..');
const candidates = [
  process.env.npm_config_node_gyp,
  join(dirname(process.execPath), '../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'),
  '/usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js',
  '/usr/local/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js',
].filter((p) => p && existsSync(p));
const args = ['rebuild', `--directory=${here}`];
if (existsSync(join(nodedir, 'include/node/common.gypi'))) args.push(`--nodedir=${nodedir}`);
const r = candidates.length
  ? spawnSync(process.execPath, [candidates[0], ...args], { stdio: 'inherit' })
  : spawnSync('node-gyp', args, { stdio: 'inherit' });
if (r.status !== 0) {
  console.error('petrel: building bgp/native failed; TCP-MD5 and TTL security will be unavailable');
}
