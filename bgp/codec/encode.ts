// Encoders. They return complete wire messages (header included).
import type { CodecContext, OpenSpec, PathAttributes, Prefix, UpdateSpec } from './types.js';

export function encodeOpen(_open: OpenSpec): Buffer {
  throw new Error('not implemented');
}
export function encodeKeepalive(): Buffer {
  throw new Error('not implemented');
}
export function encodeNotification(_n: { code: number; subcode: number; data?: Buffer }): Buffer {
  throw new Error('not implemented');
}
export function encodeRouteRefresh(_afi: number, _safi: number, _subtype?: number): Buffer {
  throw new Error('not implemented');
}
export function encodeUpdate(_u: UpdateSpec, _ctx: CodecContext): Buffer {
  throw new Error('not implemented');
}
/** Encode a path attribute block (no MP attributes) for the session. */
export function encodeAttributes(_attrs: PathAttributes, _ctx: CodecContext): Buffer {
  throw new Error('not implemented');
}
export interface PackOptions {
  /** Default 4096 (ctx.maxMessageSize if set). */
  maxSize?: number;
  /** Send IPv4 prefixes in MP_REACH (AFI 1) instead of the NLRI field. */
  ipv4InMp?: boolean;
}
export function packUpdates(
  _attrs: PathAttributes,
  _prefixes: readonly Prefix[],
  _ctx: CodecContext,
  _opts?: PackOptions,
): Buffer[] {
  throw new Error('not implemented');
}
export function packWithdrawals(_prefixes: readonly Prefix[], _afi: number, _opts?: PackOptions): Buffer[] {
  throw new Error('not implemented');
}
export function encodeEndOfRib(_afi: number, _safi: number): Buffer {
  throw new Error('not implemented');
}
