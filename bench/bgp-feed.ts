// `npm run bench -- bgp-feed [--prefixes N] [--runs N]`: the 100k-prefix feed of
// shared/design/bgp-lab.md §6. An origin BIRD originates N IPv4 /24s (static blackholes),
// gobgpd relays them (eBGP both sides) to a sink BIRD 2 and to Petrel, one after the other in the
// same run. For each receiver: time from Established to all N in its table (Petrel: Loc-RIB
// size, checked inside the speaker process; BIRD: polling the relay channel's import counter over
// one `birdcl` session). The sink BIRD has no kernel protocol, so nothing consumes its table's
// changes; the Petrel figure compared with it is likewise a speaker with no best-route listener,
// and a second Petrel run per round, with a listener taking every change as the agent does, is
// reported next to it. Memory per route (Petrel: RSS after - before, both after a full GC, / N;
// BIRD: `show memory` routing tables delta / N, and its RSS delta). Also checks that keepalives
// kept flowing: the session never dropped, and the speaker's event loop never stalled near the
// keepalive interval. `--pcap` adds, per run, when the relay's UPDATE data reached each receiver
// (tcpdump).
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { vethPair, run, type NetNs } from '../test/netns.js';
import { Bird, Gobgp, Lab, PetrelProc, sleep, until } from '../test/bgp/harness.js';

function arg(args: string[], name: string, def: number): number {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? Number(args[i + 1]) : def;
}

/** utime + stime of a process in ms (clock ticks are 100 Hz on Linux). */
async function cpuMs(pid: number): Promise<number> {
  const { stdout } = await run('cat', [`/proc/${pid}/stat`]);
  const f = stdout.slice(stdout.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
}

async function rssKb(pid: number): Promise<number> {
  const { stdout } = await run('cat', [`/proc/${pid}/status`]);
  return Number(/VmRSS:\s+(\d+)/.exec(stdout)?.[1] ?? 0);
}

function birdMemBytes(text: string): number {
  // "Routing tables:      9.1 MB" (BIRD 2.0 prints effective size; 2.0.12 may also show overhead)
  const m = /Routing tables:\s+([\d.]+)\s*(B|kB|MB|GB)/.exec(text);
  if (!m) return 0;
  const mult: Record<string, number> = { B: 1, kB: 1024, MB: 1024 * 1024, GB: 1024 ** 3 };
  return Number(m[1]) * mult[m[2]!]!;
}

/**
 * The routes BIRD imported from the relay, over one persistent `birdcl` session: the channel's
 * import counter from `show protocols all relay` (O(1); `show route count` walks the whole table
 * on every poll, CPU taken from BIRD while it loads). birdcl echoes each command after its prompt
 * and prompts again when the reply is complete. Polling by spawning `birdc` every 20 ms would
 * cost a process start per poll, CPU taken from the relay and the sink BIRD while they work.
 */
function birdCounter(sock: string): { count(): Promise<number | undefined>; close(): void } {
  const cl = spawn('birdcl', ['-s', sock], { stdio: ['pipe', 'pipe', 'ignore'] });
  const CMD = 'show protocols all relay';
  let buf = '';
  let waiter: ((text: string) => void) | null = null;
  cl.stdout!.setEncoding('utf8');
  cl.stdout!.on('data', (d: string) => {
    buf += d;
    const start = buf.indexOf(CMD + '\n');
    if (start < 0 || !waiter) return;
    const end = buf.indexOf('\nbird> ', start);
    if (end < 0) return;
    const text = buf.slice(start, end);
    buf = buf.slice(end + 1);
    const w = waiter;
    waiter = null;
    w(text);
  });
  return {
    count: () =>
      new Promise((resolve) => {
        const t = setTimeout(() => {
          waiter = null;
          resolve(undefined);
        }, 5000);
        waiter = (text) => {
          clearTimeout(t);
          // No channel line yet (session not up): nothing imported.
          const m = /Routes:\s+(\d+) imported/.exec(text);
          resolve(m ? Number(m[1]) : 0);
        };
        cl.stdin!.write(CMD + '\n');
      }),
    close: () => {
      cl.stdin!.end();
      cl.kill();
    },
  };
}

/**
 * `--pcap`: tcpdump on the receiver's side of the relay link. Returns a function that stops the
 * capture and says when the relay's UPDATE data arrived relative to Established, next to when
 * the receiver had the whole table: whether a receiver's time is the relay's pacing or its own
 * backlog.
 */
async function capture(ns: NetNs, ifname: string, relay: string, file: string): Promise<(est: number, done: number) => Promise<string>> {
  // --immediate-mode: without it packets still in the capture ring when tcpdump is stopped are lost.
  // Filtered on the relay's address, not port 179: either side may open the session.
  const cap = ns.spawn('tcpdump', ['-i', ifname, '-U', '--immediate-mode', '-s', '0', '-w', file, `tcp and src host ${relay}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  await new Promise<void>((res, rej) => {
    let err = '';
    cap.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.includes('listening on')) res();
    });
    cap.once('exit', () => rej(new Error(`tcpdump: ${err.trim()}`)));
  });
  return async (est, done) => {
    await sleep(200);
    cap.kill('SIGINT');
    await new Promise((res) => cap.once('exit', res));
    const { stdout } = await run('tcpdump', ['-r', file, '-tt', '-n']);
    const data = stdout
      .split('\n')
      .filter((l) => Number(/length (\d+)/.exec(l)?.[1] ?? 0) > 100)
      .map((l) => Number(l.split(' ')[0]) * 1000 - est);
    if (!data.length) return 'no UPDATE data captured';
    return `relay's UPDATE data from +${data[0]!.toFixed(1)} to +${data[data.length - 1]!.toFixed(1)} ms after Established (${data.length} segments), whole table at +${(done - est).toFixed(1)} ms`;
  };
}

function birdSince(text: string, proto: string): number | undefined {
  // name  BGP  ---  up  20:41:07.123  Established
  const line = text.split('\n').find((l) => l.startsWith(proto + ' '));
  const m = line && /(\d{2}):(\d{2}):(\d{2})(?:\.(\d{3}))?/.exec(line);
  if (!m) return undefined;
  const d = new Date();
  d.setHours(Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4] ?? 0));
  return d.getTime();
}

