// The shipped deployment, checked without a cluster or a Docker engine: every manifest parses,
// names and ports are consistent, env names are the CONTRACT's, RBAC covers exactly what the
// Kubernetes backend reads and writes, the Dockerfile builds what the manifests run.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { API_TYPES } from '../../datastore/kubernetes/index.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DEPLOY = join(ROOT, 'deploy');

/** CONTRACT §1 environment variables (common + agent). */
const CONTRACT_ENV = [
  'DATASTORE_TYPE',
  'DATASTORE_PATH',
  'ETCD_ENDPOINTS',
  'ETCD_CA_CERT_FILE',
  'ETCD_CERT_FILE',
  'ETCD_KEY_FILE',
  'KUBECONFIG',
  'NODENAME',
  'LOG_LEVEL',
  'PETREL_HEALTH_HOST',
  'PETREL_HEALTH_PORT',
  'PETREL_DATAPLANE',
  'PETREL_BGP',
];

interface Obj {
  file: string;
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [k: string]: any;
}

function walk(dir: string): string[] {
  return readdirSync(dir)
    .flatMap((f) => (statSync(join(dir, f)).isDirectory() ? walk(join(dir, f)) : [join(dir, f)]))
    .sort();
}

function load(dir: string): Obj[] {
  const out: Obj[] = [];
  for (const f of walk(dir).filter((p) => /\.ya?ml$/.test(p))) {
    const docs = parseAllDocuments(readFileSync(f, 'utf8')) as any[];
    docs.forEach((d, i) => {
      expect(d.errors, `${relative(ROOT, f)} document ${i}`).toEqual([]);
      const v = d.toJS();
      if (v) out.push({ file: relative(ROOT, f), ...v });
    });
  }
  return out;
}

const find = (objs: Obj[], kind: string, name?: string) => objs.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
const one = (objs: Obj[], kind: string, name?: string) => {
  const l = find(objs, kind, name);
  expect(l.length, `exactly one ${kind} ${name ?? ''}`).toBe(1);
  return l[0];
};
const matches = (selector: Record<string, string>, labels: Record<string, string> = {}) =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);

const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
const IMAGE = /docker build -t (\S+) \./.exec(dockerfile)?.[1];

describe('deploy/: every manifest parses', () => {
  it('YAML and JSON files parse; every object has apiVersion, kind, metadata.name', () => {
    const files = walk(DEPLOY);
    expect(files.length).toBeGreaterThan(8);
    for (const f of files) {
      if (f.endsWith('.json')) expect(() => JSON.parse(readFileSync(f, 'utf8')), f).not.toThrow();
    }
    for (const o of load(DEPLOY)) {
      expect(typeof o.apiVersion, o.file).toBe('string');
      expect(typeof o.kind, o.file).toBe('string');
      expect(o.metadata?.name, o.file).toMatch(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/);
    }
  });
});

