// `petrel ctl` round trip on the file datastore (in-process through runCtl, and through the
// real binary), all-or-nothing apply, exit codes, secrets, node status against a live /status.
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { runCtl } from '../../agent/ctl/index.js';
import { kindOf } from '../../datastore/types.js';
import { tempDir } from '../file-datastore/helpers.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const FIXTURES = join(ROOT, 'test', 'fixtures', 'calico');

async function ctl(dir: string, ...args: string[]): Promise<{ code: number; out: string; err: string; stdin?: string }> {
  let out = '';
  let err = '';
  const code = await runCtl(['--datastore-path', dir, ...args], { out: (t) => void (out += t), err: (t) => void (err += t) });
  return { code, out, err };
}

async function ctlStdin(dir: string, stdin: string, ...args: string[]) {
  let out = '';
  let err = '';
  const code = await runCtl(['--datastore-path', dir, ...args], {
    out: (t) => void (out += t),
    err: (t) => void (err += t),
    stdin: async () => stdin,
  });
  return { code, out, err };
}

const POOLS = `apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: pool-a
spec:
  cidr: 10.10.0.0/16
  natOutgoing: true
---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: pool-b
spec:
  cidr: 10.20.0.0/16
  vxlanMode: CrossSubnet
  nodeSelector: rack == "r1"
`;

