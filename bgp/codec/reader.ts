// Framing: TCP chunks in, complete header-validated messages out.
import { BgpNotification, type RawMessage } from './types.js';

export interface MessageReaderOptions {
  /** 4096 unless RFC 8654 extended messages were negotiated (then 65535). */
  maxMessageSize?: number;
}

/**
 * Accumulates TCP chunks and yields complete messages. After a framing error every further
 * next() returns the same BgpNotification (the session must be closed with it).
 */
export class MessageReader {
  constructor(_opts: MessageReaderOptions = {}) {}
  /** Append a TCP chunk. */
  push(_chunk: Buffer): void {
    throw new Error('not implemented');
  }
  /** Next complete message, a NOTIFICATION to send (framing error), or null (need more data). */
  next(): RawMessage | BgpNotification | null {
    throw new Error('not implemented');
  }
  /** Octets buffered but not yet returned. */
  get buffered(): number {
    return 0;
  }
  /** Change the size limit (after OPEN negotiated RFC 8654). */
  setMaxMessageSize(_n: number): void {}
}
