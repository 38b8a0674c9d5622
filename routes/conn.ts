// Request/response over one rtnetlink channel: dumps, and batches of many messages written into
// one datagram where only the last asks for an ACK (the kernel reports every failure anyway, and
// handles the messages of a datagram in order, so the last ACK means the whole batch is done).
import type { NetHost, NlChannel } from './host.js';
import { NLMSG_DONE, NLMSG_ERROR, NLM_F_ACK, NlWriter, parseError, parseMessages, type NlMsg } from './nl.js';

/** Max bytes per datagram: below the socket send buffer, and leaves room for error replies. */
export const BATCH_BYTES = 96 * 1024;

interface Pending {
  first: number;
  last: number;
  errors: Map<number, number>;
  resolve: (errors: Map<number, number>) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

interface DumpPending {
  msgs: NlMsg[];
  resolve: (m: NlMsg[]) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class NlError extends Error {
  constructor(
    message: string,
    readonly errno: number,
  ) {
    super(message);
  }
}

const ERRNO_NAMES: Record<number, string> = {
  1: 'EPERM',
  2: 'ENOENT',
  3: 'ESRCH',
  17: 'EEXIST',
  19: 'ENODEV',
  22: 'EINVAL',
  95: 'EOPNOTSUPP',
  100: 'ENETDOWN',
  101: 'ENETUNREACH',
  105: 'ENOBUFS',
  113: 'EHOSTUNREACH',
};

export function errnoName(errno: number): string {
  return ERRNO_NAMES[errno] ?? `errno ${errno}`;
}

export class NlConn {
  private seq = Math.floor(Math.random() * 0x7fffffff);
  private readonly batches: Pending[] = [];
  private readonly dumps = new Map<number, DumpPending>();
  /** netlink messages sent through this connection */
  messagesSent = 0;
  /**
   * Most messages per datagram: if every one failed, their error replies (~1 KB of receive
   * buffer each) must still fit, or the socket overflows (and the netlink package aborts on
   * ENOBUFS). 8,000 with this CI's 8 MB buffers, ~400 with Linux's default rmem_max.
   */
  readonly maxBatchMessages: number;
  datagramsSent = 0;

  private constructor(readonly ch: NlChannel) {
    this.maxBatchMessages = Math.max(32, Math.floor((ch.recvBufferSize || 212992) / 1024));
    ch.on('message', (buf: Buffer) => this.onMessage(buf));
    ch.on('error', (e: Error) => this.failAll(e));
  }

  static async open(host: NetHost): Promise<NlConn> {
    return new NlConn(await host.openNetlink({ rcvbuf: 4 * 1024 * 1024 }));
  }

  nextSeq(): number {
    this.seq = (this.seq + 1) >>> 0;
    if (this.seq === 0) this.seq = 1;
    return this.seq;
  }

  private failAll(e: Error): void {
    for (const b of this.batches.splice(0)) {
      clearTimeout(b.timer);
      b.reject(e);
    }
    for (const [, d] of this.dumps) {
      clearTimeout(d.timer);
      d.reject(e);
    }
    this.dumps.clear();
  }

  private onMessage(buf: Buffer): void {
    for (const m of parseMessages(buf)) {
      const d = this.dumps.get(m.seq);
      if (d) {
        if (m.type === NLMSG_DONE) {
          this.dumps.delete(m.seq);
          clearTimeout(d.timer);
          d.resolve(d.msgs);
        } else if (m.type === NLMSG_ERROR) {
          this.dumps.delete(m.seq);
          clearTimeout(d.timer);
          const { errno } = parseError(m);
          d.reject(new NlError(`netlink dump failed: ${errnoName(errno)}`, errno));
        } else d.msgs.push(m);
        continue;
      }
      if (m.type !== NLMSG_ERROR) continue;
      const { errno, seq } = parseError(m);
      const b = this.batches.find((x) => seqIn(seq, x.first, x.last));
      if (!b) continue;
      if (errno !== 0) b.errors.set(seq, errno);
      if (seq === b.last) {
        this.batches.splice(this.batches.indexOf(b), 1);
        clearTimeout(b.timer);
        b.resolve(b.errors);
      }
    }
  }

  /** Sends one dump request (written by `enc` with the given seq) and gathers the answer. */
  dump(enc: (w: NlWriter, seq: number) => void, timeoutMs = 30_000): Promise<NlMsg[]> {
    const w = new NlWriter(64);
    const seq = this.nextSeq();
    enc(w, seq);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.dumps.delete(seq);
        reject(new Error('netlink dump timed out'));
      }, timeoutMs);
      this.dumps.set(seq, { msgs: [], resolve, reject, timer });
      this.messagesSent++;
      this.datagramsSent++;
      this.ch.send(Buffer.from(w.view()));
    });
  }

  /**
   * Sends the messages in `w` (seqs `first..last`, written in order, the last one carrying
   * NLM_F_ACK) as one datagram; resolves with errno per failed seq.
   */
  sendBatch(w: NlWriter, first: number, last: number, count: number, timeoutMs = 30_000): Promise<Map<number, number>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.batches.findIndex((x) => x.first === first);
        if (i >= 0) this.batches.splice(i, 1);
        reject(new Error('netlink batch timed out'));
      }, timeoutMs);
      this.batches.push({ first, last, errors: new Map(), resolve, reject, timer });
      this.messagesSent += count;
      this.datagramsSent++;
      this.ch.send(Buffer.from(w.view()));
    });
  }

  /** One request with ACK; throws NlError on failure. */
  async request(enc: (w: NlWriter, seq: number, flags: number) => void): Promise<void> {
    const w = new NlWriter(256);
    const seq = this.nextSeq();
    enc(w, seq, NLM_F_ACK);
    const errs = await this.sendBatch(w, seq, seq, 1);
    const e = errs.get(seq);
    if (e) throw new NlError(errnoName(e), e);
  }

  close(): void {
    this.failAll(new Error('netlink connection closed'));
    this.ch.close();
  }
}

function seqIn(s: number, first: number, last: number): boolean {
  return first <= last ? s >= first && s <= last : s >= first || s <= last;
}

/**
 * Writes operations into datagrams of at most BATCH_BYTES, the last message of each carrying
 * NLM_F_ACK, and sends them one after another. `ops[i]` is written by `write(w, op, seq, flags)`.
 * Returns errno per op index (failed ops only).
 */
export async function runBatched<T>(
  conn: NlConn,
  ops: T[],
  write: (w: NlWriter, op: T, seq: number, ackFlag: number) => void,
): Promise<Map<number, number>> {
  const failed = new Map<number, number>();
  const w = new NlWriter(BATCH_BYTES + 4096);
  let i = 0;
  while (i < ops.length) {
    w.reset();
    const startIdx = i;
    const first = conn.nextSeq();
    let seq = first;
    // Write messages until the datagram is full; we only know the last after writing it, so
    // write without ACK and patch the flag into the final message's header.
    let lastStart = 0;
    for (;;) {
      lastStart = w.len;
      write(w, ops[i], seq, 0);
      i++;
      if (i >= ops.length || w.len >= BATCH_BYTES || i - startIdx >= conn.maxBatchMessages) break;
      seq = conn.nextSeq();
    }
    w.buf.writeUInt16LE(w.buf.readUInt16LE(lastStart + 6) | NLM_F_ACK, lastStart + 6);
    const errs = await conn.sendBatch(w, first, seq, i - startIdx);
    for (const [s, errno] of errs) failed.set(startIdx + ((s - first) >>> 0), errno);
  }
  return failed;
}
