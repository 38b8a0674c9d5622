// Calico's MTU rules (calico.md §3): the host MTU is the smallest MTU among interfaces matching
// MTUIfacePattern, or 1460 when none match; encapsulations subtract their overhead.
import type { KernelLink } from './nl.js';

/** Felix's default MTUIfacePattern. */
export const MTU_IFACE_PATTERN = /^((en|wl|ww|sl|ib)[Pcopsvx].*|(eth|wlan|wwan).*)/;

export const DEFAULT_HOST_MTU = 1460;

export const ENCAP_OVERHEAD = { ipip: 20, vxlan: 50, vxlanV6: 70, wireguard: 60, wireguardV6: 80 } as const;

/** Smallest MTU among the links whose names match `pattern`, else 1460. */
export function detectHostMtu(links: Pick<KernelLink, 'name' | 'mtu'>[], pattern: RegExp | string = MTU_IFACE_PATTERN): number {
  const re = typeof pattern === 'string' ? new RegExp(pattern) : pattern;
  let min = Infinity;
  for (const l of links) if (re.test(l.name) && l.mtu > 0) min = Math.min(min, l.mtu);
  return Number.isFinite(min) ? min : DEFAULT_HOST_MTU;
}

/** Tunnel MTUs: configured (FelixConfiguration vxlanMTU, vxlanMTUV6, ipipMTU) or host MTU minus overhead. */
export function tunnelMtus(hostMtu: number, fc: Record<string, unknown> = {}): { vxlan: number; vxlanV6: number; ipip: number } {
  const pick = (v: unknown, d: number) => (typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : d);
  return {
    vxlan: pick(fc.vxlanMTU, hostMtu - ENCAP_OVERHEAD.vxlan),
    vxlanV6: pick(fc.vxlanMTUV6, hostMtu - ENCAP_OVERHEAD.vxlanV6),
    ipip: pick(fc.ipipMTU, hostMtu - ENCAP_OVERHEAD.ipip),
  };
}
