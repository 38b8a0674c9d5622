// The petrel CNI plugin driven as a container runtime drives it, against real etcd, in network
// namespaces: a "node" namespace (the plugin's host) and one namespace per pod.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEtcd, type EtcdHandle } from '../etcd.js';
import { NetNs, requireRoot } from '../netns.js';
import { type Installed, type NetNs as NS, createNode, execPlugin, forwardIntoNode, installPlugin, links, netnsPath, reach, routes, startEcho, runConflist, PREFIX } from './harness.js';

requireRoot();

let etcd: EtcdHandle;
let inst: Installed;
let node: NS;
let fwd: { port: number; close(): Promise<void> };
const pods: NS[] = [];
const NODE4 = '10.203.255.1';
const NODE6 = 'fd00:203:ffff::1';

const etcdctl = (...args: string[]) => execFileSync('etcdctl', args, { env: { ...process.env, ...etcd.etcdctlEnv } }).toString();
const keys = (prefix: string) => etcdctl('get', '--prefix', '--keys-only', prefix).split('\n').filter(Boolean);
const json = (key: string) => {
  const out = etcdctl('get', '--print-value-only', key).trim();
  return out ? JSON.parse(out) : undefined;
};

function conf(extra: Record<string, unknown> = {}, ipam: Record<string, unknown> = {}) {
  return {
    cniVersion: '1.0.0',
    name: 'k8s-pod-network',
    type: 'petrel',
    datastore_type: 'etcdv3',
    etcd_endpoints: `http://127.0.0.1:${fwd.port}`,
    nodename: 'node-a',
    mtu: 1400,
    ipam: { type: 'petrel-ipam', ...ipam },
    ...extra,
  };
}

async function newPod(): Promise<NS> {
  const p = await NetNs.create(PREFIX);
  pods.push(p);
  await startEcho(p);
  return p;
}

const call = (command: 'ADD' | 'DEL' | 'CHECK' | 'VERSION', c: unknown, pod: NS | undefined, id: string, podName?: string, extraEnv?: Record<string, string | undefined>) =>
  execPlugin(join(inst.binDir, 'petrel'), typeof c === 'string' ? c : JSON.stringify(c), {
    command,
    containerId: id,
    netns: pod ? netnsPath(pod) : undefined,
    ifname: 'eth0',
    args: podName ? `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=${podName};K8S_POD_INFRA_CONTAINER_ID=${id}` : undefined,
    cniPath: inst.cniPath,
    node,
    extraEnv,
  });

beforeAll(async () => {
  etcd = await startEtcd();
  const pool = (name: string, cidr: string, blockSize: number, extra = {}) =>
    etcdctl('put', `/calico/resources/v3/projectcalico.org/ippools/${name}`, JSON.stringify({ apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name }, spec: { cidr, blockSize, ...extra } }));
  pool('v4', '10.203.0.0/16', 26);
  pool('v4-other', '10.204.0.0/24', 28);
  pool('v6', 'fd00:203::/112', 122);
  inst = installPlugin();
  node = await createNode(NODE4, NODE6);
  await startEcho(node);
  fwd = await forwardIntoNode(node, Number(new URL(etcd.endpoint).port));
}, 120_000);

afterAll(async () => {
  for (const p of pods) await p.destroy();
  await fwd?.close();
  await node?.destroy();
  inst?.cleanup();
  await etcd?.stop();
});

describe('petrel-cni install', () => {
  it('installs petrel and petrel-ipam and a conflist whose only change from Calico is the type', () => {
    const list = JSON.parse(readFileSync(join(inst.netDir, '10-petrel.conflist'), 'utf8'));
    expect(list.plugins[0].type).toBe('petrel');
    expect(list.plugins[0].ipam.type).toBe('petrel-ipam');
    expect(list.plugins[1].type).toBe('portmap');
    expect(readFileSync(join(inst.binDir, 'petrel-ipam'), 'utf8')).toContain('process.argv.splice(2, 0, "ipam")');
  });
});

