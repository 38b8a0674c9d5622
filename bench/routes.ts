// `npm run bench -- routes [N]`: program N (default 50,000) routes into an empty network
// namespace, then replace 10% of them; Petrel's RouteManager against `ip -batch` of the same
// routes, each in a fresh namespace, in the same run. Prints times, ratios, RSS and the netlink
// messages/datagrams Petrel sent. Needs root (namespaces). Asserts nothing.
import { spawn } from 'node:child_process';
import { writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DesiredRoute } from '../routes/index.js';

const GW = '192.168.100.2';

function routeSet(n: number, changed: boolean): DesiredRoute[] {
  const out: DesiredRoute[] = [];
  const tenth = Math.floor(n / 10);
  for (let i = 0; i < n; i++) {
    const base = changed && i < tenth ? 200 : 100;
    out.push({ dst: `10.${base + ((i >> 16) & 63)}.${(i >> 8) & 255}.${i & 255}/32`, type: 'unicast', via: GW });
  }
  return out;
}

function sh(cmd: string, args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code: code ?? -1, out, err }));
  });
}

async function must(cmd: string, args: string[]): Promise<string> {
  const r = await sh(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.err.trim()}`);
  return r.out;
}

async function freshNs(tag: string): Promise<string> {
  const name = `ptrt-bench-${tag}-${process.pid % 10000}`;
  await sh('ip', ['netns', 'del', name]);
  await must('ip', ['netns', 'add', name]);
  await must('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  await must('ip', ['-n', name, 'link', 'add', 'bench0', 'type', 'veth', 'peer', 'name', 'bench1']);
  await must('ip', ['-n', name, 'addr', 'add', '192.168.100.1/24', 'dev', 'bench0']);
  await must('ip', ['-n', name, 'link', 'set', 'bench0', 'up']);
  await must('ip', ['-n', name, 'link', 'set', 'bench1', 'up']);
  return name;
}

async function countRoutes(ns: string, proto: string): Promise<number> {
  const out = await must('ip', ['-n', ns, 'route', 'show', 'proto', proto]);
  return out.split('\n').filter(Boolean).length;
}

/** Runs inside the namespace: Petrel's manager on this process's own netlink socket. */
async function inner(n: number): Promise<void> {
  const { RouteManager } = await import('../routes/index.js');
  const rm = new RouteManager({ resyncIntervalMs: 0 });
  await rm.start();
  const first = routeSet(n, false);
  const second = routeSet(n, true);
  const rss0 = process.memoryUsage().rss;
  const t0 = performance.now();
  await rm.setDesired(first);
  const t1 = performance.now();
  const s1 = rm.status();
  await rm.settled();
  const t1b = performance.now();
  const s1b = rm.status();
  const t2 = performance.now();
  await rm.setDesired(second);
  const t3 = performance.now();
  const s2 = rm.status();
  await rm.settled();
  const s3 = rm.status();
  console.log(
    JSON.stringify({
      bulkMs: t1 - t0,
      settleMs: t1b - t1,
      updateMs: t3 - t2,
      programmedAfterBulk: s1.programmed,
      programmedAfterUpdate: s2.programmed,
      bulkMessages: s1.messagesSent,
      bulkDatagrams: s1.datagramsSent,
      settleMessages: s1b.messagesSent - s1.messagesSent,
      updateMessages: s3.messagesSent - s1b.messagesSent,
      updateDatagrams: s3.datagramsSent - s1b.datagramsSent,
      resyncs: s3.resyncs,
      errors: s3.failures.length + s3.conflicts.length,
      rssMB: process.memoryUsage().rss / 1048576,
      rssGrowthMB: (process.memoryUsage().rss - rss0) / 1048576,
    }),
  );
  await rm.stop();
}

export default async function bench(args: string[]): Promise<void> {
  if (args[0] === '--inner') return inner(Number(args[1]));
  const n = Number(args[0] ?? 50_000);
  if (process.getuid?.() !== 0) throw new Error('the routes benchmark needs root (network namespaces)');
  const runJs = join(fileURLToPath(new URL('.', import.meta.url)), 'run.js');
  const tmp = join(tmpdir(), `ptrt-bench-${process.pid}`);
  const first = routeSet(n, false);
  const second = routeSet(n, true);
  const line = (r: DesiredRoute, verb: string) => `route ${verb} ${r.dst} via ${r.via} proto 80\n`;
  writeFileSync(`${tmp}-bulk`, first.map((r) => line(r, 'add')).join(''));
  const tenth = Math.floor(n / 10);
  writeFileSync(`${tmp}-update`, first.slice(0, tenth).map((r) => line(r, 'del')).join('') + second.slice(0, tenth).map((r) => line(r, 'add')).join(''));

  console.log(`routes benchmark: ${n} routes (/32 via a gateway), then 10% (${tenth}) replaced`);
  // --- baseline: ip -batch
  const nsIp = await freshNs('ip');
  let ipBulk = 0;
  let ipUpdate = 0;
  try {
    let t = performance.now();
    await must('ip', ['-n', nsIp, '-batch', `${tmp}-bulk`]);
    ipBulk = performance.now() - t;
    const c1 = await countRoutes(nsIp, '80');
    t = performance.now();
    await must('ip', ['-n', nsIp, '-batch', `${tmp}-update`]);
    ipUpdate = performance.now() - t;
    const c2 = await countRoutes(nsIp, '80');
    console.log(`ip -batch:  bulk ${ipBulk.toFixed(0)} ms (${c1} routes), 10% update ${ipUpdate.toFixed(0)} ms (${c2} routes)`);
  } finally {
    await sh('ip', ['netns', 'del', nsIp]);
  }
  // --- Petrel
  const nsP = await freshNs('petrel');
  try {
    const out = await must('ip', ['netns', 'exec', nsP, process.execPath, runJs, 'routes', '--inner', String(n)]);
    const r = JSON.parse(out.trim().split('\n').pop()!);
    const c = await countRoutes(nsP, '80');
    console.log(
      `petrel:     bulk ${r.bulkMs.toFixed(0)} ms (${r.programmedAfterBulk} programmed, ${r.bulkMessages} netlink messages in ${r.bulkDatagrams} datagrams), ` +
        `10% update ${r.updateMs.toFixed(0)} ms (${r.updateMessages} messages in ${r.updateDatagrams} datagrams), kernel holds ${c}`,
    );
    console.log(`petrel:     event catch-up after bulk ${r.settleMs.toFixed(0)} ms (${r.settleMessages} messages, resyncs ${r.resyncs}), errors ${r.errors}`);
    console.log(`ratio bulk   petrel/ip-batch = ${(r.bulkMs / ipBulk).toFixed(2)}x (target <= 1.0x)`);
    console.log(`ratio update petrel/ip-batch = ${(r.updateMs / ipUpdate).toFixed(2)}x; petrel update/bulk = ${(r.updateMs / r.bulkMs).toFixed(2)}x`);
    console.log(`RSS petrel process ${r.rssMB.toFixed(1)} MB (grew ${r.rssGrowthMB.toFixed(1)} MB while programming)`);
  } finally {
    await sh('ip', ['netns', 'del', nsP]);
    rmSync(`${tmp}-bulk`, { force: true });
    rmSync(`${tmp}-update`, { force: true });
  }
}
