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

/** Runs `ip -n ns -batch file`; wall ms and the child's user+sys CPU ms. */
async function ipBatch(ns: string, file: string): Promise<{ wall: number; cpu: number }> {
  const t = performance.now();
  const out = await must('bash', ['-c', 'ip -n "$1" -batch "$2" && times', 'bash', ns, file]);
  const wall = performance.now() - t;
  const lines = out.trim().split('\n');
  const sec = (x: string) => {
    const m = x.match(/(\d+)m([\d.]+)s/);
    return m ? Number(m[1]) * 60 + Number(m[2]) : 0;
  };
  const [u, sy] = lines[lines.length - 1].split(/\s+/);
  return { wall, cpu: (sec(u) + sec(sy)) * 1000 };
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
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await rm.setDesired(first);
  const t1 = performance.now();
  const c1 = process.cpuUsage(c0);
  const s1 = rm.status();
  await rm.settled();
  const t1b = performance.now();
  const s1b = rm.status();
  const c2 = process.cpuUsage();
  const t2 = performance.now();
  const pending = rm.setDesired(second);
  const t2b = performance.now();
  await pending;
  const t3 = performance.now();
  const c3 = process.cpuUsage(c2);
  const s2 = rm.status();
  await rm.settled();
  const s3 = rm.status();
  // the same size of change through applyDelta (what an incremental caller sends)
  const tenth = Math.floor(n / 10);
  const adds = routeSet(n, false)
    .slice(tenth, 2 * tenth)
    .map((r) => ({ ...r, dst: r.dst.replace(/^10\.(\d+)\./, (_m, x) => `10.${Number(x) + 120}.`) }));
  const removes = second.slice(tenth, 2 * tenth);
  const c4 = process.cpuUsage();
  const t4 = performance.now();
  await rm.applyDelta(adds, removes);
  const t5 = performance.now();
  const c5 = process.cpuUsage(c4);
  await rm.settled();
  const s5 = rm.status();
  (globalThis as any).gc?.();
  const heapAfterGcMB = process.memoryUsage().heapUsed / 1048576;
  const rssMB = process.memoryUsage().rss / 1048576;
  // restart: a new manager on a kernel that holds all of them
  const finalSet = rm.desiredRoutes().map((x) => ({ ...x }));
  await rm.stop();
  const t6 = performance.now();
  const rm2 = new RouteManager({ resyncIntervalMs: 0 });
  await rm2.start();
  const t7 = performance.now();
  await rm2.setDesired(finalSet);
  const t8 = performance.now();
  const s8 = rm2.status();
  console.log(
    JSON.stringify({
      bulkMs: t1 - t0,
      settleMs: t1b - t1,
      updateMs: t3 - t2,
      updateDiffMs: t2b - t2,
      deltaMs: t5 - t4,
      deltaCpuMs: (c5.user + c5.system) / 1000,
      programmedAfterDelta: s5.programmed,
      restartReadMs: t7 - t6,
      restartApplyMs: t8 - t7,
      restartMessages: s8.messagesSent,
      restartProgrammed: s8.programmed,
      bulkCpuMs: (c1.user + c1.system) / 1000,
      updateCpuMs: (c3.user + c3.system) / 1000,
      programmedAfterBulk: s1.programmed,
      programmedAfterUpdate: s2.programmed,
      bulkMessages: s1.messagesSent,
      bulkDatagrams: s1.datagramsSent,
      settleMessages: s1b.messagesSent - s1.messagesSent,
      updateMessages: s3.messagesSent - s1b.messagesSent,
      updateDatagrams: s3.datagramsSent - s1b.datagramsSent,
      resyncs: s3.resyncs,
      errors: s3.failures.length + s3.conflicts.length,
      rssMB,
      heapAfterGcMB,
      rssGrowthMB: rssMB - rss0 / 1048576,
    }),
  );
  await rm2.stop();
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

  const rounds = Number(process.env.ROUNDS ?? 3);
  console.log(`routes benchmark: ${n} routes (/32 via a gateway), then 10% (${tenth}) replaced; best of ${rounds} rounds, fresh netns each`);
  const ipB: number[] = [];
  const ipU: number[] = [];
  const ipBc: number[] = [];
  const ipUc: number[] = [];
  const pr: any[] = [];
  for (let round = 0; round < rounds; round++) {
    // --- baseline: ip -batch
    const nsIp = await freshNs('ip');
    try {
      const b = await ipBatch(nsIp, `${tmp}-bulk`);
      ipB.push(b.wall);
      ipBc.push(b.cpu);
      if ((await countRoutes(nsIp, '80')) !== n) throw new Error('ip -batch did not program every route');
      const u = await ipBatch(nsIp, `${tmp}-update`);
      ipU.push(u.wall);
      ipUc.push(u.cpu);
    } finally {
      await sh('ip', ['netns', 'del', nsIp]);
    }
    // --- Petrel
    const nsP = await freshNs('petrel');
    try {
      const out = await must('ip', ['netns', 'exec', nsP, process.execPath, '--expose-gc', runJs, 'routes', '--inner', String(n)]);
      const r = JSON.parse(out.trim().split('\n').pop()!);
      r.kernel = await countRoutes(nsP, '80');
      pr.push(r);
    } finally {
      await sh('ip', ['netns', 'del', nsP]);
    }
  }
  const min = (a: number[]) => Math.min(...a);
  const med = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
  const pB = pr.map((r) => r.bulkMs);
  const pU = pr.map((r) => r.updateMs);
  const r = pr[pB.indexOf(min(pB))];
  console.log(`ip -batch:  bulk best ${min(ipB).toFixed(0)} ms (median ${med(ipB).toFixed(0)}), 10% update best ${min(ipU).toFixed(0)} ms (median ${med(ipU).toFixed(0)})`);
  console.log(`petrel:     bulk best ${min(pB).toFixed(0)} ms (median ${med(pB).toFixed(0)}), 10% update best ${min(pU).toFixed(0)} ms (median ${med(pU).toFixed(0)})`);
  console.log(
    `petrel:     ${r.programmedAfterBulk} programmed with ${r.bulkMessages} netlink messages in ${r.bulkDatagrams} datagrams; update ${r.updateMessages} messages in ${r.updateDatagrams} datagrams; kernel holds ${r.kernel}; errors ${r.errors}`,
  );
  console.log(`petrel:     background re-read after the bulk load (route events paused during it) ${r.settleMs.toFixed(0)} ms`);
  const pBc = pr.map((x) => x.bulkCpuMs);
  const pUc = pr.map((x) => x.updateCpuMs);
  console.log(`CPU (user+sys, includes the kernel's netlink work): ip bulk ${min(ipBc).toFixed(0)} ms, update ${min(ipUc).toFixed(0)} ms; petrel bulk ${min(pBc).toFixed(0)} ms, update ${min(pUc).toFixed(0)} ms`);
  console.log(`ratio CPU    petrel/ip-batch = ${(min(pBc) / min(ipBc)).toFixed(2)}x bulk, ${(min(pUc) / min(ipUc)).toFixed(2)}x update`);
  console.log(`ratio bulk   petrel/ip-batch = ${(min(pB) / min(ipB)).toFixed(2)}x best, ${(med(pB) / med(ipB)).toFixed(2)}x median (target <= 1.0x)`);
  const pD = pr.map((x) => x.deltaMs);
  const pDc = pr.map((x) => x.deltaCpuMs);
  console.log(
    `petrel:     10% update through applyDelta(add, remove): best ${min(pD).toFixed(0)} ms wall, ${min(pDc).toFixed(0)} ms CPU = ${(min(pDc) / min(ipUc)).toFixed(2)}x ip's CPU, ${(min(pDc) / min(pBc)).toFixed(2)}x Petrel's bulk CPU (${r.programmedAfterDelta} programmed)`,
  );
  console.log(
    `petrel:     restart on a kernel holding them: start() read ${r.restartReadMs.toFixed(0)} ms, first full set ${r.restartApplyMs.toFixed(0)} ms, ${r.restartMessages} netlink messages (the dumps), ${r.restartProgrammed} programmed`,
  );
  console.log(`ratio update petrel/ip-batch = ${(min(pU) / min(ipU)).toFixed(2)}x best; petrel 10% update / bulk load = ${(min(pU) / min(pB)).toFixed(2)}x`);
  console.log(`RSS petrel process ${r.rssMB.toFixed(1)} MB (grew ${r.rssGrowthMB.toFixed(1)} MB while programming; JS heap after GC ${r.heapAfterGcMB.toFixed(1)} MB holding ${n} routes); load average ${(await import('node:os')).loadavg()[0].toFixed(1)}`);
  rmSync(`${tmp}-bulk`, { force: true });
  rmSync(`${tmp}-update`, { force: true });
}
