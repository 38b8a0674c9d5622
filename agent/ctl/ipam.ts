// `petrel ctl ipam show|check|release` (calicoctl ipam analogue; docs/cni.md):
//   show [--show-blocks] [--ip X]   pools and blocks with utilisation, per-node block usage
//   check [-o report.json]          leaked addresses (no pod/endpoint holds them), handle and block problems
//   release --ip X ... | --from-report report.json
import { readFileSync, writeFileSync } from 'node:fs';
import type { CommandModule } from 'yargs';
import type { DatastoreOptions } from '../../datastore/types.js';
import { CtlExit, EXIT_BAD_INPUT, EXIT_OK, io, processIO } from './io.js';
import { ctlDatastoreOptions, toExit } from './resources.js';
import { boxTable } from './table.js';

type Cni = typeof import('../../cni/index.js');

function pct(n: number, total: bigint): string {
  if (total === 0n) return '0%';
  return `${Math.round((n * 100) / Number(total))}%`;
}

/** Addresses held by a live workload endpoint (Calico WEPs and pods derived from the datastore). */
async function liveAddresses(opts: DatastoreOptions): Promise<Set<string>> {
  const { createDatastore } = await import('../../datastore/factory.js');
  const ds = await createDatastore(opts);
  try {
    const out = new Set<string>();
    const weps = await ds.list('WorkloadEndpoint');
    for (const w of weps) for (const n of (w.spec?.ipNetworks ?? []) as string[]) out.add(String(n).split('/')[0]);
    const pods = await ds.list('Pod').catch(() => []);
    for (const p of pods) {
      for (const ip of (p.status?.podIPs ?? []) as { ip: string }[]) if (ip?.ip) out.add(ip.ip);
      if (p.status?.podIP) out.add(p.status.podIP);
      const ann = p.metadata?.annotations?.['cni.projectcalico.org/podIPs'];
      if (ann) for (const c of ann.split(',')) if (c) out.add(c.split('/')[0]);
    }
    return out;
  } finally {
    await ds.close().catch(() => undefined);
  }
}

async function withStore<T>(argv: Record<string, unknown>, fn: (cni: Cni, store: import('../../cni/index.js').IpamStore, opts: DatastoreOptions) => Promise<T>): Promise<T> {
  const cni: Cni = await import('../../cni/index.js');
  const opts = ctlDatastoreOptions(argv);
  const store = await cni.openIpamStore(opts);
  try {
    return await fn(cni, store, opts);
  } finally {
    await store.close().catch(() => undefined);
  }
}

async function show(argv: Record<string, unknown>): Promise<void> {
  await withStore(argv, async (cni, store) => {
    const snap = await cni.snapshot(store);
    if (argv.ip) {
      const ip = String(argv.ip);
      const a = cni.allocations(snap).find((x) => x.ip === ip);
      if (!a) {
        io().out(`${ip} is not assigned\n`);
        return;
      }
      io().out(`IP ${ip} is in use\nHandle ID: ${a.handle ?? ''}\nAttributes:\n${Object.entries(a.attrs).map(([k, v]) => `  ${k}: ${v}\n`).join('')}`);
      return;
    }
    const rows = cni.usage(snap, !!argv['show-blocks']);
    io().out(
      boxTable(
        ['GROUPING', 'CIDR', 'IPS TOTAL', 'IPS IN USE', 'IPS FREE'],
        rows.map((r) => [r.grouping, r.cidr, r.total.toString(), `${r.inUse} (${pct(r.inUse, r.total)})`, `${r.free} (${pct(Number(r.free), r.total)})`]),
      ),
    );
    if (argv['show-blocks']) {
      const perNode = new Map<string, { blocks: number; used: number; total: bigint }>();
      for (const r of rows.filter((x) => x.grouping === 'Block')) {
        const n = r.node ?? '(no affinity)';
        const e = perNode.get(n) ?? { blocks: 0, used: 0, total: 0n };
        e.blocks++;
        e.used += r.inUse;
        e.total += r.total;
        perNode.set(n, e);
      }
      io().out(
        boxTable(
          ['NODE', 'BLOCKS', 'IPS TOTAL', 'IPS IN USE'],
          [...perNode].sort().map(([n, e]) => [n, String(e.blocks), e.total.toString(), `${e.used} (${pct(e.used, e.total)})`]),
        ),
      );
    }
  });
}

