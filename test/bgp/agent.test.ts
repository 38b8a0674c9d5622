// `petrel agent` (file datastore) in a namespace peering with BIRD 2 from Calico manifests: the
// node's confirmed block goes out with next hop self, BIRD's prefix comes in and shows in
// /status; a BGPPeer edit applies live; deleting the BGPPeer closes the session.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { requireRoot, vethPair, type NetNs } from '../netns.js';
import { Bird, Lab, ROOT, ensureBuilt, until } from './harness.js';

requireRoot();
const lab = new Lab();
let P: NetNs;
let B: NetNs;

beforeAll(async () => {
  await ensureBuilt();
  P = await lab.ns();
  B = await lab.ns();
  await vethPair(P, 'vp', ['10.77.4.1/24'], B, 'vb', ['10.77.4.2/24']);
}, 120_000);
afterEach(() => lab.endTest(), 60_000);
afterAll(() => lab.cleanup(), 60_000);

const yaml = (kind: string, name: string, spec: string) => `apiVersion: projectcalico.org/v3
kind: ${kind}
metadata:
  name: ${name}
spec:
${spec}
---
`;

describe('petrel agents in a node-to-node mesh', () => {
  it('two agents from one datastore peer as node-mesh (only the higher IP dials) and learn each other\'s blocks', async () => {
    const N1 = await lab.ns();
    const N2 = await lab.ns();
    await vethPair(N1, 'v1', ['10.77.5.1/24'], N2, 'v2', ['10.77.5.2/24']);
    const dir = join(lab.dir, 'mesh');
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, 'cluster.yaml'),
      yaml('Node', 'n1', '  bgp:\n    ipv4Address: 10.77.5.1/24') +
        yaml('Node', 'n2', '  bgp:\n    ipv4Address: 10.77.5.2/24') +
        yaml('IPPool', 'pool', '  cidr: 10.66.0.0/16\n  blockSize: 26\n  ipipMode: Never\n  vxlanMode: Never') +
        yaml('BlockAffinity', 'n1-b', '  node: n1\n  cidr: 10.66.1.0/26\n  state: confirmed\n  deleted: false') +
        yaml('BlockAffinity', 'n2-b', '  node: n2\n  cidr: 10.66.2.0/26\n  state: confirmed\n  deleted: false'),
    );
    const logs: string[] = ['', ''];
    [N1, N2].forEach((ns, i) => {
      const a = ns.spawn('node', [join(ROOT, 'dist/agent/cli.js'), 'agent', '--datastore-type', 'file', '--datastore-path', dir, '--nodename', `n${i + 1}`, '--health-host', '127.0.0.1', '--log-level', 'warn'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      a.stdout!.on('data', (d) => (logs[i] = (logs[i] + d).slice(-10000)));
      a.stderr!.on('data', (d) => (logs[i] = (logs[i] + d).slice(-10000)));
      lab.defer(() => {
        a.kill('SIGKILL');
      });
    });
    const status = async (ns: NetNs) => JSON.parse((await ns.exec('curl', ['-s', 'http://127.0.0.1:9099/status'])).stdout);
    try {
      for (const [ns, other] of [[N1, '10.77.5.2'], [N2, '10.77.5.1']] as const) {
        await until('mesh session with the route', async () => {
          const p = (await status(ns)).bgp?.peers?.find((x: any) => x.address === other);
          return p?.state === 'Established' && p.type === 'node-mesh' && p.prefixesReceived === 1 && p.prefixesAdvertised === 1;
        }, 60_000, 250);
      }
      // n1 (10.77.5.1 sorts lower) is passive: the TCP connection was opened by n2 toward port 179 on n1
      const ss = (await N1.exec('ss', ['-tn', 'state', 'established', '( sport = :179 )'])).stdout;
      expect(ss).toContain('10.77.5.2');
    } catch (e) {
      throw new Error(`${(e as Error).message}\nn1:\n${logs[0].slice(-3000)}\nn2:\n${logs[1].slice(-3000)}`);
    }
  });
});

describe('petrel agent with BIRD', () => {
  it('advertises its block from the datastore, learns BIRD routes, applies BGPPeer changes live', async () => {
    const dir = join(lab.dir, 'ds');
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, 'cluster.yaml'),
      yaml('Node', 'n1', '  bgp:\n    ipv4Address: 10.77.4.1/24') +
        yaml('BGPConfiguration', 'default', '  asNumber: 64512\n  nodeToNodeMeshEnabled: true') +
        yaml('IPPool', 'pool', '  cidr: 10.65.0.0/16\n  blockSize: 26\n  ipipMode: Never\n  vxlanMode: Never') +
        yaml('BlockAffinity', 'n1-10-65-1-0-26', '  node: n1\n  cidr: 10.65.1.0/26\n  state: confirmed\n  deleted: false'),
    );
    const peerFile = join(dir, 'peer.yaml');
    writeFileSync(peerFile, yaml('BGPPeer', 'bird', '  peerIP: 10.77.4.2\n  asNumber: 64513'));
    const bird = await Bird.start(
      lab,
      B,
      'ba',
      Bird.conf({ routerId: '10.77.4.2', static4: ['192.168.55.0/24'], peers: [{ name: 'petrel', ip: '10.77.4.1', as: 64512, localIp: '10.77.4.2', localAs: 64513 }] }),
    );
    const agent = P.spawn('node', [join(ROOT, 'dist/agent/cli.js'), 'agent', '--datastore-type', 'file', '--datastore-path', dir, '--nodename', 'n1', '--health-host', '127.0.0.1', '--log-level', 'warn'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let log = '';
    agent.stdout!.on('data', (d) => (log = (log + d).slice(-20000)));
    agent.stderr!.on('data', (d) => (log = (log + d).slice(-20000)));
    lab.defer(() => {
      agent.kill('SIGKILL');
    });
    const status = async () => JSON.parse((await P.exec('curl', ['-s', 'http://127.0.0.1:9099/status'])).stdout);
    try {
      await until('BIRD has the node block', async () => (await bird.routes('petrel')).has('10.65.1.0/26'), 60_000, 250);
      const r = (await bird.routes('petrel')).get('10.65.1.0/26')!;
      expect(r).toMatch(/BGP\.next_hop: 10\.77\.4\.1/);
      expect(r).toMatch(/BGP\.as_path: 64512\n/);
      await until('status shows the peer with the route', async () => {
        const s = await status();
        const p = s.bgp?.peers?.find((x: any) => x.address === '10.77.4.2');
        return p?.state === 'Established' && p.type === 'global' && p.prefixesReceived === 1 && p.prefixesAdvertised === 1;
      });
      const s = await status();
      expect(s.bgp).toMatchObject({ asNumber: 64512, routerId: '10.77.4.1' });
      // live change: a BGPPeer that no longer applies -> session closed with a Cease, BIRD withdraws
      rmSync(peerFile);
      await until('BIRD lost the session', async () => !(await bird.established('petrel')), 30_000, 250);
      expect(await bird.birdc('show', 'protocols', 'all', 'petrel')).toMatch(/Peer de-configured|Cease|Administrative/i);
      expect((await bird.routes('petrel')).size).toBe(0);
    } catch (e) {
      throw new Error(`${(e as Error).message}\nagent log:\n${log.slice(-4000)}`);
    }
  });
});
