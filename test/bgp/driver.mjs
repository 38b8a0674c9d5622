// Runs one Petrel BGP speaker in this process (started by tests under `ip netns exec`), driven
// by JSON lines on stdin: {id, op, ...} -> {id, ok, result | error} on stdout. Uses dist/ (npm test
// builds first). Ops: start, configure, exports, status, rib, ready, sync, stop, mem, gc, exit.
import { createInterface } from 'node:readline';
import { monitorEventLoopDelay } from 'node:perf_hooks';
const { BgpSpeaker } = await import(new URL('../../dist/bgp/index.js', import.meta.url).href);
const { metricsRegistry } = await import(new URL('../../dist/agent/metrics.js', import.meta.url).href);

let sp = null;
let unlisten = null;
let lag = null;
let firstBest = 0;
let bestCount = 0;
let lastBest = 0;
const send = (o) => process.stdout.write(JSON.stringify(o) + '\n');

const ops = {
  async start(m) {
    sp = new BgpSpeaker(m.opts);
    unlisten = sp.onBestRoutes((c) => {
      const now = Date.now();
      if (!firstBest) firstBest = now;
      lastBest = now;
      bestCount += c.length;
    });
    if (m.config) sp.configure(m.config);
    if (m.exports) sp.setExports(m.exports);
    await sp.start();
    return { port: sp.boundPort(), pid: process.pid };
  },
  configure: (m) => sp.configure(m.config),
  exports: (m) => sp.setExports(m.exports),
  status: () => sp.status(),
  rib: () => sp.bestRoutes(),
  count: () => ({ size: sp.locRibSize(), firstBest, lastBest, bestCount }),
  /** Drops the best-route listener (a speaker with no consumer of its Loc-RIB changes). */
  unlisten: () => unlisten?.(),
  ready: () => sp.ready(),
  sync: () => sp.initialSyncDone(),
  async stop(m) {
    await sp.stop({ graceful: !!m.graceful });
  },
  mem: () => process.memoryUsage(),
  metrics: () => metricsRegistry.metrics(),
  gc: () => {
    if (global.gc) {
      global.gc();
      global.gc();
    }
    return process.memoryUsage();
  },
  exit: () => setTimeout(() => process.exit(0), 10),
  cpu: () => process.cpuUsage(),
  lagStart() {
    lag = monitorEventLoopDelay({ resolution: 5 });
    lag.enable();
  },
  lagStop() {
    lag.disable();
    return { maxMs: lag.max / 1e6, meanMs: lag.mean / 1e6 };
  },
  /**
   * Resolves when the Loc-RIB holds n routes: { at, firstAt, establishedAt } (firstAt: when the
   * Loc-RIB was first seen non-empty; both polled every 2 ms).
   */
  waitCount(m) {
    return new Promise((resolve, reject) => {
      const end = Date.now() + (m.timeoutMs ?? 60000);
      let firstAt = 0;
      const t = setInterval(() => {
        const size = sp.locRibSize();
        if (!firstAt && size > 0) firstAt = Date.now();
        if (size >= m.n) {
          const at = Date.now();
          clearInterval(t);
          const est = sp.status().peers.find((p) => p.state === 'Established');
          resolve({ at, firstAt, establishedAt: est?.since });
        } else if (Date.now() > end) {
          clearInterval(t);
          reject(new Error(`only ${sp.locRibSize()} routes`));
        }
      }, 2);
    });
  },
};

createInterface({ input: process.stdin }).on('line', async (line) => {
  let m;
  try {
    m = JSON.parse(line);
  } catch {
    return;
  }
  try {
    const result = await ops[m.op](m);
    send({ id: m.id, ok: true, result: result ?? null });
  } catch (e) {
    send({ id: m.id, ok: false, error: String(e?.stack ?? e) });
  }
});
process.stdin.on('end', () => process.exit(0));
