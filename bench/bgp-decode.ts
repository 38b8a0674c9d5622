// UPDATE decode throughput: Petrel's codec vs a naive Buffer-walk decoder, same stream, same run.
//
//   npm run bench -- bgp-decode [--bird [--save FILE]] [--stream FILE] [--prefixes N] [--sets K] [--rounds R]
//
// --bird (root): captures the stream live from BIRD 2: BIRD (netns ptbc-*) originates N static
// /24s and exports them over eBGP to a recorder (bench/_bgp-collector.ts, second netns) that
// saves the raw UPDATE bytes; the benchmark then runs on that captured stream.
// Otherwise the stream is 100,000 IPv4 /24s packed in UPDATEs (as BIRD sends a static feed: one attribute set,
// many NLRI per message), generated with our encoder, or a raw captured byte stream (--stream:
// the bytes a peer sent after its OPEN, e.g. captured from BIRD by bench/bgp-capture or tcpdump).
// `--sets K` spreads the prefixes over K distinct attribute sets (default 1).
//
// Petrel: MessageReader over 64 KiB chunks + decodeMessage with an attribute cache (the RIB's
// intern table), counting prefixes through the packed number arrays.
// Baseline: a straightforward decoder that walks the buffer with readUInt16BE/readUInt32BE and
// builds one object per prefix ({prefix: "a.b.c.d/len", attrs: <fresh object per message>}),
// the way a first-cut Node decoder (or GoBGP's per-path structs) would.
// Also reported: heap retained per route when the decoded results are kept (RIB-like).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NetNs, isRoot, vethPair } from '../test/netns.js';
import {
  BgpNotification,
  MessageReader,
  decodeMessage,
  packUpdates,
  prefix4,
  type CodecContext,
  type DecodedAttributes,
  type PathAttributes,
  type UpdateMessage,
} from '../bgp/codec/index.js';

