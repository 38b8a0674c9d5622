// OPEN helpers: capability digest and session-level OPEN validation (RFC 4271 §6.2, RFC 6793).
import {
  AS_TRANS,
  BgpNotification,
  CapabilityCode,
  ErrorCode,
  OpenSubcode,
  type AfiSafi,
  type Capability,
  type CapabilitySummary,
  type GracefulRestartCapability,
  type OpenExpectations,
  type OpenMessage,
} from './types.js';

export function summarizeCapabilities(caps: readonly Capability[]): CapabilitySummary {
  const s: CapabilitySummary = {
    families: [],
    routeRefresh: false,
    enhancedRouteRefresh: false,
    extendedMessage: false,
  };
  for (const c of caps) {
    if ('unknown' in c) {
      if (c.code === CapabilityCode.EXTENDED_MESSAGE) s.extendedMessage = true;
      continue;
    }
    switch (c.code) {
      case CapabilityCode.MULTIPROTOCOL:
        if (!s.families.some((f) => f.afi === c.afi && f.safi === c.safi)) {
          s.families.push({ afi: c.afi, safi: c.safi });
        }
        break;
      case CapabilityCode.ROUTE_REFRESH:
      case CapabilityCode.ROUTE_REFRESH_OLD:
        s.routeRefresh = true;
        break;
      case CapabilityCode.ENHANCED_ROUTE_REFRESH:
        s.enhancedRouteRefresh = true;
        break;
      case CapabilityCode.FOUR_OCTET_AS:
        if (s.fourOctetAs === undefined) s.fourOctetAs = c.asn;
        break;
      case CapabilityCode.GRACEFUL_RESTART:
        s.gracefulRestart = c as GracefulRestartCapability;
        break;
    }
  }
  return s;
}

/** Families both sides enabled (RFC 4760 §8: no MP capability at all means IPv4 unicast). */
export function commonFamilies(local: readonly Capability[], remote: readonly Capability[]): AfiSafi[] {
  const fam = (caps: readonly Capability[]): AfiSafi[] => {
    const f = summarizeCapabilities(caps).families;
    return f.length ? f : [{ afi: 1, safi: 1 }];
  };
  const r = fam(remote);
  return fam(local).filter((a) => r.some((b) => a.afi === b.afi && a.safi === b.safi));
}

/** Negotiated hold time: the lower of both (0 if either is 0). */
export function negotiateHoldTime(local: number, remote: number): number {
  return Math.min(local, remote);
}

/**
 * Session-level OPEN checks that need configuration: peer AS, BGP identifier equal to ours,
 * hold time. (decodeOpen already refused version ≠ 4, identifier 0, hold time 1/2, AS 0.)
 * Returns the NOTIFICATION to send, or null when acceptable.
 */
export function validateOpen(open: OpenMessage, expect: OpenExpectations): BgpNotification | null {
  if (expect.peerAs !== undefined && open.asn !== expect.peerAs) {
    return new BgpNotification(
      ErrorCode.OPEN_MESSAGE,
      OpenSubcode.BAD_PEER_AS,
      undefined,
      `peer AS ${open.asn}, expected ${expect.peerAs}`,
    );
  }
  // RFC 6793 §4.2.1: a 4-octet capability with an AS that fits in 2 octets must be echoed in myAs.
  const four = summarizeCapabilities(open.capabilities).fourOctetAs;
  if (four !== undefined && four <= 0xffff && open.myAs !== four && open.myAs !== AS_TRANS) {
    return new BgpNotification(
      ErrorCode.OPEN_MESSAGE,
      OpenSubcode.BAD_PEER_AS,
      undefined,
      `My AS ${open.myAs} disagrees with 4-octet AS capability ${four}`,
    );
  }
  if (expect.localBgpId !== undefined && open.bgpId === expect.localBgpId) {
    return new BgpNotification(
      ErrorCode.OPEN_MESSAGE,
      OpenSubcode.BAD_BGP_IDENTIFIER,
      undefined,
      'peer BGP identifier equals ours',
    );
  }
  const min = expect.minHoldTime ?? 3;
  if (open.holdTime !== 0 && open.holdTime < min) {
    return new BgpNotification(
      ErrorCode.OPEN_MESSAGE,
      OpenSubcode.UNACCEPTABLE_HOLD_TIME,
      undefined,
      `hold time ${open.holdTime} below ${min}`,
    );
  }
  return null;
}