export default async function bgpFeed(args: string[]): Promise<void> {
  const N = arg(args, 'prefixes', 100_000);
  const runs = arg(args, 'runs', 1);
  const lab = new Lab();
  try {
    const O = await lab.ns();
    const G = await lab.ns();
    const P = await lab.ns();
    const S = await lab.ns();
    await vethPair(O, 'vo', '10.77.9.1/30', G, 'vgo', '10.77.9.2/30');
    await vethPair(G, 'vgp', '10.77.9.5/30', P, 'vp', '10.77.9.6/30');
    await vethPair(G, 'vgs', '10.77.9.9/30', S, 'vs', '10.77.9.10/30');

    // origin BIRD: N static /24s from 16.0.0.0
    const routes: string[] = [];
    for (let i = 0; i < N; i++) routes.push(`route ${16 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}.0/24 blackhole;`);
    const inc = join(lab.dir, 'routes.conf');
    writeFileSync(inc, `protocol static feed { ipv4; ${routes.join('\n')} }\n`);
    await Bird.start(
      lab,
      O,
      'origin',
      `router id 10.77.9.1;\nprotocol device {}\ninclude "${inc}";\n` +
        `protocol bgp relay { local 10.77.9.1 as 65001; neighbor 10.77.9.2 as 65002; ipv4 { import none; export all; }; }\n`,
    );
    const g = await Gobgp.start(
      lab,
      G,
      'relay',
      Gobgp.toml({
        as: 65002,
        routerId: '10.77.9.2',
        localAddresses: ['10.77.9.2', '10.77.9.5', '10.77.9.9'],
        peers: [
          { ip: '10.77.9.1', as: 65001, localIp: '10.77.9.2', hold: 90 },
          { ip: '10.77.9.6', as: 65003, localIp: '10.77.9.5', hold: 90 },
          { ip: '10.77.9.10', as: 65004, localIp: '10.77.9.9', hold: 90 },
        ],
      }),
    );
    const t0 = Date.now();
    await until(
      'gobgpd holds the feed',
      async () => /Destination:\s*(\d+)/.exec(await g.cli('global', 'rib', 'summary', '-a', 'ipv4'))?.[1] === String(N),
      300_000,
      500,
    );
    console.log(`relay (gobgpd) learned ${N} prefixes from the origin BIRD in ~${((Date.now() - t0) / 1000).toFixed(1)} s (incl. start-up)`);

    const birdTimes: number[] = [];
    // The two parts of each time: Established -> first route in the table (the relay preparing
    // its table dump for the new peer: gobgpd's work, same for both receivers, and the noisiest
    // part on a shared machine), and first route -> all N (the receiver taking in the feed).
    const birdFirstTimes: number[] = [];
    const birdLoadTimes: number[] = [];
    const times = () => ({ total: [] as number[], first: [] as number[], load: [] as number[], cpu: [] as number[] });
    /** Petrel with no best-route listener (as the sink BIRD: Loc-RIB only), and with one. */
    const petrel = times();
    const petrelL = times();
    let birdBpr = 0;
    let birdRssBpr = 0;
    let petrelBpr = 0;
    let petrelHeapBpr = 0;
    let maxLag = 0;
    let drops = 0;
    const birdCpu: number[] = [];
    let detail = '';
    const nodeArgs = (() => {
      const i = args.indexOf('--node-args');
      // The agent runs with a small young generation (a big one is committed memory the RIB
      // never uses: ~380 B/route of RSS with the default 16 MB semi-spaces).
      return i >= 0 && args[i + 1] !== undefined ? args[i + 1]!.split(/\s+/).filter(Boolean) : ['--max-semi-space-size=2'];
    })();

    const pcap = args.includes('--pcap');
    for (let r = 0; r < runs; r++) {
      // --- sink BIRD
      const sinkConf =
        `router id 10.77.9.10;\nprotocol device {}\n` +
        `protocol bgp relay { local 10.77.9.10 as 65004; neighbor 10.77.9.9 as 65002; hold time 90; connect delay time 1; ipv4 { import all; export none; }; }\n`;
      const sinkCap = pcap ? await capture(S, 'vs', '10.77.9.9', `/tmp/petrel-feed-bird${r}.pcap`) : undefined;
      const sink = await Bird.start(lab, S, `sink${r}`, sinkConf);
      const memBefore = birdMemBytes(await sink.birdc('show', 'memory'));
      const sinkPid = Number((await run('cat', [join(lab.dir, `sink${r}.pid`)])).stdout.trim());
      const sinkRss0 = await rssKb(sinkPid);
      const sinkCpu0 = await cpuMs(sinkPid);
      let birdDone = 0;
      let birdFirst = 0;
      const counter = birdCounter(sink.sock);
      try {
        await until(
          'sink BIRD has the feed',
          async () => {
            const n = await counter.count();
            if (n !== undefined && !birdFirst && n > 0) birdFirst = Date.now();
            if (n !== undefined && n >= N) {
              birdDone = Date.now();
              return true;
            }
            return false;
          },
          120_000,
          20,
        );
      } finally {
        counter.close();
      }
      const since = birdSince(await sink.birdc('show', 'protocols', 'relay'), 'relay')!;
      birdTimes.push((birdDone - since) / 1000);
      birdFirstTimes.push((birdFirst - since) / 1000);
      birdLoadTimes.push((birdDone - birdFirst) / 1000);
      birdCpu.push((await cpuMs(sinkPid)) - sinkCpu0);
      birdBpr = (birdMemBytes(await sink.birdc('show', 'memory')) - memBefore) / N;
      birdRssBpr = ((await rssKb(sinkPid)) - sinkRss0) * 1024 / N;
      if (sinkCap) console.log(`  run ${r} BIRD:   ${await sinkCap(since, birdDone)}`);
      await sink.stop();

      // --- Petrel, twice: as the sink BIRD is (Loc-RIB only: no kernel protocol there, no
      // best-route listener here), and with a listener taking every best-route change as the
      // agent's routes hand-off does.
      for (const listen of [false, true]) {
        const p = await PetrelProc.start(lab, P, { routerId: '10.77.9.6', asNumber: 65003, gracefulRestart: { restartTime: 120, deferralTime: 1 } }, undefined, undefined, ['--expose-gc', ...nodeArgs]);
        if (!listen) await p.call('unlisten');
        await p.call('exports', { exports: [] });
        await sleep(300);
        const before = await p.call('gc');
        const rss0 = await rssKb(p.pid);
        await p.call('lagStart');
        const cpu0 = await p.call('cpu');
        const petrelCap = pcap && !listen ? await capture(P, 'vp', '10.77.9.5', `/tmp/petrel-feed-petrel${r}.pcap`) : undefined;
        await p.configure([{ address: '10.77.9.5', asNumber: 65002, type: 'global', holdTime: 9 }]);
        const done = await p.call('waitCount', { n: N, timeoutMs: 120_000 }, 130_000);
        const peer = await p.peer('10.77.9.5');
        if (peer.state !== 'Established') drops++;
        const estAt = Date.parse(done.establishedAt ?? peer.since);
        const cpu1 = await p.call('cpu');
        const t = listen ? petrelL : petrel;
        t.total.push((done.at - estAt) / 1000);
        t.first.push((done.firstAt - estAt) / 1000);
        t.load.push((done.at - done.firstAt) / 1000);
        t.cpu.push((cpu1.user + cpu1.system - cpu0.user - cpu0.system) / 1000);
        if (petrelCap) console.log(`  run ${r} Petrel: ${await petrelCap(estAt, done.at)}`);
        const lag = await p.call('lagStop');
        maxLag = Math.max(maxLag, lag.maxMs);
        await sleep(2500); // the speaker trims freed malloc memory ~2 s after a load
        const after = await p.call('gc');
        const bpr = ((await rssKb(p.pid)) - rss0) * 1024 / N;
        if (bpr >= petrelBpr) {
          // the largest figure of all Petrel runs, with or without a listener
          petrelBpr = bpr;
          petrelHeapBpr = (after.heapUsed - before.heapUsed) / N;
          detail = `heapTotal +${((after.heapTotal - before.heapTotal) / N).toFixed(0)} B/route, external +${((after.external - before.external) / N).toFixed(0)} B/route`;
        }
        const flaps = await p.status();
        if (flaps.peers[0].state !== 'Established') drops++;
        await p.call('exit').catch(() => undefined); // clean exit (lets --cpu-prof write its profile)
        await sleep(500);
        p.kill();
        await p.waitExit();
      }
    }

    const med = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
    const bt = med(birdTimes);
    const pt = med(petrel.total);
    const ptL = med(petrelL.total);
    const runsOf = (a: number[]) => a.map((t) => t.toFixed(3)).join(', ');
    const fmt = (a: number[]) => `${med(a).toFixed(3)} s (runs: ${runsOf(a)})`;
    console.log(`\nBGP feed: ${N} IPv4 /24s relayed by gobgpd, ${runs} run(s) each (median); speaker node flags: ${nodeArgs.join(' ') || '(none)'}`);
    console.log(`  time Established -> all ${N} in table (Loc-RIB; BIRD: master4 table, no kernel protocol):`);
    console.log(`    Petrel  ${pt.toFixed(3)} s   (runs: ${runsOf(petrel.total)}; no best-route listener, as BIRD has no kernel protocol)`);
    console.log(`    BIRD 2  ${bt.toFixed(3)} s   (runs: ${runsOf(birdTimes)}; polled every ~20 ms over one birdcl session: import counter)`);
    console.log(`    ratio Petrel/BIRD = ${(pt / bt).toFixed(2)}x   (target <= 1.0x)`);
    console.log(`    of which Established -> first route (gobgpd preparing its dump): Petrel ${fmt(petrel.first)}, BIRD 2 ${fmt(birdFirstTimes)}`);
    console.log(`    and first route -> all ${N}: Petrel ${fmt(petrel.load)}, BIRD 2 ${fmt(birdLoadTimes)} (BIRD polled every ~20 ms)`);
    console.log(`  the same with a best-route listener taking every change (the agent's hand-off to routes/):`);
    console.log(`    Petrel  ${ptL.toFixed(3)} s   (runs: ${runsOf(petrelL.total)}), ratio to BIRD ${(ptL / bt).toFixed(2)}x; first route -> all ${fmt(petrelL.load)}`);
    const bc = med(birdCpu);
    const pc = med(petrel.cpu);
    console.log(`  CPU time to take in the feed (load-independent): Petrel ${pc.toFixed(0)} ms (${med(petrelL.cpu).toFixed(0)} ms with the listener), BIRD 2 ${bc.toFixed(0)} ms (10 ms ticks), ratio ${(pc / Math.max(bc, 10)).toFixed(2)}x`);
    console.log(`  memory per route:`);
    console.log(`    Petrel  ${petrelBpr.toFixed(0)} B/route RSS delta after GC (V8 heap used +${petrelHeapBpr.toFixed(0)} B/route, ${detail})   (target <= 200)`);
    console.log(`    BIRD 2  ${birdBpr.toFixed(0)} B/route ('show memory' routing tables), ${birdRssBpr.toFixed(0)} B/route RSS delta`);
    console.log(`    ratio Petrel/BIRD (RSS) = ${(petrelBpr / birdRssBpr).toFixed(2)}x`);
    console.log(`  keepalives: session drops during load = ${drops}; max event-loop stall in the speaker = ${maxLag.toFixed(1)} ms (keepalive interval 3000 ms)`);
  } finally {
    await lab.cleanup();
  }
}