function listFiles(dir: string, base = ''): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(dir, base), { withFileTypes: true })) {
    const rel = base ? `${base}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...listFiles(dir, rel));
    else out.push(rel);
  }
  return out.sort();
}

describe('petrel ctl on the file datastore', () => {
  let dir: string;
  let work: string;
  let cleanups: (() => void)[] = [];

  beforeEach(() => {
    const a = tempDir('petrel-ctl-ds-');
    const b = tempDir('petrel-ctl-in-');
    dir = a.dir;
    work = b.dir;
    cleanups = [a.cleanup, b.cleanup];
  });
  afterEach(() => cleanups.forEach((c) => c()));

  it('apply, get -o table|wide|yaml|json, kinds by any name, replace conflict, delete', async () => {
    writeFileSync(join(work, 'pools.yaml'), POOLS);
    let r = await ctl(dir, 'apply', '-f', join(work, 'pools.yaml'));
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toBe("Successfully applied 2 'IPPool' resource(s)\n");
    expect(listFiles(dir)).toEqual(['ippools/pool-a.yaml', 'ippools/pool-b.yaml']);

    for (const word of ['ippool', 'ippools', 'pool', 'IPPool']) {
      r = await ctl(dir, 'get', word);
      expect(r.code).toBe(0);
      const lines = r.out.trimEnd().split('\n');
      expect(lines[0]).toMatch(/^NAME\s{3,}CIDR\s{3,}SELECTOR$/);
      expect(lines[1]).toMatch(/^pool-a\s+10\.10\.0\.0\/16\s+all\(\)$/);
      expect(lines[2]).toMatch(/^pool-b\s+10\.20\.0\.0\/16\s+rack == "r1"$/);
      // columns aligned
      expect(lines[1].indexOf('10.10')).toBe(lines[0].indexOf('CIDR'));
    }
    r = await ctl(dir, 'get', 'ippools', '-o', 'wide');
    expect(r.out.split('\n')[0]).toMatch(/NAME\s+CIDR\s+NAT\s+IPIPMODE\s+VXLANMODE\s+DISABLED\s+DISABLEBGPEXPORT\s+SELECTOR/);
    expect(r.out).toMatch(/pool-b\s+10\.20\.0\.0\/16\s+false\s+Never\s+CrossSubnet\s+false\s+false/);

    r = await ctl(dir, 'get', 'ippool', 'pool-a', '-o', 'yaml');
    expect(r.code).toBe(0);
    const a = parseYaml(r.out);
    expect(a).toMatchObject({ apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: 'pool-a' }, spec: { cidr: '10.10.0.0/16' } });
    const rv = a.metadata.resourceVersion;
    expect(rv).toMatch(/^[0-9a-f]{16}$/);

    r = await ctl(dir, 'get', 'ippools', '-o', 'json');
    const list = JSON.parse(r.out);
    expect(list.kind).toBe('IPPoolList');
    expect(list.items.map((i: any) => i.metadata.name)).toEqual(['pool-a', 'pool-b']);

    // replace with the current resourceVersion works; again with the old one conflicts.
    a.spec.cidr = '10.11.0.0/16';
    writeFileSync(join(work, 'a.yaml'), JSON.stringify(a));
    r = await ctl(dir, 'replace', '-f', join(work, 'a.yaml'));
    expect([r.code, r.out]).toEqual([0, "Successfully replaced 1 'IPPool' resource(s)\n"]);
    a.spec.cidr = '10.12.0.0/16';
    writeFileSync(join(work, 'a.yaml'), JSON.stringify(a));
    r = await ctl(dir, 'replace', '-f', join(work, 'a.yaml'));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/IPPool\(pool-a\).*resourceVersion .* is stale/);
    expect(readFileSync(join(dir, 'ippools', 'pool-a.yaml'), 'utf8')).toContain('10.11.0.0/16');

    // create of an existing resource fails and writes nothing.
    r = await ctl(dir, 'create', '-f', join(work, 'pools.yaml'));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/resource already exists: IPPool\(pool-a\)/);

    // stdin
    r = await ctlStdin(dir, POOLS.replace('10.20.0.0/16', '10.21.0.0/16'), 'apply', '-f', '-');
    expect(r.code).toBe(0);
    expect(readFileSync(join(dir, 'ippools', 'pool-b.yaml'), 'utf8')).toContain('10.21.0.0/16');

    r = await ctl(dir, 'delete', 'pool', 'pool-a');
    expect([r.code, r.out]).toEqual([0, "Successfully deleted 1 'IPPool' resource(s)\n"]);
    r = await ctl(dir, 'delete', 'ippool', 'pool-a');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/resource does not exist: IPPool\(pool-a\)/);
    r = await ctl(dir, 'delete', '-f', join(work, 'pools.yaml'), '--skip-not-exists');
    expect(r.code).toBe(0);
    expect(listFiles(dir)).toEqual([]);
    r = await ctl(dir, 'get', 'ippool', 'pool-a');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/resource does not exist: IPPool\(pool-a\)/);
  });

  it('one invalid document among valid ones: nothing written, exit 1, names file, document and field', async () => {
    const bad = `${POOLS}---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: pool-c
spec:
  cidr: 10.30.0.0/33
`;
    writeFileSync(join(work, 'mixed.yaml'), bad);
    writeFileSync(join(dir, 'existing.yaml'), POOLS.split('---')[0]);
    const before = readFileSync(join(dir, 'existing.yaml'), 'utf8');
    const r = await ctl(dir, 'apply', '-f', join(work, 'mixed.yaml'));
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    expect(r.err).toContain(join(work, 'mixed.yaml'));
    expect(r.err).toMatch(/document 2/);
    expect(r.err).toMatch(/pool-c/);
    expect(r.err).toMatch(/spec\.cidr/);
    expect(r.err).toMatch(/Nothing was written/);
    expect(listFiles(dir)).toEqual(['existing.yaml']);
    expect(readFileSync(join(dir, 'existing.yaml'), 'utf8')).toBe(before);

    // A YAML syntax error: also exit 1 naming the document.
    writeFileSync(join(work, 'syntax.yaml'), `${POOLS}---\nkind: [oops\n`);
    const s = await ctl(dir, 'apply', '-f', join(work, 'syntax.yaml'));
    expect(s.code).toBe(1);
    expect(s.err).toMatch(/syntax\.yaml: document 2: YAML syntax error at line \d+/);
    expect(listFiles(dir)).toEqual(['existing.yaml']);

    // Unknown kind word, bad flags: exit 1.
    expect((await ctl(dir, 'get', 'frobnicators')).code).toBe(1);
    expect((await ctl(dir, 'get', 'ippools', '-o', 'xml')).code).toBe(1);
    expect((await ctl(dir, 'apply')).code).toBe(1);
  });

  it('a resource defined in a hand-written file is rewritten in place by apply', async () => {
    writeFileSync(join(dir, 'cluster.yaml'), `# pools of this cluster\n${POOLS}`);
    writeFileSync(join(work, 'b.yaml'), POOLS.split('---\n')[1].replace('10.20.0.0/16', '10.22.0.0/16'));
    const r = await ctl(dir, 'apply', '-f', join(work, 'b.yaml'));
    expect(r.code).toBe(0);
    expect(listFiles(dir)).toEqual(['cluster.yaml']);
    const docs = parseAllDocuments(readFileSync(join(dir, 'cluster.yaml'), 'utf8')) as any[];
    expect(docs.map((d) => d.toJS().spec.cidr)).toEqual(['10.10.0.0/16', '10.22.0.0/16']);
    expect(readFileSync(join(dir, 'cluster.yaml'), 'utf8')).toContain('# pools of this cluster');
  });

  it('every Calico sample under test/fixtures/calico applies unchanged and reads back', async () => {
    const files = readdirSync(FIXTURES).filter((f) => /\.(ya?ml|json)$/.test(f)).sort();
    expect(files.length).toBeGreaterThanOrEqual(12);
    for (const f of files) {
      const r = await ctl(dir, 'apply', '-f', join(FIXTURES, f));
      // Fields Petrel does not implement are reported as warnings naming the field, never errors.
      const errors = r.err.split('\n').filter((l) => l && !/^warning: .*document \d+: [\w.[\]]+: /.test(l));
      expect({ f, code: r.code, errors }).toEqual({ f, code: 0, errors: [] });
      for (const d of parseAllDocuments(readFileSync(join(FIXTURES, f), 'utf8')) as any[]) {
        const raw = d.toJS();
        if (!raw) continue;
        const info = kindOf(raw.apiVersion, raw.kind)!;
        const args = ['get', info.aliases[0], raw.metadata.name, '-o', 'json', '--show-secrets'];
        if (raw.metadata.namespace) args.push('-n', raw.metadata.namespace);
        const g = await ctl(dir, ...args);
        expect({ f, code: g.code, err: g.err }).toEqual({ f, code: 0, err: '' });
        expect(JSON.parse(g.out).metadata.name).toBe(raw.metadata.name);
      }
    }
    // The datastore directory, read back as a whole, has no errors.
    const all = await ctl(dir, 'get', 'ippools', '-o', 'yaml');
    expect(all.code).toBe(0);
  });

  it('secrets are <redacted> unless --show-secrets', async () => {
    writeFileSync(
      join(work, 'peer.yaml'),
      `apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata:
  name: tor
spec:
  peerIP: 10.0.0.1
  asNumber: 64600
  password:
    secretKeyRef:
      name: bgp-secrets
      key: tor-password
`,
    );
    expect((await ctl(dir, 'apply', '-f', join(work, 'peer.yaml'))).code).toBe(0);
    const hidden = await ctl(dir, 'get', 'bgppeer', 'tor', '-o', 'yaml');
    expect(hidden.out).not.toContain('bgp-secrets');
    expect(hidden.out).not.toContain('tor-password');
    expect(parseYaml(hidden.out).spec.password).toEqual({ secretKeyRef: { name: '<redacted>', key: '<redacted>' } });
    const shown = await ctl(dir, 'get', 'bgppeer', 'tor', '-o', 'json', '--show-secrets');
    expect(JSON.parse(shown.out).spec.password.secretKeyRef).toEqual({ name: 'bgp-secrets', key: 'tor-password' });
    const table = await ctl(dir, 'get', 'bgppeers');
    expect(table.out).toMatch(/^NAME\s+PEERIP\s+NODE\s+ASN\ntor\s+10\.0\.0\.1\s+\(global\)\s+64600\n$/);
  });

  it('get weps / profiles include what Pods, Namespaces and ServiceAccounts become', async () => {
    writeFileSync(
      join(work, 'pod.yaml'),
      `apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: v1
kind: Pod
metadata:
  name: web-0
  namespace: shop
  labels: { app: web }
spec:
  nodeName: node-1
  serviceAccountName: default
  containers:
    - name: web
      image: nginx
status:
  podIP: 10.244.1.5
  podIPs:
    - ip: 10.244.1.5
`,
    );
    const a = await ctl(dir, 'apply', '-f', join(work, 'pod.yaml'));
    expect([a.code, a.err]).toEqual([0, '']);
    const w = await ctl(dir, 'get', 'weps', '-n', 'shop');
    expect(w.code).toBe(0);
    expect(w.out).toMatch(/^WORKLOAD\s+NODE\s+NETWORKS\s+INTERFACE\nweb-0\s+node-1\s+10\.244\.1\.5\/32\s+cali[0-9a-f]{11}\n$/);
    const p = await ctl(dir, 'get', 'profiles');
    expect(p.out).toContain('kns.shop');
  });

  it('namespaced kinds: -n, -A, default namespace', async () => {
    writeFileSync(
      join(work, 'np.yaml'),
      ['default', 'prod']
        .map(
          (ns) => `apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata:
  name: allow-web
  namespace: ${ns}
spec:
  selector: app == "web"
  ingress:
    - action: Allow
`,
        )
        .join('---\n'),
    );
    expect((await ctl(dir, 'apply', '-f', join(work, 'np.yaml'))).code).toBe(0);
    expect(existsSync(join(dir, 'networkpolicies', 'prod', 'allow-web.yaml'))).toBe(true);
    const def = await ctl(dir, 'get', 'networkpolicies');
    expect(def.out).toBe('NAME\nallow-web\n');
    const all = await ctl(dir, 'get', 'policy', '-A');
    expect(all.out).toMatch(/^NAMESPACE\s+NAME\ndefault\s+allow-web\nprod\s+allow-web\n$/);
    expect((await ctl(dir, 'delete', 'np', 'allow-web', '-n', 'prod')).code).toBe(0);
    expect((await ctl(dir, 'get', 'policy', 'allow-web', '-n', 'prod')).code).toBe(1);
  });
});