function arg(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

export function buildStream(prefixes: number, sets: number): Buffer {
  const ctx: CodecContext = { fourOctetAs: true };
  const out: Buffer[] = [];
  const per = Math.ceil(prefixes / sets);
  for (let s = 0; s < sets; s++) {
    const attrs: PathAttributes = {
      origin: 0,
      asPath: [{ type: 2, asns: [65001, 65100 + (s % 50)] }],
      nextHop: '10.77.0.1',
      med: s,
      communities: [65001 * 65536 + 1],
    };
    const list: number[] = [];
    for (let i = s * per; i < Math.min(prefixes, (s + 1) * per); i++) {
      list.push(prefix4((0x0a000000 + i * 256) >>> 0, 24));
    }
    out.push(...packUpdates(attrs, list, ctx));
  }
  return Buffer.concat(out);
}

function chunks(stream: Buffer, size = 65536): Buffer[] {
  const c: Buffer[] = [];
  for (let i = 0; i < stream.length; i += size) c.push(stream.subarray(i, i + size));
  return c;
}

/** Petrel: returns prefix count; keeps results in `keep` when given. */
function petrel(cs: Buffer[], keep?: { p: number[]; a: (DecodedAttributes | null)[] }): number {
  const ctx: CodecContext = { fourOctetAs: true, attrCache: new Map() };
  const reader = new MessageReader();
  let n = 0;
  for (const c of cs) {
    reader.push(c);
    for (let r = reader.next(); r !== null; r = reader.next()) {
      if (r instanceof BgpNotification) throw new Error(`stream error ${r.toString()}`);
      const m = decodeMessage(r, ctx);
      if (m instanceof BgpNotification) throw new Error(`decode error ${m.toString()}`);
      if (m.type !== 2) continue;
      const u = m as UpdateMessage;
      const nl = u.nlri;
      n += nl.length;
      if (keep) {
        for (let i = 0; i < nl.length; i++) {
          keep.p.push(nl[i]!);
          keep.a.push(u.attrs);
        }
      }
    }
  }
  return n;
}

interface NaiveRoute {
  prefix: string;
  attrs: Record<string, unknown>;
}

/** Baseline: naive Buffer walk, one object per prefix, attributes decoded per message. */
function naive(cs: Buffer[], keep?: NaiveRoute[]): number {
  let pending: Buffer = Buffer.alloc(0);
  let n = 0;
  for (const c of cs) {
    pending = pending.length ? Buffer.concat([pending, c]) : c;
    let off = 0;
    while (pending.length - off >= 19) {
      const len = pending.readUInt16BE(off + 16);
      if (pending.length - off < len) break;
      const type = pending[off + 18];
      if (type === 2) {
        const body = pending.subarray(off + 19, off + len);
        const wl = body.readUInt16BE(0);
        const al = body.readUInt16BE(2 + wl);
        const attrs: Record<string, unknown> = {};
        let p = 4 + wl;
        const aend = p + al;
        while (p < aend) {
          const flags = body[p]!;
          const t = body[p + 1]!;
          const l = flags & 0x10 ? body.readUInt16BE(p + 2) : body[p + 2]!;
          const v = p + (flags & 0x10 ? 4 : 3);
          if (t === 1) attrs.origin = body[v];
          else if (t === 2) {
            const segs: { type: number; asns: number[] }[] = [];
            let q = v;
            while (q < v + l) {
              const st = body[q]!;
              const sn = body[q + 1]!;
              const asns: number[] = [];
              for (let k = 0; k < sn; k++) asns.push(body.readUInt32BE(q + 2 + 4 * k));
              segs.push({ type: st, asns });
              q += 2 + 4 * sn;
            }
            attrs.asPath = segs;
          } else if (t === 3) attrs.nextHop = `${body[v]}.${body[v + 1]}.${body[v + 2]}.${body[v + 3]}`;
          else if (t === 4) attrs.med = body.readUInt32BE(v);
          else if (t === 8) {
            const cm: number[] = [];
            for (let k = 0; k < l; k += 4) cm.push(body.readUInt32BE(v + k));
            attrs.communities = cm;
          }
          p = v + l;
        }
        let q = aend;
        while (q < body.length) {
          const plen = body[q]!;
          const nb = (plen + 7) >> 3;
          const bytes = [0, 0, 0, 0];
          for (let k = 0; k < nb; k++) bytes[k] = body[q + 1 + k]!;
          const route: NaiveRoute = { prefix: `${bytes.join('.')}/${plen}`, attrs };
          n++;
          if (keep) keep.push(route);
          q += 1 + nb;
        }
      }
      off += len;
    }
    pending = pending.subarray(off);
  }
  return n;
}

function time(fn: () => number, rounds: number): { best: number; n: number } {
  let best = Infinity;
  let n = 0;
  for (let r = 0; r < rounds; r++) {
    const t0 = process.hrtime.bigint();
    n = fn();
    const dt = Number(process.hrtime.bigint() - t0) / 1e9;
    if (dt < best) best = dt;
  }
  return { best, n };
}

function heapAfterGc(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().heapUsed;
}

const mb = (x: number): string => `${(x / 1048576).toFixed(1)} MB`;

/** Capture N /24s as sent by BIRD 2 over eBGP (see header). Returns the raw byte stream. */
async function captureFromBird(n: number): Promise<Buffer> {
  if (!isRoot()) throw new Error('--bird needs root (network namespaces)');
  const dir = mkdtempSync(join(tmpdir(), 'ptbc-'));
  const nsB = await NetNs.create('ptbc');
  const nsC = await NetNs.create('ptbc');
  try {
    await vethPair(nsB, 'eth0', '10.99.0.1/30', nsC, 'eth0', '10.99.0.2/30');
    const routes: string[] = [];
    for (let i = 0; i < n; i++) {
      const a = (0x10000000 + i * 256) >>> 0; // 16.0.0.0/24 upwards, as in bgp-lab.md §6
      routes.push(`route ${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.0/24 blackhole;`);
    }
    writeFileSync(
      join(dir, 'bird.conf'),
      `router id 10.99.0.1;
protocol device { }
protocol static {
  ipv4;
${routes.join('\n')}
}
protocol bgp collector {
  local 10.99.0.1 as 65001;
  neighbor 10.99.0.2 as 65002;
  start delay time 1;
  hold time 90;
  ipv4 { import none; export all; };
}
`,
    );
    const out = join(dir, 'stream.bin');
    const collector = nsC.spawn(process.execPath, [join(dirname(fileURLToPath(import.meta.url)), '_bgp-collector.js'), '10.99.0.2', out, String(n)]);
    let text = '';
    const finished = new Promise<string>((resolve, reject) => {
      collector.stdout!.on('data', (d) => (text += d));
      collector.stderr!.on('data', (d) => (text += d));
      collector.on('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`collector exited ${code}: ${text}`))));
    });
    for (let i = 0; i < 50 && !text.includes('listening'); i++) await new Promise((r) => setTimeout(r, 100));
    const bird = nsB.spawn('bird', ['-f', '-c', join(dir, 'bird.conf'), '-s', join(dir, 'bird.ctl')]);
    bird.stderr!.on('data', (d) => (text += `bird: ${d}`));
    bird.on('exit', (code) => {
      if (code) text += `bird exited ${code}`;
    });
    const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`capture timed out: ${text}`)), 90_000).unref());
    const summary = await Promise.race([finished, timeout]);
    bird.kill('SIGKILL');
    console.log(`captured from BIRD: ${summary.split('\n').filter((l) => l.startsWith('{')).join(' ')}`);
    return readFileSync(out);
  } finally {
    await nsB.destroy();
    await nsC.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

export default async function main(args: string[]): Promise<void> {
  const nPrefixes = Number(arg(args, '--prefixes') ?? 100_000);
  let file = arg(args, '--stream');
  const sets = Number(arg(args, '--sets') ?? 1);
  const rounds = Number(arg(args, '--rounds') ?? 7);
  let stream: Buffer;
  if (args.includes('--bird')) {
    stream = await captureFromBird(nPrefixes);
    const save = arg(args, '--save');
    if (save) writeFileSync(save, stream);
    file = `captured from BIRD 2 (${nPrefixes} /24s)`;
  } else stream = file ? readFileSync(file) : buildStream(nPrefixes, sets);
  const cs = chunks(stream);
  console.log(
    `bgp-decode: stream ${file ?? `generated (${nPrefixes} /24s, ${sets} attribute set(s))`}, ${stream.length} octets in ${cs.length} chunks`,
  );

  // warm-up both, then alternate best-of-N
  petrel(cs);
  naive(cs);
  const p = time(() => petrel(cs), rounds);
  const b = time(() => naive(cs), rounds);
  if (p.n !== b.n) console.log(`WARNING: prefix counts differ: petrel ${p.n}, baseline ${b.n}`);
  const pr = p.n / p.best;
  const br = b.n / b.best;
  console.log(`petrel   : ${p.n} prefixes in ${(p.best * 1000).toFixed(1)} ms = ${(pr / 1e6).toFixed(2)} M prefixes/s`);
  console.log(`baseline : ${b.n} prefixes in ${(b.best * 1000).toFixed(1)} ms = ${(br / 1e6).toFixed(2)} M prefixes/s (naive Buffer walk, object per prefix)`);
  console.log(`ratio    : petrel is ${(pr / br).toFixed(2)}x the baseline's throughput`);

  // retained memory when results are kept (what a RIB would hold at minimum)
  const h0 = heapAfterGc();
  const keepP = { p: [] as number[], a: [] as (DecodedAttributes | null)[] };
  petrel(cs, keepP);
  const h1 = heapAfterGc();
  const keepB: NaiveRoute[] = [];
  naive(cs, keepB);
  const h2 = heapAfterGc();
  const perP = (h1 - h0) / keepP.p.length;
  const perB = (h2 - h1) / keepB.length;
  const gcNote = (globalThis as { gc?: unknown }).gc ? '' : ' (run node with --expose-gc for exact figures)';
  console.log(
    `retained : petrel ${perP.toFixed(0)} B/route (prefix number + shared attrs ref), baseline ${perB.toFixed(0)} B/route; ratio ${(perB / perP).toFixed(1)}x${gcNote}`,
  );
  // IPv6 (MP_REACH_NLRI, canonical text prefixes): Petrel only, for information
  const v6: string[] = [];
  for (let i = 0; i < 100_000; i++) v6.push(`fd00:${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}::/48`);
  const v6stream = Buffer.concat(packUpdates({ origin: 0, asPath: [{ type: 2, asns: [65001] }], mpNextHop: 'fd00::1' }, v6, { fourOctetAs: true }));
  const v6chunks = chunks(v6stream);
  const p6 = time(() => {
    const ctx: CodecContext = { fourOctetAs: true, attrCache: new Map() };
    const reader = new MessageReader();
    let n = 0;
    for (const c of v6chunks) {
      reader.push(c);
      for (let r = reader.next(); r !== null; r = reader.next()) {
        const m = decodeMessage(r as never, ctx) as UpdateMessage;
        n += m.mpReach?.nlri.length ?? 0;
      }
    }
    return n;
  }, rounds);
  console.log(`ipv6     : petrel ${p6.n} IPv6 /48s in MP_REACH in ${(p6.best * 1000).toFixed(1)} ms = ${(p6.n / p6.best / 1e6).toFixed(2)} M prefixes/s`);
  const ru = process.memoryUsage();
  console.log(`RSS ${mb(ru.rss)}, heapUsed ${mb(ru.heapUsed)}`);
  void keepP.a.length;
  void keepB.length;
}