describe('petrel CNI plugin (etcd)', () => {
  it('VERSION lists the supported versions', async () => {
    const r = await call('VERSION', { cniVersion: '0.4.0' }, undefined, 'x');
    expect(r.code).toBe(0);
    expect(r.json).toEqual({ cniVersion: '0.4.0', supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0'] });
  });

  it('ADD gives a pod a working interface: it reaches the node and another pod; CHECK passes; DEL removes everything', async () => {
    const a = await newPod();
    const b = await newPod();
    const ra = await call('ADD', conf(), a, 'ctr-a-0001', 'pod-a');
    expect(ra.code, ra.stdout + ra.stderr).toBe(0);
    const rb = await call('ADD', conf(), b, 'ctr-b-0001', 'pod-b');
    expect(rb.code, rb.stdout + rb.stderr).toBe(0);
    const ipA = ra.json.ips[0].address.split('/')[0];
    const ipB = rb.json.ips[0].address.split('/')[0];
    expect(ra.json.cniVersion).toBe('1.0.0');
    expect(ra.json.ips[0]).toEqual({ address: `${ipA}/32`, interface: 1 });
    expect(ra.json.interfaces[0]).toEqual({ name: expect.stringMatching(/^cali[0-9a-f]{11}$/), mac: 'ee:ee:ee:ee:ee:ee' });
    expect(ra.json.interfaces[1]).toMatchObject({ name: 'eth0', sandbox: netnsPath(a) });
    expect(ra.json.routes).toEqual([{ dst: '0.0.0.0/0', gw: '169.254.1.1' }]);
    expect(ipA).toMatch(/^10\.203\./);
    expect(ipA).not.toBe(ipB);
    const hostIf = ra.json.interfaces[0].name;

    // Pod side as Calico configures it.
    const podRoutes = await routes(a);
    expect(podRoutes).toEqual(expect.arrayContaining([expect.objectContaining({ dst: 'default', gateway: '169.254.1.1', dev: 'eth0' })]));
    const { stdout: mtu } = await a.exec('cat', ['/sys/class/net/eth0/mtu']).catch(async () => a.exec('ip', ['-j', 'link', 'show', 'eth0']));
    expect(mtu).toContain('1400');
    // Host side: the veth and a /32 route to the pod.
    expect(await links(node)).toContain(hostIf);
    expect(await routes(node)).toEqual(expect.arrayContaining([expect.objectContaining({ dst: ipA, dev: hostIf, protocol: '80' })]));

    expect(await reach(a, NODE4)).toBe(true);
    expect(await reach(a, ipB)).toBe(true);

    // Datastore: the endpoint, the handle, the block claimed by affinity.
    const wep = json('/calico/resources/v3/projectcalico.org/workloadendpoints/default/node--a-k8s-pod--a-eth0');
    expect(wep.spec).toMatchObject({ node: 'node-a', pod: 'pod-a', containerID: 'ctr-a-0001', interfaceName: hostIf, ipNetworks: [`${ipA}/32`], orchestrator: 'k8s' });
    expect(keys('/calico/ipam/v2/host/node-a/ipv4/block/')).toHaveLength(1);
    const blockCidr = keys('/calico/ipam/v2/host/node-a/ipv4/block/')[0].split('/').pop()!.replace(/-(\d+)$/, '/$1');
    expect(json('/calico/ipam/v2/handle/k8s-pod-network.ctr-a-0001')).toEqual({ block: { [blockCidr]: 2 - 1 }, deleted: false });
    const blk = json(`/calico/ipam/v2/assignment/ipv4/block/${blockCidr.replace('/', '-')}`);
    expect(blk).toMatchObject({ cidr: blockCidr, affinity: 'host:node-a', deleted: false });
    expect(blk.attributes).toEqual(
      expect.arrayContaining([{ handle_id: 'k8s-pod-network.ctr-a-0001', secondary: expect.objectContaining({ node: 'node-a', namespace: 'default', pod: 'pod-a' }) }]),
    );
    expect(json(keys('/calico/ipam/v2/host/node-a/ipv4/block/')[0])).toEqual({ state: 'confirmed', deleted: false });

    const chk = await call('CHECK', { ...conf(), prevResult: ra.json }, a, 'ctr-a-0001', 'pod-a');
    expect(chk.code, chk.stdout).toBe(0);

    // Break the pod's route: CHECK must notice.
    await a.exec('ip', ['route', 'del', 'default']);
    const bad = await call('CHECK', { ...conf(), prevResult: ra.json }, a, 'ctr-a-0001', 'pod-a');
    expect(bad.code).not.toBe(0);
    expect(bad.json.msg).toMatch(/default route/);

    for (const [p, id, name] of [[a, 'ctr-a-0001', 'pod-a'], [b, 'ctr-b-0001', 'pod-b']] as const) {
      const d = await call('DEL', conf(), p, id, name);
      expect(d.code, d.stdout).toBe(0);
      expect(d.stdout).toBe('');
    }
    expect(await links(node)).not.toContain(hostIf);
    expect((await routes(node)).filter((r) => r.dst === ipA || r.dst === ipB)).toEqual([]);
    expect(await links(a)).not.toContain('eth0');
    expect(keys('/calico/resources/v3/projectcalico.org/workloadendpoints/')).toEqual([]);
    expect(keys('/calico/ipam/v2/handle/')).toEqual([]);
    const block = json(keys('/calico/ipam/v2/assignment/ipv4/block/')[0]);
    expect(block.allocations.every((x: unknown) => x === null)).toBe(true);
  });

  it('DEL without ADD succeeds, repeatedly, even without a netns', async () => {
    for (let i = 0; i < 2; i++) {
      const r = await call('DEL', conf(), undefined, 'never-added-1', 'ghost');
      expect(r.code, r.stdout).toBe(0);
    }
  });

  it('ADD twice for the same container is idempotent (same address, working interface)', async () => {
    const p = await newPod();
    const r1 = await call('ADD', conf(), p, 'ctr-twice-01', 'twice');
    const r2 = await call('ADD', conf(), p, 'ctr-twice-01', 'twice');
    expect(r1.code, r1.stdout).toBe(0);
    expect(r2.code, r2.stdout).toBe(0);
    expect(r2.json.ips).toEqual(r1.json.ips);
    expect(await reach(p, NODE4)).toBe(true);
    expect(json('/calico/ipam/v2/handle/k8s-pod-network.ctr-twice-01').block).toEqual({ [Object.keys(json('/calico/ipam/v2/handle/k8s-pod-network.ctr-twice-01').block)[0]]: 1 });
    expect((await call('DEL', conf(), p, 'ctr-twice-01', 'twice')).code).toBe(0);
  });

  it('a late DEL for an old sandbox of a pod leaves the new sandbox alone (interface, endpoint, address)', async () => {
    const oldNs = await newPod();
    const newNs = await newPod();
    const r1 = await call('ADD', conf(), oldNs, 'sandbox-old-1', 'recreated');
    expect(r1.code, r1.stdout).toBe(0);
    const r2 = await call('ADD', conf(), newNs, 'sandbox-new-2', 'recreated');
    expect(r2.code, r2.stdout).toBe(0);
    const newIp = r2.json.ips[0].address.split('/')[0];
    expect(newIp).not.toBe(r1.json.ips[0].address.split('/')[0]);
    const d = await call('DEL', conf(), oldNs, 'sandbox-old-1', 'recreated');
    expect(d.code, d.stdout).toBe(0);
    expect(await reach(newNs, NODE4)).toBe(true);
    expect(json('/calico/resources/v3/projectcalico.org/workloadendpoints/default/node--a-k8s-recreated-eth0').spec.containerID).toBe('sandbox-new-2');
    expect(keys('/calico/ipam/v2/handle/')).toContain('/calico/ipam/v2/handle/k8s-pod-network.sandbox-new-2');
    expect(keys('/calico/ipam/v2/handle/')).not.toContain('/calico/ipam/v2/handle/k8s-pod-network.sandbox-old-1');
    expect((await call('CHECK', { ...conf(), prevResult: r2.json }, newNs, 'sandbox-new-2', 'recreated')).code).toBe(0);
    expect((await call('DEL', conf(), newNs, 'sandbox-new-2', 'recreated')).code).toBe(0);
    expect(keys('/calico/resources/v3/projectcalico.org/workloadendpoints/')).toEqual([]);
  });

  it('a broken configuration gets the right error code and creates nothing', async () => {
    const p = await newPod();
    const before = { links: await links(node), ipam: keys('/calico/ipam/'), weps: keys('/calico/resources/v3/projectcalico.org/workloadendpoints/') };
    const cases: [string, unknown, Record<string, string | undefined> | undefined, number][] = [
      ['not JSON', '{"cniVersion":', undefined, 6],
      ['future version', conf({ cniVersion: '2.0.0' }), undefined, 1],
      ['no ipam', { ...conf(), ipam: undefined }, undefined, 7],
      ['bad mtu', conf({ mtu: 'huge' }), undefined, 7],
      ['unknown datastore', conf({ datastore_type: 'consul' }), undefined, 2],
      ['missing CNI_NETNS', conf(), { CNI_NETNS: undefined }, 4],
      ['bad CNI_ARGS', conf(), { CNI_ARGS: 'nonsense' }, 4],
      ['netns gone', conf(), { CNI_NETNS: '/run/netns/ptcn-does-not-exist' }, 3],
      ['etcd unreachable', conf({ etcd_endpoints: 'http://127.0.0.1:1' }), undefined, 11],
      ['no such pool', conf({}, { ipv4_pools: ['10.99.0.0/16'] }), undefined, 100],
    ];
    for (const [what, c, env, code] of cases) {
      const r = await call('ADD', c, p, 'ctr-broken-1', 'broken', env);
      expect(r.code, what).not.toBe(0);
      expect(r.json, `${what}: ${r.stdout}`).toMatchObject({ code, msg: expect.any(String) });
      expect(r.json.cniVersion, what).toBeTruthy();
    }
    expect(await links(node)).toEqual(before.links);
    expect(await links(p)).toEqual(['lo']);
    expect(keys('/calico/ipam/')).toEqual(before.ipam);
    expect(keys('/calico/resources/v3/projectcalico.org/workloadendpoints/')).toEqual(before.weps);
  });

  it('honours the ipv4pools annotation equivalent in the config and answers in the requested version', async () => {
    const p = await newPod();
    const r = await call('ADD', conf({ cniVersion: '0.4.0' }, { ipv4_pools: ['v4-other'] }), p, 'ctr-pool-01', 'pooled');
    expect(r.code, r.stdout).toBe(0);
    expect(r.json.cniVersion).toBe('0.4.0');
    expect(r.json.ips[0].version).toBe('4');
    expect(r.json.ips[0].address).toMatch(/^10\.204\.0\./);
    expect((await call('DEL', conf({ cniVersion: '0.4.0' }, { ipv4_pools: ['v4-other'] }), p, 'ctr-pool-01', 'pooled')).code).toBe(0);
  });

  it('dual stack: a /32 and a /128, IPv6 default via the host veth link-local; both reach the node and each other', async () => {
    const a = await newPod();
    const b = await newPod();
    const c = conf({}, { assign_ipv4: 'true', assign_ipv6: 'true' });
    const ra = await call('ADD', c, a, 'ctr-ds-a', 'ds-a');
    const rb = await call('ADD', c, b, 'ctr-ds-b', 'ds-b');
    expect(ra.code, ra.stdout + ra.stderr).toBe(0);
    expect(rb.code, rb.stdout).toBe(0);
    const v6a = ra.json.ips.find((i: any) => i.address.includes(':')).address;
    const v6b = rb.json.ips.find((i: any) => i.address.includes(':')).address.split('/')[0];
    expect(v6a).toMatch(/^fd00:203::[0-9a-f]+\/128$/);
    expect(ra.json.routes).toEqual([{ dst: '0.0.0.0/0', gw: '169.254.1.1' }, { dst: '::/0', gw: 'fe80::ecee:eeff:feee:eeee' }]);
    expect(await routes(a, true)).toEqual(expect.arrayContaining([expect.objectContaining({ dst: 'default', gateway: 'fe80::ecee:eeff:feee:eeee' })]));
    expect(await reach(a, NODE6)).toBe(true);
    expect(await reach(a, v6b)).toBe(true);
    expect(await reach(a, rb.json.ips[0].address.split('/')[0])).toBe(true);
    expect((await call('CHECK', { ...c, prevResult: ra.json }, a, 'ctr-ds-a', 'ds-a')).code).toBe(0);
    for (const [p, id, n] of [[a, 'ctr-ds-a', 'ds-a'], [b, 'ctr-ds-b', 'ds-b']] as const) expect((await call('DEL', c, p, id, n)).code).toBe(0);
    expect((await routes(node, true)).filter((r) => String(r.dst).startsWith('fd00:203::') && r.dst !== NODE6)).toEqual([]);
  });

  it('IPv6 only', async () => {
    const p = await newPod();
    const c = conf({}, { assign_ipv4: 'false', assign_ipv6: 'true' });
    const r = await call('ADD', c, p, 'ctr-v6-only', 'v6only');
    expect(r.code, r.stdout).toBe(0);
    expect(r.json.ips).toHaveLength(1);
    expect(r.json.ips[0].address).toMatch(/:/);
    expect(await reach(p, NODE6)).toBe(true);
    expect((await call('DEL', c, p, 'ctr-v6-only', 'v6only')).code).toBe(0);
  });

  it('chains with Debian portmap through a conflist (ADD and DEL through the chain)', async () => {
    const p = await newPod();
    const list = {
      cniVersion: '1.0.0',
      name: 'k8s-pod-network',
      plugins: [conf(), { type: 'portmap', snat: true, capabilities: { portMappings: true } }].map(({ cniVersion: _v, name: _n, ...rest }: any) => rest),
    };
    const base = { containerId: 'ctr-chain-01', netns: netnsPath(p), ifname: 'eth0', args: 'K8S_POD_NAMESPACE=default;K8S_POD_NAME=chained', cniPath: inst.cniPath, node, binDirs: [inst.binDir, '/usr/lib/cni'] };
    const capabilityArgs = { portMappings: [{ hostPort: 18080, containerPort: 8080, protocol: 'tcp' }] };
    const add = await runConflist(list, 'ADD', { ...base, capabilityArgs });
    expect(add.code, JSON.stringify(add.error)).toBe(0);
    const podIp = add.result.ips[0].address.split('/')[0];
    const nat = (await node.exec('iptables-save', ['-t', 'nat'])).stdout;
    expect(nat).toContain('CNI-HOSTPORT-DNAT');
    expect(nat).toContain(`${podIp}:8080`);

    // Traffic to the node's port 18080 reaches the pod's 8080.
    const server = p.spawn(process.execPath, ['-e', "require('net').createServer(s=>s.end('pong')).listen(8080,'0.0.0.0')"]);
    try {
      let got = '';
      for (let i = 0; i < 20 && got !== 'pong'; i++) {
        await new Promise((r) => setTimeout(r, 150));
        got = await node
          .exec(process.execPath, ['-e', `const s=require('net').connect(18080,'${NODE4}');let d='';s.on('data',x=>d+=x);s.on('end',()=>{process.stdout.write(d)});s.on('error',()=>process.exit(0));s.setTimeout(1000,()=>process.exit(0))`])
          .then((r) => r.stdout)
          .catch(() => '');
      }
      expect(got).toBe('pong');
    } finally {
      server.kill('SIGKILL');
    }
    const chk = await runConflist(list, 'CHECK', { ...base, prevResult: add.result });
    expect(chk.code, JSON.stringify(chk.error)).toBe(0);
    const del = await runConflist(list, 'DEL', { ...base, capabilityArgs, prevResult: add.result });
    expect(del.code, JSON.stringify(del.error)).toBe(0);
    expect((await node.exec('iptables-save', ['-t', 'nat'])).stdout).not.toContain(`${podIp}:8080`);
    expect(keys('/calico/ipam/v2/handle/')).toEqual([]);
  });
});

describe('petrel CNI plugin (file datastore, pod and namespace annotations)', () => {
  let dir: string;
  const fconf = () => ({ cniVersion: '1.0.0', name: 'k8s-pod-network', type: 'petrel', datastore_type: 'file', datastore_path: dir, nodename: 'node-f', ipam: { type: 'petrel-ipam' } });
  const callNs = (command: 'ADD' | 'DEL', pod: NS, id: string, ns: string, name: string) =>
    execPlugin(join(inst.binDir, 'petrel'), JSON.stringify(fconf()), {
      command, containerId: id, netns: netnsPath(pod), ifname: 'eth0', args: `K8S_POD_NAMESPACE=${ns};K8S_POD_NAME=${name}`, cniPath: inst.cniPath, node,
    });

  beforeAll(async () => {
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    dir = mkdtempSync(join(tmpdir(), 'ptcn-fds-'));
    writeFileSync(join(dir, 'cluster.yaml'), `apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: main}
spec: {cidr: 10.230.0.0/24, blockSize: 28}
---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: special}
spec: {cidr: 10.231.0.0/24, blockSize: 28, nodeSelector: "has(kubernetes.io/hostname)"}
---
apiVersion: projectcalico.org/v3
kind: Node
metadata:
  name: node-f
  labels: {kubernetes.io/hostname: node-f}
---
apiVersion: v1
kind: Namespace
metadata:
  name: team
  annotations: {cni.projectcalico.org/ipv4pools: '["special"]'}
---
apiVersion: v1
kind: Pod
metadata:
  name: fixed
  namespace: default
  annotations: {cni.projectcalico.org/ipAddrs: '["10.230.0.50"]'}
spec: {nodeName: node-f, containers: [{name: c, image: x}]}
---
apiVersion: v1
kind: Pod
metadata:
  name: pooled
  namespace: default
  annotations: {cni.projectcalico.org/ipv4pools: '["10.231.0.0/24"]'}
spec: {nodeName: node-f, containers: [{name: c, image: x}]}
`);
  });
  afterAll(async () => {
    const { rmSync } = await import('node:fs');
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('ipAddrs gives the pod exactly that address; ipv4pools (pod or namespace) picks the pool (which must select the node)', async () => {
    const { existsSync, readdirSync } = await import('node:fs');
    const [p1, p2, p3, p4] = [await newPod(), await newPod(), await newPod(), await newPod()];
    const r1 = await callNs('ADD', p1, 'f-fixed-1', 'default', 'fixed');
    expect(r1.code, r1.stdout).toBe(0);
    expect(r1.json.ips[0].address).toBe('10.230.0.50/32');
    const r2 = await callNs('ADD', p2, 'f-pooled-1', 'default', 'pooled');
    expect(r2.code, r2.stdout).toBe(0);
    expect(r2.json.ips[0].address).toMatch(/^10\.231\.0\./);
    const r3 = await callNs('ADD', p3, 'f-team-1', 'team', 'anything');
    expect(r3.code, r3.stdout).toBe(0);
    expect(r3.json.ips[0].address).toMatch(/^10\.231\.0\./);
    // the same fixed address for another container: refused, and nothing is left behind
    const linksBefore = await links(node);
    const r4 = await callNs('ADD', p4, 'f-fixed-2', 'default', 'fixed');
    expect(r4.code).not.toBe(0);
    expect(r4.json.code).toBe(100);
    expect(r4.json.msg).toMatch(/in use/);
    expect(await links(node)).toEqual(linksBefore);
    expect(await reach(p1, NODE4)).toBe(true);
    // endpoints and IPAM objects are manifests in the datastore directory
    expect(existsSync(join(dir, 'workloadendpoints', 'default', 'node--f-k8s-fixed-eth0.json'))).toBe(true);
    expect(readdirSync(join(dir, 'ipamhandles')).sort()).toEqual(['k8s-pod-network.f-fixed-1.json', 'k8s-pod-network.f-pooled-1.json', 'k8s-pod-network.f-team-1.json']);
    expect(readdirSync(join(dir, 'blockaffinities')).length).toBe(2);
    for (const [p, id, ns, name] of [[p1, 'f-fixed-1', 'default', 'fixed'], [p2, 'f-pooled-1', 'default', 'pooled'], [p3, 'f-team-1', 'team', 'anything']] as const) {
      expect((await callNs('DEL', p, id, ns, name)).code).toBe(0);
    }
    expect(readdirSync(join(dir, 'workloadendpoints', 'default'))).toEqual([]);
    expect(readdirSync(join(dir, 'ipamhandles'))).toEqual([]);
  });
});

describe('petrel-ipam on its own and petrel ctl ipam', () => {
  it('a leaked address (IPAM ADD, no endpoint) is reported by ipam check and freed by ipam release --from-report', async () => {
    const { execFile } = await import('node:child_process');
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { ROOT } = await import('./harness.js');
    const ctl = (args: string[]) =>
      new Promise<{ code: number; out: string }>((resolve) =>
        execFile(process.execPath, [join(ROOT, 'dist', 'agent', 'cli.js'), 'ctl', 'ipam', ...args, '--datastore-type', 'etcdv3', '--etcd-endpoints', etcd.endpoint], { timeout: 60_000 }, (err, so, se) =>
          resolve({ code: err ? ((err as any).code ?? 1) : 0, out: so + se }),
        ),
      );
    // petrel-ipam as a delegated IPAM plugin: an IPAM result, no interfaces
    const ipamConf = { ...conf(), type: 'bridge' };
    const r = await execPlugin(join(inst.binDir, 'petrel-ipam'), JSON.stringify(ipamConf), { command: 'ADD', containerId: 'leak-0001', netns: '/run/netns/whatever', ifname: 'eth0', cniPath: inst.cniPath, node });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.json.interfaces).toBeUndefined();
    expect(r.json.ips).toHaveLength(1);
    const ip = r.json.ips[0].address.split('/')[0];
    expect(r.json.routes).toEqual([{ dst: '0.0.0.0/0' }]);

    const show = await ctl(['show', '--ip', ip]);
    expect(show.out).toContain(`IP ${ip} is in use`);
    expect(show.out).toContain('Handle ID: k8s-pod-network.leak-0001');
    const dir = mkdtempSync(join(tmpdir(), 'ptcn-rep-'));
    try {
      const chk = await ctl(['check', '-o', join(dir, 'r.json')]);
      expect(chk.code, chk.out).toBe(1);
      expect(chk.out).toContain(`${ip} leaked`);
      expect(chk.out).toContain('Check complete; found 1 problems.');
      const rel = await ctl(['release', '--from-report', join(dir, 'r.json')]);
      expect(rel.code, rel.out).toBe(0);
      expect(rel.out).toContain('Released 1 IPs successfully');
      const again = await ctl(['check']);
      expect(again.out).toContain('Check complete; found 0 problems.');
      expect(again.code).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    // the handle went with its last address; a DEL of the IPAM plugin is still fine
    expect(keys('/calico/ipam/v2/handle/')).toEqual([]);
    const d = await execPlugin(join(inst.binDir, 'petrel-ipam'), JSON.stringify(ipamConf), { command: 'DEL', containerId: 'leak-0001', ifname: 'eth0', cniPath: inst.cniPath, node });
    expect(d.code, d.stdout).toBe(0);
  });
});

describe('etcd over TLS', () => {
  it('petrel-ipam assigns and releases with etcd_ca_cert_file / etcd_cert_file / etcd_key_file', async () => {
    const tls = await startEtcd({ tls: true });
    try {
      execFileSync('etcdctl', ['put', '/calico/resources/v3/projectcalico.org/ippools/t', JSON.stringify({ apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: 't' }, spec: { cidr: '10.206.0.0/24', blockSize: 28 } })], { env: { ...process.env, ...tls.etcdctlEnv } });
      const c = {
        cniVersion: '1.0.0', name: 'k8s-pod-network', type: 'bridge', datastore_type: 'etcdv3', etcd_endpoints: tls.endpoint, nodename: 'tls-node',
        etcd_ca_cert_file: tls.tls!.caFile, etcd_cert_file: tls.tls!.certFile, etcd_key_file: tls.tls!.keyFile, ipam: { type: 'petrel-ipam' },
      };
      // IPAM only: no interface is touched, so it runs in the test's namespace
      const add = await execPlugin(join(inst.binDir, 'petrel-ipam'), JSON.stringify(c), { command: 'ADD', containerId: 'tls-1', netns: '/run/netns/none', ifname: 'eth0', cniPath: inst.cniPath });
      expect(add.code, add.stdout + add.stderr).toBe(0);
      expect(add.json.ips[0].address).toMatch(/^10\.206\.0\./);
      const del = await execPlugin(join(inst.binDir, 'petrel-ipam'), JSON.stringify(c), { command: 'DEL', containerId: 'tls-1', ifname: 'eth0', cniPath: inst.cniPath });
      expect(del.code, del.stdout).toBe(0);
      // without the client certificate etcd refuses: a clear error, not a crash
      const bad = await execPlugin(join(inst.binDir, 'petrel-ipam'), JSON.stringify({ ...c, etcd_cert_file: undefined, etcd_key_file: undefined }), { command: 'ADD', containerId: 'tls-2', netns: '/run/netns/none', ifname: 'eth0', cniPath: inst.cniPath });
      expect(bad.code).not.toBe(0);
      expect(bad.json.code).toBe(11);
    } finally {
      await tls.stop();
    }
  });
});