describe('petrel ctl: exit code 2 when the datastore or agent is unreachable', () => {
  it('file datastore directory missing', async () => {
    const r = await ctl('/nonexistent/petrel-ctl-test', 'get', 'ippools');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/does not exist/);
  });

  it('etcd endpoint refusing connections', async () => {
    const prev = process.env.PETREL_CTL_TIMEOUT_MS;
    process.env.PETREL_CTL_TIMEOUT_MS = '4000';
    try {
      // Port 9 (discard) on loopback: nothing listens there.
      const r = await runCtl(['--datastore-type', 'etcdv3', '--etcd-endpoints', 'http://127.0.0.1:9', 'get', 'ippools'], {
        out: () => undefined,
        err: () => undefined,
      });
      expect(r).toBe(2);
    } finally {
      if (prev === undefined) delete process.env.PETREL_CTL_TIMEOUT_MS;
      else process.env.PETREL_CTL_TIMEOUT_MS = prev;
    }
  });

  it('node status with no agent listening', async () => {
    let err = '';
    const code = await runCtl(['node', 'status', '--agent', 'http://127.0.0.1:9'], { out: () => undefined, err: (t) => void (err += t) });
    expect(code).toBe(2);
    expect(err).toMatch(/Petrel process is not running/);
  });
});

