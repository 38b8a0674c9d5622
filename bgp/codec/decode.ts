// Decoders. Total functions: every input yields a message or a BgpNotification, never a throw.
import type {
  BgpNotification,
  CodecContext,
  Message,
  NotificationMessage,
  OpenMessage,
  RawMessage,
  RouteRefreshMessage,
  UpdateMessage,
  Prefix,
} from './types.js';

/** Decode a framed message (from MessageReader). */
export function decodeMessage(_msg: RawMessage, _ctx: CodecContext): Message | BgpNotification {
  throw new Error('not implemented');
}
/** Frame + decode one complete wire message (header included). */
export function decodeWire(_buf: Buffer, _ctx: CodecContext): Message | BgpNotification {
  throw new Error('not implemented');
}
export function decodeOpen(_body: Buffer): OpenMessage | BgpNotification {
  throw new Error('not implemented');
}
export function decodeUpdate(_body: Buffer, _ctx: CodecContext): UpdateMessage | BgpNotification {
  throw new Error('not implemented');
}
export function decodeNotification(_body: Buffer): NotificationMessage | BgpNotification {
  throw new Error('not implemented');
}
export function decodeRouteRefresh(_body: Buffer, _raw?: Buffer): RouteRefreshMessage | BgpNotification {
  throw new Error('not implemented');
}

/**
 * Visit every announced prefix of an UPDATE (NLRI field, then MP_REACH) without allocating.
 * Does not look at treatAsWithdraw: check it first.
 */
export function forEachNlri(u: UpdateMessage, cb: (p: Prefix, afi: number) => void): void {
  const n = u.nlri;
  for (let i = 0; i < n.length; i++) cb(n[i]!, 1);
  const m = u.mpReach;
  if (m && !m.unsupported) for (let i = 0; i < m.nlri.length; i++) cb(m.nlri[i]!, m.afi);
}

/** Visit every withdrawn prefix (withdrawn field, then MP_UNREACH). */
export function forEachWithdrawn(u: UpdateMessage, cb: (p: Prefix, afi: number) => void): void {
  const w = u.withdrawn;
  for (let i = 0; i < w.length; i++) cb(w[i]!, 1);
  const m = u.mpUnreach;
  if (m && !m.unsupported) for (let i = 0; i < m.withdrawn.length; i++) cb(m.withdrawn[i]!, m.afi);
}
