// Names for NOTIFICATION codes and helpers to build the common ones.
import { BgpNotification, CeaseSubcode, ErrorCode } from './types.js';

const CODE_NAMES: Record<number, string> = {
  1: 'Message Header Error',
  2: 'OPEN Message Error',
  3: 'UPDATE Message Error',
  4: 'Hold Timer Expired',
  5: 'Finite State Machine Error',
  6: 'Cease',
  7: 'ROUTE-REFRESH Message Error',
};
const SUBCODE_NAMES: Record<number, Record<number, string>> = {
  1: { 1: 'Connection Not Synchronized', 2: 'Bad Message Length', 3: 'Bad Message Type' },
  2: {
    1: 'Unsupported Version Number',
    2: 'Bad Peer AS',
    3: 'Bad BGP Identifier',
    4: 'Unsupported Optional Parameter',
    6: 'Unacceptable Hold Time',
    7: 'Unsupported Capability',
    11: 'Role Mismatch',
  },
  3: {
    1: 'Malformed Attribute List',
    2: 'Unrecognized Well-known Attribute',
    3: 'Missing Well-known Attribute',
    4: 'Attribute Flags Error',
    5: 'Attribute Length Error',
    6: 'Invalid ORIGIN Attribute',
    8: 'Invalid NEXT_HOP Attribute',
    9: 'Optional Attribute Error',
    10: 'Invalid Network Field',
    11: 'Malformed AS_PATH',
  },
  5: {
    1: 'Receive Unexpected Message in OpenSent State',
    2: 'Receive Unexpected Message in OpenConfirm State',
    3: 'Receive Unexpected Message in Established State',
  },
  6: {
    1: 'Maximum Number of Prefixes Reached',
    2: 'Administrative Shutdown',
    3: 'Peer De-configured',
    4: 'Administrative Reset',
    5: 'Connection Rejected',
    6: 'Other Configuration Change',
    7: 'Connection Collision Resolution',
    8: 'Out of Resources',
    9: 'Hard Reset',
    10: 'BFD Down',
  },
  7: { 1: 'Invalid Message Length' },
};

/** "OPEN Message Error / Bad Peer AS" (falls back to numbers). */
export function notificationName(code: number, subcode: number): string {
  const c = CODE_NAMES[code] ?? `code ${code}`;
  if (subcode === 0) return `${c} / Unspecific`;
  return `${c} / ${SUBCODE_NAMES[code]?.[subcode] ?? `subcode ${subcode}`}`;
}

/** RFC 9003 shutdown communication text carried in Cease 2/4 data, if any. */
export function shutdownCommunication(n: { code: number; subcode: number; data: Buffer }): string | undefined {
  if (n.code !== ErrorCode.CEASE) return undefined;
  if (n.subcode !== CeaseSubcode.ADMINISTRATIVE_SHUTDOWN && n.subcode !== CeaseSubcode.ADMINISTRATIVE_RESET) {
    return undefined;
  }
  if (n.data.length < 1) return undefined;
  const len = n.data[0]!;
  if (len === 0 || len + 1 > n.data.length) return undefined;
  return n.data.toString('utf8', 1, 1 + len);
}

/** A Cease NOTIFICATION, optionally with an RFC 9003 shutdown communication (≤ 255 octets). */
export function cease(subcode: CeaseSubcode, message?: string): BgpNotification {
  let data = Buffer.alloc(0);
  if (
    message &&
    (subcode === CeaseSubcode.ADMINISTRATIVE_SHUTDOWN || subcode === CeaseSubcode.ADMINISTRATIVE_RESET)
  ) {
    let m = message;
    while (Buffer.byteLength(m, 'utf8') > 255) m = m.slice(0, -1); // never split a character
    const text = Buffer.from(m, 'utf8');
    data = Buffer.concat([Buffer.from([text.length]), text]);
  }
  return new BgpNotification(ErrorCode.CEASE, subcode, data, message ?? '');
}

export function holdTimerExpired(): BgpNotification {
  return new BgpNotification(ErrorCode.HOLD_TIMER_EXPIRED, 0, undefined, 'hold timer expired');
}

/** RFC 6608 FSM error for a message type arriving in the wrong state. */
export function fsmError(state: 'OpenSent' | 'OpenConfirm' | 'Established' | 'other', msgType: number): BgpNotification {
  const sub = state === 'OpenSent' ? 1 : state === 'OpenConfirm' ? 2 : state === 'Established' ? 3 : 0;
  return new BgpNotification(ErrorCode.FSM, sub, undefined, `unexpected message type ${msgType} in ${state}`);
}
