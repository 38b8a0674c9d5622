// routes/: everything Petrel puts in the kernel's FIB, through netlink (no `ip` on the hot path).
//
// Public surface:
// - DesiredRoute, routeKey(r), normaliseRoute(r), formatRoute(r): the route model. A desired
//   route is identified by its canonical dst (main table) or `<dst>%<table>`; one route per key.
// - RouteManager({ protocol = 80, resyncIntervalMs = 90_000, interfacePrefix = 'cali', host, log }):
//   start() reads the kernel and follows netlink events without changing anything;
//   setDesired(all) / applyDelta(add, remove) program the difference in batched netlink requests;
//   status(); resync(); settled(); stop(); event 'link'. Only routes carrying `protocol` (5..255)
//   are ever changed or removed; nothing is removed before the first setDesired().
// - InterfaceManager: Calico-style sysctls on workload interfaces (`cali*`) as they appear.
// - VxlanManager: the vxlan.calico / vxlan-v6.calico devices, their neighbour and FDB entries.
// - IpipManager / probeIpip(conn): tunl0, or a clear error when the kernel has no ipip module.
// - detectHostMtu(links), tunnelMtus(...): Calico's MTU rules.
// - LocalHost / NetnsHost: act in this process's namespace, or in a named one (tests, lab).
export * from './manager.js';
export { LocalHost, NetnsHost, type NetHost, type NlChannel } from './host.js';
export { NlConn, NlError, errnoName } from './conn.js';
export type { KernelLink, KernelRoute } from './nl.js';
export { InterfaceManager, workloadSysctls, type InterfaceManagerOptions, type InterfaceStatus } from './interfaces.js';
export { VxlanManager, type VxlanPeer, type VxlanPlan, type VxlanStatus, type VxlanManagerOptions } from './vxlan.js';
export { IpipManager, probeIpip, type IpipPlan, type IpipStatus } from './ipip.js';
export { detectHostMtu, tunnelMtus, MTU_IFACE_PATTERN, DEFAULT_HOST_MTU, ENCAP_OVERHEAD } from './mtu.js';
