// Child process of bench/etcd-sync.ts: the etcd backend alone, as the agent runs it. Prints
// `SYNCED {ms, rss, resources}` at in-sync, then counts update events and prints
// `UPDATES {count, ms}` once it has seen the number the parent announces on stdin.
import { EtcdDatastore } from '../datastore/etcd/index.js';

const endpoint = process.argv[2]!;
const t0 = performance.now();
let synced = false;
let resources = 0;
let updates = 0;
let want = Infinity;
let firstAt = 0;
let rounds = 0;
const ds = new EtcdDatastore({ endpoints: [endpoint] });
await ds.watch((evs) => {
  for (const e of evs) {
    if (e.type === 'update') {
      if (!synced) resources++;
      else {
        if (updates === 0) firstAt = performance.now();
        updates++;
      }
    } else if (e.type === 'in-sync' && !synced) {
      synced = true;
      const ms = performance.now() - t0;
      global.gc?.();
      process.stdout.write(`SYNCED ${JSON.stringify({ ms, rss: process.memoryUsage().rss, heap: process.memoryUsage().heapUsed, resources })}\n`);
    }
  }
  if (updates >= want) {
    process.stdout.write(`UPDATES ${JSON.stringify({ count: updates, ms: performance.now() - firstAt })}\n`);
    want = Infinity;
    updates = 0;
    if (++rounds === 2) void ds.close().then(() => process.exit(0));
  }
});
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d: string) => {
  const n = Number(d.trim());
  if (n > 0) want = n;
});