describe.each(['kubernetes', 'etcd'])('deploy/%s: names, ports, env consistent', (variant) => {
  const objs = load(join(DEPLOY, variant));
  const ds = one(objs, 'DaemonSet', 'petrel-node');
  const pod = ds.spec.template.spec;
  const cm = one(objs, 'ConfigMap', 'petrel-config');
  const allContainers = [...(pod.initContainers ?? []), ...pod.containers];
  const agent = pod.containers.find((c: any) => c.name === 'petrel-node');

  it('DaemonSet: selector ↔ template labels, hostNetwork, privileged, tolerates everything', () => {
    expect(matches(ds.spec.selector.matchLabels, ds.spec.template.metadata.labels)).toBe(true);
    expect(pod.hostNetwork).toBe(true);
    expect(pod.dnsPolicy).toBe('ClusterFirstWithHostNet');
    expect(pod.tolerations).toContainEqual({ operator: 'Exists' });
    for (const c of allContainers) expect(c.securityContext?.privileged, c.name).toBe(true);
    expect(agent.args).toEqual(['agent']);
  });

  it('serviceAccountName ↔ ServiceAccount; ClusterRoleBinding ↔ ClusterRole and ServiceAccount', () => {
    const sa = one(objs, 'ServiceAccount', pod.serviceAccountName);
    expect(sa.metadata.namespace).toBe(ds.metadata.namespace);
    for (const b of find(objs, 'ClusterRoleBinding')) {
      expect(b.roleRef.kind).toBe('ClusterRole');
      one(objs, 'ClusterRole', b.roleRef.name);
      for (const s of b.subjects) {
        expect(s.kind).toBe('ServiceAccount');
        const target = one(objs, 'ServiceAccount', s.name);
        expect(s.namespace).toBe(target.metadata.namespace);
      }
    }
  });

  it('every configMapKeyRef / secret / volume reference resolves', () => {
    const volumes = new Map<string, any>(pod.volumes.map((v: any) => [v.name, v]));
    for (const c of allContainers) {
      for (const m of c.volumeMounts ?? []) expect(volumes.has(m.name), `${c.name} mounts ${m.name}`).toBe(true);
      for (const e of c.env ?? []) {
        const ref = e.valueFrom?.configMapKeyRef;
        if (ref) {
          expect(ref.name, `${c.name} ${e.name}`).toBe(cm.metadata.name);
          expect(Object.keys(cm.data), `${c.name} ${e.name} → key ${ref.key}`).toContain(ref.key);
        }
      }
    }
    for (const v of volumes.values()) {
      if (v.secret) one(objs, 'Secret', v.secret.secretName);
      if (v.configMap) one(objs, 'ConfigMap', v.configMap.name);
      expect(allContainers.some((c: any) => (c.volumeMounts ?? []).some((m: any) => m.name === v.name)), `volume ${v.name} used`).toBe(true);
    }
    // The CNI network config template is JSON once filled.
    const filled = String(cm.data.cni_network_config).replace(/__CNI_MTU__/g, '1450').replace(/__[A-Z_]+__/g, 'x');
    expect(() => JSON.parse(filled)).not.toThrow();
  });

  it('agent env names are CONTRACT §1 names, each read by agent/cli.ts; installer env is what petrel-cni install reads', () => {
    const cli = readFileSync(join(ROOT, 'agent', 'cli.ts'), 'utf8');
    for (const e of agent.env) {
      expect(CONTRACT_ENV, e.name).toContain(e.name);
      expect(cli, `agent/cli.ts reads ${e.name}`).toContain(e.name);
    }
    expect(agent.env.map((e: any) => e.name)).toEqual(expect.arrayContaining(['DATASTORE_TYPE', 'NODENAME', 'PETREL_HEALTH_PORT']));
    expect(agent.env.find((e: any) => e.name === 'NODENAME').valueFrom.fieldRef.fieldPath).toBe('spec.nodeName');
    if (variant === 'etcd') expect(agent.env.map((e: any) => e.name)).toEqual(expect.arrayContaining(['ETCD_ENDPOINTS', 'ETCD_CA_CERT_FILE', 'ETCD_CERT_FILE', 'ETCD_KEY_FILE']));
    const install = readFileSync(join(ROOT, 'cni', 'install.ts'), 'utf8');
    const init = pod.initContainers.find((c: any) => c.name === 'install-cni');
    expect(init.command.join(' ')).toMatch(/node \/opt\/petrel\/dist\/cni\/main\.js install/);
    for (const e of init.env) expect(install, `cni/install.ts reads ${e.name}`).toContain(e.name);
    const dsType = agent.env.find((e: any) => e.name === 'DATASTORE_TYPE');
    expect(cm.data[dsType.valueFrom.configMapKeyRef.key]).toBe(variant === 'etcd' ? 'etcdv3' : 'kubernetes');
  });

  it('health port: probes, containerPort, PETREL_HEALTH_PORT, Prometheus annotations agree', () => {
    const port = Number(agent.env.find((e: any) => e.name === 'PETREL_HEALTH_PORT').value);
    expect(port).toBe(9099);
    expect(agent.livenessProbe.httpGet).toMatchObject({ path: '/liveness', port });
    expect(agent.readinessProbe.httpGet).toMatchObject({ path: '/readiness', port });
    expect(agent.ports).toContainEqual(expect.objectContaining({ name: 'http-metrics', containerPort: port }));
    const ann = ds.spec.template.metadata.annotations;
    expect(ann).toMatchObject({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(port), 'prometheus.io/path': '/metrics' });
  });

  it('images are the one the Dockerfile documents, tagged with the package version', () => {
    expect(IMAGE).toBe(`ghcr.io/petrel-project/petrel:v${pkg.version}`);
    for (const c of allContainers) expect(c.image, c.name).toBe(IMAGE);
  });
});

