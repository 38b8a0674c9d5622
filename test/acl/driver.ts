// Runs the policy dataplane against a file datastore, inside whatever network namespace it is
// started in (the harness starts it in the node netns). Stands in for `petrel agent --bgp
// disabled` until the agent wires the policy calculator in.
// Usage: node driver.js <datastore dir> <node name>
// Prints JSON lines: {"applied": n, "policies": [...keys], "ms": ...} after every apply.
import { IptablesDataplane } from '../../acl/index.js';
import { PolicyCalculator } from '../../agent/calc/policy.js';
import { createDatastore } from '../../datastore/factory.js';
import type { DatastoreEvent } from '../../datastore/index.js';

const [dir, nodeName] = process.argv.slice(2);
if (!dir || !nodeName) {
  console.error('usage: driver.js <datastore dir> <node name>');
  process.exit(1);
}
const calc = new PolicyCalculator({ nodeName, ipVersions: [4, 6] });
const dp = new IptablesDataplane({ ipVersions: [4, 6], refreshIntervalMs: 0 });
await dp.start();
const policies = new Set<string>();
let applies = 0;
let queue: DatastoreEvent[] = [];
let busy = false;

async function drain(): Promise<void> {
  if (busy) return;
  busy = true;
  try {
    while (queue.length) {
      const evs = queue;
      queue = [];
      for (const e of evs) {
        if (e.type === 'update' && /NetworkPolicy$/.test(e.kind)) policies.add(e.key);
        if (e.type === 'delete' && /NetworkPolicy$/.test(e.kind)) policies.delete(e.key);
      }
      calc.onEvents(evs);
      if (!calc.inSync) continue;
      const t0 = performance.now();
      await dp.apply(calc.desired);
      process.stdout.write(
        JSON.stringify({ applied: ++applies, policies: [...policies].sort(), ms: performance.now() - t0, errors: calc.status().errors }) + '\n',
      );
    }
  } catch (e) {
    process.stderr.write(`apply failed: ${String((e as Error).stack ?? e)}\n`);
  } finally {
    busy = false;
  }
}

const ds = await createDatastore({ type: 'file', path: dir, nodename: nodeName, etcdEndpoints: [] });
await ds.watch((events) => {
  queue.push(...events);
  void drain();
});
process.on('SIGTERM', () => process.exit(0));
// The file watchers do not hold the event loop open; this does (until killed).
setInterval(() => undefined, 1 << 30);
