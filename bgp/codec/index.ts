// Public surface of the BGP wire codec (no sockets, no state). See README.md.
export * from './types.js';
export {
  prefix4,
  prefix4Addr,
  prefix4Len,
  formatPrefix4,
  parsePrefix4,
  formatIp4,
  parseIp4,
  parsePrefix6,
  canonicalIp6,
  parsePrefix,
  formatPrefix,
} from './prefix.js';
export { MessageReader, type MessageReaderOptions } from './reader.js';
export {
  decodeMessage,
  decodeWire,
  decodeOpen,
  decodeUpdate,
  decodeNotification,
  decodeRouteRefresh,
  forEachNlri,
  forEachWithdrawn,
  attrName,
} from './decode.js';
export {
  encodeOpen,
  encodeKeepalive,
  encodeNotification,
  encodeRouteRefresh,
  encodeUpdate,
  encodeAttributes,
  packUpdates,
  packWithdrawals,
  encodeEndOfRib,
  type PackOptions,
} from './encode.js';
export { summarizeCapabilities, commonFamilies, negotiateHoldTime, validateOpen } from './open.js';
export {
  asPathLength,
  asPathFirstAs,
  asPathOriginAs,
  asPathContains,
  asPathPrepend,
  formatAsPath,
} from './aspath.js';
export { notificationName, shutdownCommunication, cease, holdTimerExpired, fsmError } from './errors.js';
export { AttrInternCache } from './cache.js';
