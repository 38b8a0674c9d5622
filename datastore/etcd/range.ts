// Fast paginated range reads for the initial load and resyncs: a raw gRPC call to
// etcdserverpb.KV/Range with a hand-written protobuf codec. The etcd3 package decodes through
// protobufjs into objects with string longs, which costs ~3× etcd's own time at 50k keys;
// this returns keys and values as Buffer slices of the response.
import { readFileSync } from 'node:fs';
import http2 from 'node:http2';

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

/** gRPC status codes by number, for error messages in grpc-js's form (`14 UNAVAILABLE: ...`). */
const GRPC_CODES = ['OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED'];

const grpcError = (code: number, message: string) => Object.assign(new Error(`${code} ${GRPC_CODES[code] ?? 'UNKNOWN'}: ${message}`), { code });

/** The largest Range response read (as grpc.max_receive_message_length was). */
const MAX_MESSAGE = 256 * 1024 * 1024;
/** HTTP/2 flow-control window: etcd pushes the next (pipelined) page while the current one is decoded. */
const WINDOW = 64 * 1024 * 1024;

/**
 * Range reads as unary gRPC calls over node:http2, first reachable endpoint wins. Not grpc-js:
 * a response is copied once, straight from the HTTP/2 frames into one of two buffers that
 * alternate between calls (no per-call allocation of fresh memory and no second copy), which
 * is a third of the client-side cost of a 38 MB load.
 *
 * A result's `kvs` point into such a buffer: they stay valid until the second range() call
 * after the one that returned them (so one page can be decoded while the next is read).
 * release() drops the buffers and the connections (after a load; the next call reconnects).
 */
export class RangeClient {
  private readonly targets: { authority: string; tls?: http2.SecureClientSessionOptions }[];
  private readonly sessions: (http2.ClientHttp2Session | undefined)[];
  private current = 0;
  private readonly bufs: Buffer[] = [Buffer.alloc(0), Buffer.alloc(0)];
  private slot = 0;
  /** bumped by release(): calls from before it no longer touch the buffers */
  private generation = 0;
  private closed = false;

  constructor(opts: RangeClientOptions) {
    this.targets = opts.endpoints.map((e) => {
      const u = new URL(e);
      const tls = u.protocol === 'https:' || opts.caFile !== undefined;
      const host = u.hostname.includes(':') && !u.hostname.startsWith('[') ? `[${u.hostname}]` : u.hostname;
      const authority = `${tls ? 'https' : 'http'}://${host}:${u.port || (u.protocol === 'https:' ? 443 : 2379)}`;
      if (!tls) return { authority };
      return {
        authority,
        tls: {
          ...(opts.caFile ? { ca: readFileSync(opts.caFile) } : {}),
          ...(opts.keyFile ? { key: readFileSync(opts.keyFile) } : {}),
          ...(opts.certFile ? { cert: readFileSync(opts.certFile) } : {}),
          ALPNProtocols: ['h2'],
        },
      };
    });
    this.sessions = this.targets.map(() => undefined);
  }

  private session(i: number): http2.ClientHttp2Session {
    const old = this.sessions[i];
    if (old && !old.closed && !old.destroyed) return old;
    const t = this.targets[i]!;
    const s = http2.connect(t.authority, { ...t.tls, settings: { initialWindowSize: WINDOW } });
    s.once('connect', () => {
      try {
        s.setLocalWindowSize(WINDOW);
      } catch {
        // closed meanwhile: its calls fail on their own
      }
    });
    // a failed session fails its calls (each has its own error handler); the next call reconnects
    const drop = () => {
      if (this.sessions[i] === s) this.sessions[i] = undefined;
    };
    s.on('error', drop);
    s.on('goaway', drop);
    s.on('close', drop);
    this.sessions[i] = s;
    return s;
  }