describe('install-cni init scripts (run with sh against temp directories)', () => {
  const script = (variant: string) => {
    const ds = one(load(join(DEPLOY, variant)), 'DaemonSet', 'petrel-node');
    const init = ds.spec.template.spec.initContainers.find((c: any) => c.name === 'install-cni');
    expect(init.command.slice(0, 2)).toEqual(['sh', '-c']);
    return init.command[2] as string;
  };
  const runScript = (text: string, root: string, env: Record<string, string>) => {
    // Re-root the container paths into the temp dir; stop before the real installer.
    const body = text
      .replaceAll('/var/run/petrel-cni-token', `${root}/token`)
      .replaceAll('/etc/petrel/etcd-secrets', `${root}/secrets`)
      .replaceAll('/host/', `${root}/host/`)
      .replace(/exec node \/opt\/petrel\/dist\/cni\/main\.js install/, 'env | grep ^ETCD_ | sort > "$0.env"');
    return execFileSync('sh', ['-c', body, join(root, 'out')], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, encoding: 'utf8' });
  };

  it('kubernetes: writes a 0600 kubeconfig with the token, CA and API address for the host CNI plugin', () => {
    const root = mkdtempSync(join(tmpdir(), 'petrel-init-'));
    try {
      mkdirSync(join(root, 'token'));
      writeFileSync(join(root, 'token', 'ca.crt'), 'CA-PEM');
      writeFileSync(join(root, 'token', 'token'), 'tok-123');
      runScript(script('kubernetes'), root, { KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' });
      const path = join(root, 'host', 'etc', 'cni', 'net.d', 'petrel-kubeconfig');
      expect(statSync(path).mode & 0o777).toBe(0o600);
      const kc = parseYaml(readFileSync(path, 'utf8'));
      expect(kc.clusters[0].cluster.server).toBe('https://[fd00::1]:443');
      expect(Buffer.from(kc.clusters[0].cluster['certificate-authority-data'], 'base64').toString()).toBe('CA-PEM');
      expect(kc.users[0].user.token).toBe('tok-123');
      expect(kc['current-context']).toBe('petrel-cni');
      const ds = one(load(join(DEPLOY, 'kubernetes')), 'DaemonSet', 'petrel-node');
      const env = ds.spec.template.spec.initContainers[0].env.find((e: any) => e.name === 'KUBECONFIG_FILEPATH');
      expect(env.value).toBe('/etc/cni/net.d/petrel-kubeconfig');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('etcd: copies the TLS files for the host CNI plugin and points the installer at them; none when the Secret is empty', () => {
    const root = mkdtempSync(join(tmpdir(), 'petrel-init-'));
    try {
      mkdirSync(join(root, 'secrets'));
      runScript(script('etcd'), root, {});
      expect(readFileSync(join(root, 'out.env'), 'utf8')).toBe('ETCD_CA_CERT_FILE=\nETCD_CERT_FILE=\nETCD_KEY_FILE=\n');
      for (const f of ['etcd-ca', 'etcd-cert', 'etcd-key']) writeFileSync(join(root, 'secrets', f), `${f}-pem`);
      runScript(script('etcd'), root, {});
      expect(readFileSync(join(root, 'out.env'), 'utf8')).toBe(
        'ETCD_CA_CERT_FILE=/etc/cni/net.d/petrel-tls/etcd-ca\nETCD_CERT_FILE=/etc/cni/net.d/petrel-tls/etcd-cert\nETCD_KEY_FILE=/etc/cni/net.d/petrel-tls/etcd-key\n',
      );
      const key = join(root, 'host', 'etc', 'cni', 'net.d', 'petrel-tls', 'etcd-key');
      expect(readFileSync(key, 'utf8')).toBe('etcd-key-pem');
      expect(statSync(key).mode & 0o777).toBe(0o600);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('deploy/kubernetes: RBAC is exactly what the Kubernetes backend uses', () => {
  const objs = load(join(DEPLOY, 'kubernetes'));
  const role = one(objs, 'ClusterRole', 'petrel-node');
  const allowed = (group: string, resource: string) =>
    new Set<string>(role.rules.filter((r: any) => r.apiGroups.includes(group) && r.resources.includes(resource)).flatMap((r: any) => r.verbs));

  it('no wildcards', () => {
    for (const r of role.rules) {
      expect(r.verbs).not.toContain('*');
      expect(r.resources).not.toContain('*');
      expect(r.apiGroups).not.toContain('*');
    }
  });

  it('list and watch for every kind the backend watches', () => {
    for (const t of API_TYPES) {
      const v = allowed(t.group, t.plural);
      expect([...v], `${t.group}/${t.plural}`).toEqual(expect.arrayContaining(['list', 'watch']));
    }
  });

  it('writes only where Petrel writes: IPAM CRDs, the Calico Node, the node status', () => {
    const writes = ['create', 'update', 'patch', 'delete'];
    for (const r of role.rules) {
      for (const res of r.resources) {
        const w = r.verbs.filter((v: string) => writes.includes(v));
        if (w.length === 0) continue;
        expect(['ipamblocks', 'blockaffinities', 'ipamhandles', 'nodes', 'nodes/status'], `${r.apiGroups} ${res} ${w}`).toContain(res);
        if (res === 'nodes') expect(r.apiGroups).toEqual(['crd.projectcalico.org']);
      }
    }
    for (const res of ['ipamblocks', 'blockaffinities', 'ipamhandles']) {
      expect([...allowed('crd.projectcalico.org', res)]).toEqual(expect.arrayContaining(['get', 'create', 'update', 'delete']));
    }
  });

  it('every CRD Petrel uses is shipped in deploy/crds and readable; nothing else is granted', () => {
    const crds = load(join(DEPLOY, 'crds')).filter((o) => o.kind === 'CustomResourceDefinition');
    const shipped = new Set(crds.map((c) => c.spec.names.plural));
    const used = API_TYPES.filter((t) => t.crd).map((t) => t.plural);
    for (const plural of used) {
      expect([...allowed('crd.projectcalico.org', plural)], plural).toEqual(expect.arrayContaining(['get', 'list', 'watch']));
      // Calico does not install CRDs for the kinds it derives (workload endpoints, profiles).
      if (!['workloadendpoints', 'profiles'].includes(plural)) expect(shipped.has(plural), `deploy/crds has ${plural}`).toBe(true);
    }
    expect([...allowed('crd.projectcalico.org', 'ipamconfigs')]).toEqual(['get']);
    const granted = role.rules.filter((r: any) => r.apiGroups.includes('crd.projectcalico.org')).flatMap((r: any) => r.resources);
    for (const g of granted) expect([...used, 'ipamconfigs'], `granted ${g} is used`).toContain(g);
  });

  it('the metrics Service and ServiceMonitor select the agents and name the same port', () => {
    const ds = one(objs, 'DaemonSet', 'petrel-node');
    const svc = one(objs, 'Service', 'petrel-node-metrics');
    expect(matches(svc.spec.selector, ds.spec.template.metadata.labels)).toBe(true);
    const sm = one(load(join(DEPLOY, 'monitoring')), 'ServiceMonitor', 'petrel-node');
    expect(matches(sm.spec.selector.matchLabels, svc.metadata.labels)).toBe(true);
    expect(sm.spec.namespaceSelector.matchNames).toContain(svc.metadata.namespace);
    expect(svc.spec.ports.map((p: any) => p.name)).toContain(sm.spec.endpoints[0].port);
    expect(svc.spec.ports[0].targetPort).toBe(9099);
  });
});

describe('deploy/monitoring: Grafana dashboard', () => {
  it('queries only metrics Petrel exports (or prom-client process metrics)', () => {
    const dash = JSON.parse(readFileSync(join(DEPLOY, 'monitoring', 'grafana-dashboard.json'), 'utf8'));
    const sources = ['agent', 'bgp', 'routes', 'acl', 'datastore', 'cni']
      .flatMap((d) => walk(join(ROOT, d)))
      .filter((f) => f.endsWith('.ts'))
      .map((f) => readFileSync(f, 'utf8'))
      .join('\n');
    const exprs: string[] = dash.panels.flatMap((p: any) => (p.targets ?? []).map((t: any) => t.expr));
    expect(exprs.length).toBeGreaterThan(15);
    const names = new Set(exprs.flatMap((e) => e.match(/\b(petrel|process)_[a-z0-9_]+/g) ?? []));
    for (const n of names) {
      if (n.startsWith('process_')) continue;
      const base = n.replace(/_(bucket|sum|count)$/, '');
      expect(sources, `metric ${base} is defined somewhere`).toContain(`'${base}'`);
    }
    for (const want of ['petrel_bgp_session_state', 'petrel_bgp_prefixes_received', 'petrel_route_sync_duration_seconds_bucket', 'petrel_iptables_restore_errors_total']) {
      expect([...names]).toContain(want);
    }
  });
});

describe('Dockerfile: the recipe the manifests rely on', () => {
  const lines = dockerfile
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const ignore = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter(Boolean);

  it('multi-stage on node:20-bookworm-slim: npm ci, build, prune; runtime has iproute2 iptables ipset', () => {
    expect(lines).toContain('ARG NODE_IMAGE=node:20-bookworm-slim');
    expect(lines.filter((l) => l.startsWith('FROM '))).toEqual(['FROM ${NODE_IMAGE} AS build', 'FROM ${NODE_IMAGE} AS runtime']);
    const run = lines.filter((l) => l.startsWith('RUN ')).join('\n');
    expect(run).toMatch(/npm ci/);
    expect(run).toMatch(/npm run build && npm prune --omit=dev/);
    const runtime = lines.slice(lines.indexOf('FROM ${NODE_IMAGE} AS runtime'));
    expect(runtime.join('\n')).toMatch(/apt-get install -y --no-install-recommends iproute2 iptables ipset/);
    expect(lines).toContain('ENTRYPOINT ["node", "--max-semi-space-size=2", "/opt/petrel/dist/agent/cli.js"]');
    expect(lines).toContain('CMD ["agent"]');
    expect(lines).toContain('WORKDIR /opt/petrel');
  });

  it('every COPY source exists and is not excluded by .dockerignore; bin targets come from sources', () => {
    for (const l of lines.filter((x) => x.startsWith('COPY ') && !x.includes('--from='))) {
      const parts = l.split(/\s+/).slice(1, -1);
      for (const p of parts) {
        expect(existsSync(join(ROOT, p)), `${p} exists`).toBe(true);
        expect(ignore, `${p} not in .dockerignore`).not.toContain(p);
      }
    }
    // npm ci's install script needs bgp/native before it runs.
    expect(lines.findIndex((l) => l.startsWith('COPY bgp/native'))).toBeLessThan(lines.findIndex((l) => l.startsWith('RUN npm ci')));
    for (const bin of Object.values(pkg.bin) as string[]) {
      const src = bin.replace(/^dist\//, '').replace(/\.js$/, '.ts');
      expect(existsSync(join(ROOT, src)), src).toBe(true);
    }
    expect(pkg.scripts.build).toMatch(/tsc/);
  });
});
