// Fast paginated range reads for the initial load and resyncs: a raw gRPC call to
// etcdserverpb.KV/Range with a hand-written protobuf codec. The etcd3 package decodes through
// protobufjs into objects with string longs, which costs ~3× etcd's own time at 50k keys;
// this returns keys and values as Buffer slices of the response.
import { readFileSync } from 'node:fs';
import grpc from '@grpc/grpc-js';

/**
 * One key-value of a range response: the key decoded, the value left in the response buffer
 * (`buf[valueStart, valueEnd)`) so it is decoded once, straight to the string JSON.parse reads.
 */
export interface RawKv {
  key: string;
  buf: Buffer;
  valueStart: number;
  valueEnd: number;
  modRevision: string;
}

export interface RangeResult {
  revision: string;
  kvs: RawKv[];
  more: boolean;
  /** the last key's bytes as etcd sent them (where the next page starts) */
  lastKey?: Buffer;
}

function varint(n: bigint): number[] {
  const out: number[] = [];
  do {
    let b = Number(n & 0x7fn);
    n >>= 7n;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
}

function encodeRange(r: { key: Buffer; end: Buffer; limit: number; revision?: string }): Buffer {
  const parts: (Buffer | number[])[] = [];
  const bytes = (no: number, b: Buffer) => parts.push(varint(BigInt((no << 3) | 2)), varint(BigInt(b.length)), b);
  const int = (no: number, v: bigint) => parts.push(varint(BigInt(no << 3)), varint(v));
  bytes(1, r.key);
  bytes(2, r.end);
  if (r.limit) int(3, BigInt(r.limit));
  if (r.revision) int(4, BigInt(r.revision));
  return Buffer.concat(parts.map((p) => (Buffer.isBuffer(p) ? p : Buffer.from(p))));
}

class Reader {
  pos: number;
  constructor(
    readonly buf: Buffer,
    start = 0,
    readonly end = buf.length,
  ) {
    this.pos = start;
  }
  varint(): bigint {
    let shift = 0n;
    let out = 0n;
    for (;;) {
      const b = this.buf[this.pos++]!;
      out |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return out;
      shift += 7n;
    }
  }
  /** small varints (tags, lengths) without BigInt */
  small(): number {
    let shift = 0;
    let out = 0;
    for (;;) {
      const b = this.buf[this.pos++]!;
      out += (b & 0x7f) * 2 ** shift;
      if (!(b & 0x80)) return out;
      shift += 7;
    }
  }
  skipField(wire: number): void {
    if (wire === 0) this.small();
    else if (wire === 2) this.pos += this.small();
    else if (wire === 1) this.pos += 8;
    else if (wire === 5) this.pos += 4;
    else throw new Error(`unsupported protobuf wire type ${wire}`);
  }
}

export function decodeRange(buf: Buffer): RangeResult {
  const r = new Reader(buf);
  let revision = '0';
  let more = false;
  const kvs: RawKv[] = [];
  let lastKey: Buffer | undefined;
  while (r.pos < r.end) {
    const tag = r.small();
    const no = Math.floor(tag / 8);
    const wire = tag & 7;
    if (no === 1 && wire === 2) {
      // ResponseHeader { cluster_id=1, member_id=2, revision=3, raft_term=4 }
      const len = r.small();
      const h = new Reader(buf, r.pos, r.pos + len);
      while (h.pos < h.end) {
        const t = h.small();
        if (t >>> 3 === 3 && (t & 7) === 0) revision = String(h.varint());
        else h.skipField(t & 7);
      }
      r.pos += len;
    } else if (no === 2 && wire === 2) {
      // KeyValue { key=1, create_revision=2, mod_revision=3, version=4, value=5, lease=6 },
      // read with the one reader (no per-key reader or Buffer views)
      const len = r.small();
      const end = r.pos + len;
      let key = '';
      let keyStart = 0;
      let keyEnd = 0;
      let valueStart = 0;
      let valueEnd = 0;
      let modRevision = '0';
      while (r.pos < end) {
        const t = r.small();
        const f = t >>> 3;
        if (f === 1 && (t & 7) === 2) {
          const l = r.small();
          keyStart = r.pos;
          keyEnd = r.pos + l;
          key = buf.toString('utf8', keyStart, keyEnd);
          r.pos += l;
        } else if (f === 5 && (t & 7) === 2) {
          const l = r.small();
          valueStart = r.pos;
          valueEnd = r.pos + l;
          r.pos += l;
        } else if (f === 3 && (t & 7) === 0) modRevision = String(r.small());
        else r.skipField(t & 7);
      }
      r.pos = end;
      kvs.push({ key, buf, valueStart, valueEnd, modRevision });
      lastKey = buf.subarray(keyStart, keyEnd);
    } else if (no === 3 && wire === 0) more = r.small() !== 0;
    else r.skipField(wire);
  }
  return { revision, kvs, more, lastKey };
}

export interface RangeClientOptions {
  endpoints: string[];
  caFile?: string;
  certFile?: string;
  keyFile?: string;
}

/** Range reads over their own gRPC channel(s), first reachable endpoint wins. */
export class RangeClient {
  private readonly clients: grpc.Client[];
  private current = 0;

  constructor(opts: RangeClientOptions) {
    this.clients = opts.endpoints.map((e) => {
      const u = new URL(e);
      const target = `${u.hostname.includes(':') ? `[${u.hostname}]` : u.hostname}:${u.port || (u.protocol === 'https:' ? 443 : 2379)}`;
      const creds =
        u.protocol === 'https:' || opts.caFile
          ? grpc.credentials.createSsl(
              opts.caFile ? readFileSync(opts.caFile) : null,
              opts.keyFile ? readFileSync(opts.keyFile) : null,
              opts.certFile ? readFileSync(opts.certFile) : null,
            )
          : grpc.credentials.createInsecure();
      // a large HTTP/2 window lets etcd push the next (pipelined) page while the current one is decoded
      return new grpc.Client(target, creds, { 'grpc.max_receive_message_length': 256 * 1024 * 1024, 'grpc-node.flow_control_window': 64 * 1024 * 1024 });
    });
  }

  async range(req: { key: Buffer; end: Buffer; limit: number; revision?: string }, deadlineMs: number): Promise<RangeResult> {
    let last: unknown;
    for (let i = 0; i < this.clients.length; i++) {
      const idx = (this.current + i) % this.clients.length;
      try {
        const res = await new Promise<Buffer>((resolve, reject) =>
          this.clients[idx]!.makeUnaryRequest(
            '/etcdserverpb.KV/Range',
            encodeRange,
            (b: Buffer) => b,
            req,
            new grpc.Metadata(),
            { deadline: Date.now() + deadlineMs },
            (err, v) => (err ? reject(err) : resolve(v!)),
          ),
        );
        this.current = idx;
        return decodeRange(res);
      } catch (e) {
        last = e;
        // a compacted revision is an answer, not an unreachable endpoint
        if (/compacted|future rev/.test(String((e as Error)?.message))) throw e;
      }
    }
    throw last;
  }

  close(): void {
    for (const c of this.clients) c.close();
  }
}