  private call(i: number, message: Buffer, slot: number, deadlineMs: number): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => {
      let s: http2.ClientHttp2Session;
      try {
        s = this.session(i);
      } catch (e) {
        reject(grpcError(14, (e as Error).message));
        return;
      }
      let settled = false;
      const generation = this.generation;
      const done = (err: Error | undefined, v?: Buffer) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        s.off('error', onSessionError);
        if (err) {
          if (!stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
          reject(err);
        } else resolve(v!);
      };
      const onSessionError = (e: Error) => done(grpcError(14, e.message));
      s.once('error', onSessionError);
      const timer = setTimeout(() => {
        // a connection that stopped answering is not reused
        if (this.sessions[i] === s) this.sessions[i] = undefined;
        s.destroy();
        done(grpcError(4, `Deadline exceeded after ${deadlineMs} ms`));
      }, deadlineMs);
      const stream = s.request({
        ':method': 'POST',
        ':path': '/etcdserverpb.KV/Range',
        'content-type': 'application/grpc',
        te: 'trailers',
        'grpc-timeout': `${Math.max(1, Math.ceil(deadlineMs))}m`,
      });
      const head = Buffer.allocUnsafe(5);
      head[0] = 0;
      head.writeUInt32BE(message.length, 1);
      stream.end(Buffer.concat([head, message]));

      let status: string | undefined;
      let grpcStatus: string | undefined;
      let grpcMessage = '';
      const prefix = Buffer.alloc(5);
      let prefixGot = 0;
      let len = -1;
      let got = 0;
      let body: Buffer | undefined;
      const onHeaders = (h: http2.IncomingHttpHeaders) => {
        if (h[':status'] !== undefined) status = String(h[':status']);
        if (h['grpc-status'] !== undefined) grpcStatus = String(h['grpc-status']);
        if (h['grpc-message'] !== undefined) {
          try {
            grpcMessage = decodeURIComponent(String(h['grpc-message']));
          } catch {
            grpcMessage = String(h['grpc-message']);
          }
        }
      };
      stream.on('response', onHeaders);
      stream.on('trailers', onHeaders);
      stream.on('data', (chunk: Buffer) => {
        if (settled) return;
        if (generation !== this.generation) return done(grpcError(1, 'range client released'));
        let o = 0;
        if (prefixGot < 5) {
          o = chunk.copy(prefix, prefixGot, 0, Math.min(chunk.length, 5 - prefixGot));
          prefixGot += o;
          if (prefixGot < 5) return;
          if (prefix[0] !== 0) return done(grpcError(13, 'compressed Range response (none was asked for)'));
          len = prefix.readUInt32BE(1);
          if (len > MAX_MESSAGE) return done(grpcError(8, `Range response larger than max (${len} vs ${MAX_MESSAGE})`));
          if (this.bufs[slot]!.length < len) this.bufs[slot] = Buffer.allocUnsafeSlow(len);
          body = this.bufs[slot]!;
        }
        if (got + chunk.length - o > len) return done(grpcError(13, 'more than one message in a unary Range response'));
        got += chunk.copy(body!, got, o);
      });
      stream.on('error', (e: Error) => done(grpcError(14, e.message)));
      stream.on('close', () => {
        if (settled) return;
        if (grpcStatus !== undefined && grpcStatus !== '0') return done(grpcError(Number(grpcStatus), grpcMessage));
        if (status !== undefined && status !== '200') return done(grpcError(14, `HTTP status ${status} from ${this.targets[i]!.authority}`));
        if (grpcStatus === undefined) return done(grpcError(14, `stream closed without a gRPC status (${stream.rstCode ? `reset, code ${stream.rstCode}` : 'no trailers'})`));
        if (len < 0 || got !== len) return done(grpcError(13, `incomplete Range response (${got} of ${len < 0 ? '?' : len} bytes)`));
        if (generation !== this.generation) return done(grpcError(1, 'range client released'));
        done(undefined, body!.subarray(0, len));
      });
    });
  }

  async range(req: { key: Buffer; end: Buffer; limit: number; revision?: string }, deadlineMs: number): Promise<RangeResult> {
    if (this.closed) throw grpcError(1, 'range client closed');
    const message = encodeRange(req);
    // one buffer per call, whichever endpoint answers: the other one holds the previous result
    const slot = (this.slot ^= 1);
    let last: unknown;
    for (let i = 0; i < this.targets.length; i++) {
      const idx = (this.current + i) % this.targets.length;
      try {
        const res = await this.call(idx, message, slot, deadlineMs);
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

  /** Drops the buffers and connections (results returned so far must no longer be used). */
  release(): void {
    this.generation++;
    this.bufs[0] = Buffer.alloc(0);
    this.bufs[1] = Buffer.alloc(0);
    for (let i = 0; i < this.sessions.length; i++) {
      this.sessions[i]?.destroy();
      this.sessions[i] = undefined;
    }
  }

  close(): void {
    this.closed = true;
    this.release();
  }
}