describe('petrel ctl node status', () => {
  let server: Server;
  let url: string;
  let body: unknown;
  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url === '/status') {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(body));
      } else {
        res.statusCode = 404;
        res.end();
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise((r) => server.close(r)));

  it('prints calicoctl node status: peers table per family, "No IPv6 peers found."', async () => {
    const since = new Date();
    since.setHours(9, 5, 7, 0);
    body = {
      node: 'node-1',
      datastore: { type: 'file', inSync: true, resources: { IPPool: 2 } },
      bgp: {
        asNumber: 64512,
        routerId: '10.0.0.1',
        peers: [
          { address: '10.0.0.3', asNumber: 64512, type: 'node-mesh', state: 'Active', since: since.toISOString(), info: 'Connection refused', prefixesReceived: 0, prefixesAdvertised: 0 },
          { address: '10.0.0.2', asNumber: 64512, type: 'node-mesh', state: 'Established', since: since.toISOString(), prefixesReceived: 3, prefixesAdvertised: 1 },
          { address: '192.168.50.1', asNumber: 64600, type: 'global', state: 'Established', since: since.toISOString(), prefixesReceived: 10, prefixesAdvertised: 2 },
        ],
      },
    };
    let out = '';
    const code = await runCtl(['node', 'status', '--agent', url], { out: (t) => void (out += t) });
    expect(code).toBe(0);
    const lines = out.split('\n');
    expect(lines[0]).toBe('Petrel process is running.');
    expect(lines[2]).toBe('IPv4 BGP status');
    expect(lines[4]).toMatch(/^\|\s+PEER ADDRESS\s+\|\s+PEER TYPE\s+\|\s+STATE\s+\|\s+SINCE\s+\|\s+INFO\s+\|\s+PREFIXES IN\s+\|\s+PREFIXES OUT\s+\|$/);
    expect(lines[6]).toMatch(/^\| 10\.0\.0\.2\s+\| node-to-node mesh \| up\s+\| 09:05:07 \| Established\s+\| 3\s+\| 1\s+\|$/);
    expect(lines[7]).toMatch(/^\| 10\.0\.0\.3\s+\| node-to-node mesh \| start \| 09:05:07 \| Active Connection refused \| 0\s+\| 0\s+\|$/);
    expect(lines[8]).toMatch(/^\| 192\.168\.50\.1\s+\| global\s+\| up\s+\|/);
    expect(out).toContain('IPv6 BGP status\nNo IPv6 peers found.\n');

    body = { node: 'node-1', bgp: { peers: [] } };
    out = '';
    expect(await runCtl(['node', 'status', '--agent', url], { out: (t) => void (out += t) })).toBe(0);
    expect(out).toBe('Petrel process is running.\n\nIPv4 BGP status\nNo IPv4 peers found.\n\nIPv6 BGP status\nNo IPv6 peers found.\n');
  });
});

