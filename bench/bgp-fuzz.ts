// Codec mutation fuzzer: `npm run bench -- bgp-fuzz [N] [--seed S]` (N default 1,000,000).
// Prints the crash count (must be 0), outcome counts, the mutation rate and RSS. A crash is any
// exception escaping MessageReader/decodeMessage/re-encoding, or the decoder's safety net firing.
// Baseline for the rate: decoding the unmutated corpus messages (the same pipeline, valid input).
import { BgpNotification, MessageReader, decodeMessage } from '../bgp/codec/index.js';
import { fuzzCorpus, runFuzz } from '../bgp/codec/fuzz.js';

export default async function main(args: string[]): Promise<void> {
  const seedIdx = args.indexOf('--seed');
  const seed = seedIdx >= 0 ? Number(args[seedIdx + 1]) : 20261125;
  const nArg = args.find((a, i) => /^\d+$/.test(a) && args[i - 1] !== '--seed');
  const total = nArg ? Number(nArg) : 1_000_000;
  const slice = 100_000;
  let crashes = 0;
  let mismatches = 0;
  let firstMismatch: unknown;
  const agg = { messages: 0, notifications: 0, treatAsWithdraw: 0, discards: 0, needMore: 0 };
  let first: { input: string; error: string } | undefined;
  const t0 = process.hrtime.bigint();
  for (let done = 0, k = 0; done < total; done += slice, k++) {
    const n = Math.min(slice, total - done);
    const st = runFuzz(n, (seed + k * 7919) >>> 0);
    crashes += st.crashes;
    mismatches += st.mismatches;
    firstMismatch ??= st.firstMismatch;
    first ??= st.firstCrash;
    agg.messages += st.messages;
    agg.notifications += st.notifications;
    agg.treatAsWithdraw += st.treatAsWithdraw;
    agg.discards += st.discards;
    agg.needMore += st.needMore;
  }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;

  // baseline: the same pipeline on the valid corpus
  const corpus = fuzzCorpus();
  const ctx = { fourOctetAs: true };
  const tb = process.hrtime.bigint();
  let nb = 0;
  while (nb < 200_000) {
    for (const m of corpus) {
      const r = new MessageReader();
      r.push(m);
      const raw = r.next();
      if (raw && !(raw instanceof BgpNotification)) decodeMessage(raw, ctx);
      nb++;
    }
  }
  const bsecs = Number(process.hrtime.bigint() - tb) / 1e9;

  console.log(`bgp-fuzz: ${total} mutations (seed ${seed}) in ${secs.toFixed(1)} s = ${Math.round(total / secs)} mutations/s`);
  console.log(`crashes  : ${crashes}`);
  console.log(`differential: ${mismatches} clean UPDATEs whose decode→encode→decode differed`);
  console.log(
    `outcomes : ${agg.messages} decoded messages, ${agg.notifications} NOTIFICATIONs, ${agg.treatAsWithdraw} treat-as-withdraw, ${agg.discards} with attribute discard, ${agg.needMore} incomplete (reader waits for more data)`,
  );
  console.log(
    `baseline : valid-corpus decode ${Math.round(nb / bsecs)} messages/s; mutated pipeline (mutate + frame + decode + re-encode) runs at ${((total / secs) / (nb / bsecs)).toFixed(2)}x that rate`,
  );
  console.log(`RSS ${(process.memoryUsage().rss / 1048576).toFixed(1)} MB`);
  if (first) console.log(`first crash: input ${first.input}\n${first.error}`);
  if (firstMismatch) console.log(`first mismatch: ${JSON.stringify(firstMismatch)}`);
}
