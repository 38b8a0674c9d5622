// Framing: TCP chunks in, complete header-validated messages out (RFC 4271 §4.1, §6.1).
import {
  BgpNotification,
  ErrorCode,
  HEADER_LENGTH,
  HeaderSubcode,
  MAX_MESSAGE_LENGTH,
  MessageType,
  type RawMessage,
} from './types.js';

export interface MessageReaderOptions {
  /** 4096 unless RFC 8654 extended messages were negotiated (then 65535). */
  maxMessageSize?: number;
}

/** Smallest valid total length per type (RFC 4271 §6.1, RFC 2918). */
const MIN_LENGTH: Record<number, number> = {
  [MessageType.OPEN]: 29,
  [MessageType.UPDATE]: 23,
  [MessageType.NOTIFICATION]: 21,
  [MessageType.KEEPALIVE]: 19,
  [MessageType.ROUTE_REFRESH]: 23,
};

/**
 * Check a header at buf[off..off+19). Returns the total message length, or a NOTIFICATION.
 * Exposed for decodeWire.
 */
export function checkHeader(buf: Buffer, off: number, max: number): number | BgpNotification {
  for (let i = 0; i < 16; i++) {
    if (buf[off + i] !== 0xff) {
      return new BgpNotification(
        ErrorCode.MESSAGE_HEADER,
        HeaderSubcode.CONNECTION_NOT_SYNCHRONIZED,
        undefined,
        'marker is not all ones',
      );
    }
  }
  const len = (buf[off + 16]! << 8) | buf[off + 17]!;
  const type = buf[off + 18]!;
  const lenData = (): Buffer => Buffer.from([buf[off + 16]!, buf[off + 17]!]);
  if (len < HEADER_LENGTH || len > max) {
    return new BgpNotification(
      ErrorCode.MESSAGE_HEADER,
      HeaderSubcode.BAD_MESSAGE_LENGTH,
      lenData(),
      `message length ${len} outside ${HEADER_LENGTH}..${max}`,
    );
  }
  const min = MIN_LENGTH[type];
  if (min === undefined) {
    return new BgpNotification(
      ErrorCode.MESSAGE_HEADER,
      HeaderSubcode.BAD_MESSAGE_TYPE,
      Buffer.from([type]),
      `unknown message type ${type}`,
    );
  }
  if (
    len < min ||
    (type === MessageType.KEEPALIVE && len !== HEADER_LENGTH) ||
    // RFC 8654 §3: OPEN (and KEEPALIVE) never exceed 4096 even with extended messages
    (type === MessageType.OPEN && len > MAX_MESSAGE_LENGTH)
  ) {
    return new BgpNotification(
      ErrorCode.MESSAGE_HEADER,
      HeaderSubcode.BAD_MESSAGE_LENGTH,
      lenData(),
      `length ${len} invalid for message type ${type}`,
    );
  }
  return len;
}

/**
 * Accumulates TCP chunks and yields complete messages. After a framing error every further
 * next() returns the same BgpNotification (the session must be closed with it).
 *
 * Returned bodies are views into the received chunks (no copy); they stay valid because the
 * reader never writes into a buffer it has handed out.
 */
export class MessageReader {
  private buf: Buffer = Buffer.alloc(0);
  private off = 0;
  private error: BgpNotification | null = null;
  private max: number;

  constructor(opts: MessageReaderOptions = {}) {
    this.max = opts.maxMessageSize ?? MAX_MESSAGE_LENGTH;
  }

  /** Append a TCP chunk. */
  push(chunk: Buffer): void {
    if (this.error || chunk.length === 0) return;
    if (this.off >= this.buf.length) {
      this.buf = chunk;
    } else {
      const rest = this.buf.subarray(this.off);
      this.buf = Buffer.concat([rest, chunk], rest.length + chunk.length);
    }
    this.off = 0;
  }

  /** Next complete message, a NOTIFICATION to send (framing error), or null (need more data). */
  next(): RawMessage | BgpNotification | null {
    if (this.error) return this.error;
    const buf = this.buf;
    const off = this.off;
    if (buf.length - off < HEADER_LENGTH) return null;
    const len = checkHeader(buf, off, this.max);
    if (typeof len !== 'number') {
      this.error = len;
      this.buf = Buffer.alloc(0);
      this.off = 0;
      return len;
    }
    if (buf.length - off < len) return null;
    this.off = off + len;
    if (this.off === buf.length) {
      this.buf = EMPTY;
      this.off = 0;
    }
    return {
      type: buf[off + 18] as MessageType,
      body: buf.subarray(off + HEADER_LENGTH, off + len),
      raw: buf.subarray(off, off + len),
    };
  }

  /** Octets buffered but not yet returned. */
  get buffered(): number {
    return this.buf.length - this.off;
  }

  /** Change the size limit (after OPEN negotiated RFC 8654). */
  setMaxMessageSize(n: number): void {
    this.max = n;
  }
}
const EMPTY = Buffer.alloc(0);