describe('the real binary: node dist/agent/cli.js ctl', () => {
  const cli = join(ROOT, 'dist', 'agent', 'cli.js');
  const run = (args: string[], env: Record<string, string> = {}) =>
    new Promise<{ code: number; out: string; err: string }>((resolve) => {
      execFile(process.execPath, [cli, 'ctl', ...args], { env: { ...process.env, ...env, LOG_LEVEL: 'silent' }, timeout: 30_000 }, (e, out, err) =>
        resolve({ code: e ? ((e as any).code ?? 1) : 0, out, err }),
      );
    });

  it('is built (npm test builds first) and round-trips through the file datastore', async () => {
    expect(existsSync(cli), `${cli} missing: run "npm run build" (npm test does it)`).toBe(true);
    const { dir, cleanup } = tempDir('petrel-ctl-bin-');
    try {
      mkdirSync(join(dir, 'in'));
      const ds = join(dir, 'ds');
      mkdirSync(ds);
      writeFileSync(join(dir, 'in', 'pools.yaml'), POOLS);
      let r = await run(['apply', '-f', join(dir, 'in', 'pools.yaml')], { DATASTORE_PATH: ds });
      expect(r).toMatchObject({ code: 0, out: "Successfully applied 2 'IPPool' resource(s)\n" });
      r = await run(['--datastore-path', ds, 'get', 'pools']);
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/^NAME\s+CIDR\s+SELECTOR\npool-a\s+10\.10\.0\.0\/16\s+all\(\)\npool-b/);
      writeFileSync(join(dir, 'in', 'bad.yaml'), POOLS.replace('10.20.0.0/16', '300.1.0.0/16'));
      r = await run(['--datastore-path', ds, 'apply', '-f', join(dir, 'in', 'bad.yaml')]);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/document 1.*spec\.cidr/s);
      r = await run(['--datastore-path', join(dir, 'missing'), 'get', 'pools']);
      expect(r.code).toBe(2);
      // get -o yaml | apply -f - into another directory: stdout carries only the YAML.
      const ds2 = join(dir, 'ds2');
      mkdirSync(ds2);
      const yaml = (await run(['--datastore-path', ds, 'get', 'pools', '-o', 'yaml'])).out;
      const piped = spawnSync(process.execPath, [cli, 'ctl', '--datastore-path', ds2, 'apply', '-f', '-'], { input: yaml, encoding: 'utf8', timeout: 30_000 });
      expect([piped.status, piped.stdout]).toEqual([0, "Successfully applied 2 'IPPool' resource(s)\n"]);
      const ns = spawnSync(process.execPath, [cli, 'ctl', 'node', 'status', '--agent', 'http://127.0.0.1:9'], { encoding: 'utf8', timeout: 30_000 });
      expect(ns.status).toBe(2);
      expect(ns.stderr).toMatch(/Petrel process is not running/);
    } finally {
      cleanup();
    }
  });
});