async function checkVerb(argv: Record<string, unknown>): Promise<void> {
  await withStore(argv, async (cni, store, opts) => {
    const snap = await cni.snapshot(store);
    let live: Set<string> | undefined;
    try {
      live = await liveAddresses(opts);
    } catch (e) {
      io().err(`warning: could not list workload endpoints (${(e as Error).message}); leak detection skipped\n`);
    }
    io().out(`Checking IPAM for inconsistencies...\n\nFound ${snap.pools.length} IP pool(s), ${snap.blocks.length} block(s), ${snap.handles.length} handle(s).\n`);
    const rep = cni.check(snap, live ? (a) => live!.has(a.ip) : undefined);
    io().out(`Found ${rep.allocations} allocation(s).\n`);
    for (const p of rep.problems) io().out(`  ${p}\n`);
    io().out(`Check complete; found ${rep.problems.length} problems.\n`);
    if (argv.output) {
      writeFileSync(
        String(argv.output),
        JSON.stringify({ version: 1, generatedAt: new Date().toISOString(), problems: rep.problems, leaked: rep.leaked }, null, 2) + '\n',
      );
      io().out(`Report written to ${argv.output}\n`);
    }
    if (rep.problems.length) throw new CtlExit(EXIT_BAD_INPUT, `ipam check: ${rep.problems.length} problem(s) found`);
  });
}

async function release(argv: Record<string, unknown>): Promise<void> {
  const ips: string[] = ([] as unknown[]).concat(argv.ip ?? []).map(String);
  if (argv['from-report']) {
    let rep: any;
    try {
      rep = JSON.parse(readFileSync(String(argv['from-report']), 'utf8'));
    } catch (e) {
      throw new CtlExit(EXIT_BAD_INPUT, `ipam release: cannot read report ${argv['from-report']}: ${(e as Error).message}`);
    }
    if (!Array.isArray(rep?.leaked)) throw new CtlExit(EXIT_BAD_INPUT, `ipam release: ${argv['from-report']} is not a report of 'petrel ctl ipam check -o'`);
    ips.push(...rep.leaked.map((a: any) => String(a.ip)));
  }
  if (!ips.length) throw new CtlExit(EXIT_BAD_INPUT, 'ipam release: name addresses with --ip or --from-report');
  await withStore(argv, async (cni, store, opts) => {
    if (argv['from-report'] && !argv.force) {
      // A report may be stale: never free an address a live endpoint holds now.
      const live = await liveAddresses(opts);
      const busy = ips.filter((ip) => live.has(ip));
      if (busy.length) throw new CtlExit(EXIT_BAD_INPUT, `ipam release: the report is stale: ${busy.join(', ')} now belong to live endpoints (use --force to release anyway)`);
    }
    const ipam = new cni.Ipam(store);
    const freed = await ipam.releaseIps(ips);
    for (const ip of ips.filter((x) => !freed.includes(x))) io().err(`${ip} was not assigned\n`);
    io().out(`Released ${freed.length} IPs successfully\n`);
  });
}

export const ipamCommand: CommandModule = {
  command: 'ipam <verb>',
  describe: 'IP address management: show, check, release (calicoctl ipam)',
  builder: (y) =>
    y
      .positional('verb', { type: 'string', choices: ['show', 'check', 'release'] })
      .option('show-blocks', { type: 'boolean', default: false, describe: 'show: blocks and per-node usage too' })
      .option('ip', { type: 'string', describe: 'show: one address; release: address(es) to release (repeatable)' })
      .option('output', { alias: 'o', type: 'string', describe: 'check: write a JSON report for release --from-report' })
      .option('from-report', { type: 'string', describe: 'release: the leaked addresses of a check report' })
      .option('force', { type: 'boolean', default: false, describe: 'release: skip the live-endpoint re-check' }),
  handler: async (argv) => {
    const a = argv as Record<string, unknown>;
    let code = EXIT_OK;
    try {
      if (a.verb === 'show') await show(a);
      else if (a.verb === 'check') await checkVerb(a);
      else if (a.verb === 'release') await release(a);
      else throw new CtlExit(EXIT_BAD_INPUT, `ipam: unknown verb ${String(a.verb)} (show, check, release)`);
    } catch (e) {
      const ex = toExit(e, `ipam ${String(a.verb)}`);
      io().err(ex.message.replace(/\n?$/, '\n'));
      code = ex.code;
    }
    // the real binary exits with the code; an in-process run (tests, with their own IO) reads lastCode
    if (code !== EXIT_OK && io() === processIO) process.exitCode = code;
    (ipamCommand as { lastCode?: number }).lastCode = code;
  },
};
