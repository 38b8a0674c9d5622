import { afterEach, describe, expect, it } from 'vitest';
import { addComponents } from '../../agent/components.js';
import { Agent } from '../../agent/daemon.js';
import { MemoryDatastore } from '../memory-datastore.js';

const pool = {
  apiVersion: 'projectcalico.org/v3',
  kind: 'IPPool',
  metadata: { name: 'default-ipv4-ippool' },
  spec: { cidr: '10.244.0.0/16', blockSize: 26, ipipMode: 'Never', vxlanMode: 'Never', natOutgoing: true },
};

async function get(port: number, path: string) {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  const text = await res.text();
  return { code: res.status, text, json: () => JSON.parse(text) };
}

async function until(fn: () => Promise<boolean>, ms = 5000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('condition not met in time');
}

/** A dry-run agent fed by a datastore the test drives. */
function newAgent(ds: MemoryDatastore): Agent {
  return new Agent({
    datastore: { type: 'file', path: '.', etcdEndpoints: [], nodename: 'node-1' },
    healthHost: '127.0.0.1',
    healthPort: 0,
    dataplane: 'dry-run',
    bgp: false,
    datastoreInstance: ds,
  });
}

describe('agent health over HTTP', () => {
  let agent: Agent | undefined;
  afterEach(async () => {
    await agent?.stop();
    agent = undefined;
  });

  it('readiness follows the datastore: 503 before in-sync, 200 after, 503 naming why on outage, 200 again', async () => {
    const ds = new MemoryDatastore();
    agent = newAgent(ds);
    const { healthPort: port } = await agent.start();

    expect((await get(port, '/liveness')).code).toBe(200);
    const before = await get(port, '/readiness');
    expect(before.code).toBe(503);
    expect(before.json().components.datastore.reason).toMatch(/initial list|not in sync/);

    ds.emit([MemoryDatastore.update(pool), { type: 'in-sync' }]);
    await until(async () => (await get(port, '/readiness')).code === 200);

    const status = (await get(port, '/status')).json();
    expect(status.node).toBe('node-1');
    expect(status.datastore).toMatchObject({ type: 'file', inSync: true, resources: { IPPool: 1 } });
    expect(status.bgp).toHaveProperty('peers');

    ds.emit([{ type: 'status', state: 'disconnected', reason: 'etcd 127.0.0.1:2379: connection refused' }]);
    const down = await get(port, '/readiness');
    expect(down.code).toBe(503);
    expect(down.json().components.datastore.reason).toContain('connection refused');
    // Liveness stays up: an unreachable datastore is not a reason to restart the agent.
    expect((await get(port, '/liveness')).code).toBe(200);
    // Nothing is forgotten while disconnected.
    expect((await get(port, '/status')).json().datastore.resources).toEqual({ IPPool: 1 });

    ds.emit([{ type: 'status', state: 'connected' }, { type: 'in-sync' }]);
    await until(async () => (await get(port, '/readiness')).code === 200);
  });

  it('serves Prometheus metrics with petrel_ series', async () => {
    const ds = new MemoryDatastore();
    agent = newAgent(ds);
    const { healthPort: port } = await agent.start();
    ds.emit([MemoryDatastore.update(pool), { type: 'in-sync' }]);
    await until(async () => (await get(port, '/readiness')).code === 200);
    const m = await get(port, '/metrics');
    expect(m.code).toBe(200);
    expect(m.text).toMatch(/^petrel_build_info\{version="[^"]+",node_version="v\d+/m);
    expect(m.text).toMatch(/^petrel_datastore_resources\{kind="IPPool"\} 1$/m);
    expect(m.text).toMatch(/^petrel_datastore_in_sync 1$/m);
    expect(m.text).toMatch(/^process_resident_memory_bytes /m);
    expect((await get(port, '/nope')).code).toBe(404);
  });

  it('readiness names a BGP configuration that cannot run (this node has no Node resource), and clears once it exists', async () => {
    const ds = new MemoryDatastore();
    agent = new Agent({
      datastore: { type: 'file', path: '.', etcdEndpoints: [], nodename: 'node-1' },
      healthHost: '127.0.0.1',
      healthPort: 0,
      dataplane: 'dry-run',
      bgp: true,
      datastoreInstance: ds,
    });
    await addComponents(agent, { routeProtocol: 80, interfacePrefix: 'cali' });
    const { healthPort: port } = await agent.start();
    ds.emit([MemoryDatastore.update(pool), { type: 'in-sync' }]);
    await until(async () => JSON.stringify((await get(port, '/readiness')).json()).includes('Node node-1 not found'));
    expect((await get(port, '/readiness')).code).toBe(503);
    ds.emit([
      MemoryDatastore.update({
        apiVersion: 'projectcalico.org/v3',
        kind: 'Node',
        metadata: { name: 'node-1' },
        spec: { bgp: { ipv4Address: '192.168.56.10/24' } },
      }),
    ]);
    await until(async () => (await get(port, '/readiness')).code === 200);
  });
});

