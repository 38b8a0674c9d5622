// projectcalico.org/v3 kinds: field schemas (Calico's field names), Calico's cross-field
// rules and the defaults Calico applies. Fields Petrel does not implement are marked
// `unimplemented(...)`: accepted, validated, and reported as warnings.
import { type Cidr, cidrContains, cidrsOverlap, parseCidr, parseIp, parseIpv4 } from '../net.js';
import type { KindId } from '../types.js';
import {
  type Check,
  type Ctx,
  any,
  at,
  bool,
  describe,
  int,
  isObject,
  join,
  list,
  map,
  obj,
  oneOf,
  required,
  str,
  string,
  refine,
  unimplemented,
} from './schema.js';
import {
  annotationValue,
  asn,
  checkCidr,
  cidr,
  duration,
  endpointProtocol,
  interfaceName,
  ip,
  ipPort,
  labelValue,
  logSeverity,
  mac,
  name,
  net,
  port,
  protocol,
  selector,
} from './values.js';
import { defaultPolicy, globalNetworkPolicySpec, networkPolicySpec, profileSpec } from './rules.js';

/** What validate.ts needs to know about a kind's spec. */
export interface KindSchema {
  spec?: Check;
  status?: Check;
  /** metadata.name rule (default: DNS-1123 subdomain). */
  nameRule?: (name: string) => string | undefined;
  /** Cross-field checks and defaults on the checked resource (spec is an object here). */
  finalize?: (r: { metadata: { name: string; labels?: Record<string, string> }; spec: Record<string, any> }, ctx: Ctx) => void;
}

const secretKeyRef = obj({ secretKeyRef: obj({ name: required(string), key: required(string), optional: bool }) });
const cidrBlock = obj({ cidr: required(net) });

// ---------------------------------------------------------------------------------------
// IPPool

const encap = oneOf(['Never', 'Always', 'CrossSubnet']);

const ippoolSpec = obj({
  cidr: required(string),
  vxlanMode: encap,
  ipipMode: encap,
  natOutgoing: bool,
  disabled: bool,
  disableBGPExport: bool,
  blockSize: int(0, 128),
  nodeSelector: selector(),
  namespaceSelector: unimplemented(selector(), 'pools are not restricted by namespace'),
  allowedUses: list(oneOf(['Workload', 'Tunnel', 'LoadBalancer'])),
  assignmentMode: oneOf(['Automatic', 'Manual']),
  // Deprecated spellings from Calico v1/v2 manifests.
  ipip: unimplemented(obj({ enabled: bool, mode: oneOf(['always', 'cross-subnet']) }), 'deprecated; use ipipMode'),
  'nat-outgoing': unimplemented(bool, 'deprecated; use natOutgoing'),
});

const LINK_LOCAL4 = parseCidr('169.254.0.0/16')!;
const LINK_LOCAL6 = parseCidr('fe80::/10')!;

function finalizeIPPool(r: { spec: Record<string, any> }, ctx: Ctx): void {
  const s = r.spec;
  const c = checkCidr(s.cidr, 'spec.cidr', ctx, { strict: true });
  s.ipipMode ??= 'Never';
  s.vxlanMode ??= 'Never';
  s.natOutgoing ??= false;
  s.disabled ??= false;
  s.disableBGPExport ??= false;
  s.nodeSelector ??= 'all()';
  if (!s.allowedUses?.length) s.allowedUses = ['Workload', 'Tunnel'];
  s.assignmentMode ??= 'Automatic';
  if (!c) return;
  if (!s.blockSize) s.blockSize = c.version === 4 ? 26 : 122;
  const [lo, hi] = c.version === 4 ? [20, 32] : [116, 128];
  if (s.blockSize < lo || s.blockSize > hi) ctx.error('spec.blockSize', `blockSize ${s.blockSize} is out of range for an IPv${c.version} pool (${lo}-${hi})`);
  else if (!s.disabled && c.prefix > s.blockSize) {
    ctx.error('spec.cidr', `IP pool size is too small (/${c.prefix}) for its blockSize ${s.blockSize}: the pool must be at least one block`);
  }
  if (cidrsOverlap(c, c.version === 4 ? LINK_LOCAL4 : LINK_LOCAL6)) {
    ctx.error('spec.cidr', `IPPool CIDR overlaps with the IPv${c.version} link-local range ${c.version === 4 ? '169.254.0.0/16' : 'fe80::/10'}`);
  }
  if (c.version === 6 && s.ipipMode !== 'Never') ctx.error('spec.ipipMode', 'IPIP is not supported on IPv6 pools');
  if (s.ipipMode !== 'Never' && s.vxlanMode !== 'Never') ctx.error('spec.vxlanMode', 'ipipMode and vxlanMode cannot both be enabled');
  const uses: string[] = s.allowedUses;
  if (uses.includes('LoadBalancer')) {
    if (uses.some((u) => u !== 'LoadBalancer')) ctx.error('spec.allowedUses', 'LoadBalancer cannot be combined with Workload or Tunnel');
    if (s.ipipMode !== 'Never' || s.vxlanMode !== 'Never') ctx.error('spec.allowedUses', 'LoadBalancer pools cannot use IPIP or VXLAN');
    if (s.disableBGPExport) ctx.error('spec.disableBGPExport', 'LoadBalancer IP pools cannot disable BGP export');
    if (s.nodeSelector !== 'all()') ctx.error('spec.nodeSelector', 'an IP pool with allowedUses LoadBalancer must have nodeSelector all()');
  }
}

// ---------------------------------------------------------------------------------------
// Node

/** Calico's `cidrv4`/`cidrv6` for node addresses: an address with or without `/len`. */
function hostCidr(version: 4 | 6): Check {
  return (value, path, ctx) => {
    checkCidr(value, path, ctx, { version, allowBare: true });
    return value;
  };
}

const nodeSpec = refine(
  obj({
    bgp: obj({
      asNumber: asn,
      ipv4Address: hostCidr(4),
      ipv6Address: hostCidr(6),
      ipv4IPIPTunnelAddr: ip(4),
      routeReflectorClusterID: ip(4),
    }),
    ipv4VXLANTunnelAddr: ip(4),
    vxlanTunnelMACAddr: mac,
    ipv6VXLANTunnelAddr: ip(6),
    vxlanTunnelMACAddrV6: mac,
    orchRefs: list(obj({ nodeName: string, orchestrator: required(string) })),
    wireguard: unimplemented(obj({ interfaceIPv4Address: ip(4), interfaceIPv6Address: ip(6) })),
    addresses: list(obj({ address: required(net), type: oneOf(['CalicoNodeIP', 'InternalIP', 'ExternalIP']) })),
    interfaces: list(obj({ name: string, addresses: list(string) })),
  }),
  (s, path, ctx) => {
    if (isObject(s.bgp) && Object.keys(s.bgp).length === 0) ctx.error(join(path, 'bgp'), 'Spec.BGP should not be empty (omit it instead)');
  },
);

const nodeStatus = obj({ wireguardPublicKey: string, wireguardPublicKeyV6: string, podCIDRs: list(net) }, { open: true });

// ---------------------------------------------------------------------------------------
// BGP

function communityValue(v: unknown, path: string, ctx: Ctx): boolean {
  if (typeof v !== 'string') return false;
  const std = v.match(/^(\d+):(\d+)$/);
  if (std) {
    if (std.slice(1).some((n) => Number(n) > 65535)) ctx.error(path, `${describe(v)}: standard community parts are 16-bit (0-65535)`);
    return true;
  }
  const large = v.match(/^(\d+):(\d+):(\d+)$/);
  if (large) {
    if (large.slice(1).some((n) => Number(n) > 4294967295)) ctx.error(path, `${describe(v)}: large community parts are 32-bit`);
    return true;
  }
  return false;
}

const bgpConfigSpec = obj({
  logSeverityScreen: unimplemented(logSeverity, 'Petrel logs at --log-level', 'Info'),
  nodeToNodeMeshEnabled: bool,
  asNumber: asn,
  serviceLoadBalancerIPs: list(cidrBlock),
  serviceExternalIPs: list(cidrBlock),
  serviceClusterIPs: list(cidrBlock),
  serviceLoadBalancerAggregation: unimplemented(oneOf(['Enabled', 'Disabled'])),
  communities: list(obj({ name: required(name()), value: required(str({ max: 40 })) })),
  prefixAdvertisements: list(obj({ cidr: required(net), communities: required(list(string)) })),
  listenPort: int(1, 65535),
  nodeMeshPassword: secretKeyRef,
  nodeMeshMaxRestartTime: duration,
  bindMode: unimplemented(oneOf(['None', 'NodeIP']), 'Petrel listens on every address', 'None'),
  ignoredInterfaces: unimplemented(list(str({ pattern: /^[a-zA-Z0-9_.*-]{1,15}$/ }))),
  localWorkloadPeeringIPV4: unimplemented(ip(4)),
  localWorkloadPeeringIPV6: unimplemented(ip(6)),
  programClusterRoutes: unimplemented(oneOf(['Enabled', 'Disabled', 'EnabledIPIPOnly', 'EnabledNoEncapOnly'])),
  ipv4NormalRoutePriority: unimplemented(int(1, 2147483646)),
  ipv6NormalRoutePriority: unimplemented(int(1, 2147483646)),
});

function finalizeBGPConfiguration(r: { metadata: { name: string }; spec: Record<string, any> }, ctx: Ctx): void {
  const s = r.spec;
  const isDefault = r.metadata.name === 'default';
  if (isDefault) {
    s.nodeToNodeMeshEnabled ??= true;
    s.asNumber ??= 64512;
    s.listenPort ??= 179;
    s.logSeverityScreen ??= 'Info';
  } else {
    for (const f of ['nodeToNodeMeshEnabled', 'asNumber', 'serviceClusterIPs', 'serviceExternalIPs', 'serviceLoadBalancerIPs'] as const) {
      if (s[f] !== undefined) ctx.warn(`spec.${f}`, 'only used on the global "default" BGPConfiguration; ignored here');
    }
  }
  if (s.nodeToNodeMeshEnabled === false) {
    if (s.nodeMeshPassword) ctx.error('spec.nodeMeshPassword', 'cannot be set when nodeToNodeMeshEnabled is false');
    if (s.nodeMeshMaxRestartTime) ctx.error('spec.nodeMeshMaxRestartTime', 'cannot be set when nodeToNodeMeshEnabled is false');
  }
  const defined = new Set<string>();
  (s.communities ?? []).forEach((c: any, i: number) => {
    if (!communityValue(c?.value, `spec.communities[${i}].value`, ctx)) {
      ctx.error(`spec.communities[${i}].value`, `${describe(c?.value)} is not a community (aa:nn or aa:nn:mm)`);
    }
    if (typeof c?.name === 'string') defined.add(c.name);
  });
  if (defined.size > 0 && !s.prefixAdvertisements?.length) ctx.error('spec.communities', 'communities are defined but not used in prefixAdvertisements');
  (s.prefixAdvertisements ?? []).forEach((pa: any, i: number) => {
    (Array.isArray(pa?.communities) ? pa.communities : []).forEach((c: unknown, j: number) => {
      const p = `spec.prefixAdvertisements[${i}].communities[${j}]`;
      if (typeof c === 'string' && !defined.has(c) && !communityValue(c, p, ctx)) {
        ctx.error(p, `${describe(c)} is neither a community value nor the name of one in spec.communities`);
      }
    });
  });
}

const bgpPeerSpec = obj({
  node: name(),
  nodeSelector: selector(),
  peerIP: ipPort,
  asNumber: asn,
  localASNumber: unimplemented(asn),
  peerSelector: selector(),
  keepOriginalNextHop: bool,
  nextHopMode: oneOf(['Auto', 'Self', 'Keep']),
  password: secretKeyRef,
  sourceAddress: oneOf(['UseNodeIP', 'None']),
  maxRestartTime: duration,
  keepaliveTime: duration,
  numAllowedLocalASNumbers: unimplemented(int(0, 10)),
  ttlSecurity: int(0, 255),
  reachableBy: unimplemented(ip()),
  filters: unimplemented(list(name()), 'Petrel has no BGPFilter resources'),
  localWorkloadSelector: unimplemented(selector()),
  reversePeering: unimplemented(oneOf(['Auto', 'Manual'])),
  failureDetectionMode: unimplemented(oneOf(['None', 'BFDIfDirectlyConnected'])),
  restartMode: unimplemented(oneOf(['GracefulRestart', 'LongLivedGracefulRestart'])),
  birdGatewayMode: unimplemented(oneOf(['Recursive', 'DirectIfDirectlyConnected'])),
});

function finalizeBGPPeer(r: { spec: Record<string, any> }, ctx: Ctx): void {
  const s = r.spec;
  const has = (f: string) => s[f] !== undefined && s[f] !== '';
  if (has('node') && has('nodeSelector')) ctx.error('spec.nodeSelector', 'node and nodeSelector cannot both be set');
  if (has('peerIP') && has('peerSelector')) ctx.error('spec.peerSelector', 'peerIP and peerSelector cannot both be set');
  if (has('peerSelector') && s.asNumber) ctx.error('spec.asNumber', 'asNumber must be empty when peerSelector is set (the peers\' own AS numbers are used)');
  if (has('peerIP') && !s.asNumber) ctx.error('spec.asNumber', 'is required with peerIP');
  if (!has('peerIP') && !has('peerSelector') && !has('localWorkloadSelector')) ctx.error('spec.peerIP', 'one of peerIP or peerSelector is required');
  if (has('localWorkloadSelector') && (has('peerIP') || has('peerSelector'))) ctx.error('spec.localWorkloadSelector', 'cannot be combined with peerIP or peerSelector');
  if (s.keepOriginalNextHop && has('nextHopMode')) {
    ctx.error('spec.nextHopMode', 'keepOriginalNextHop and nextHopMode cannot both be set; keepOriginalNextHop is deprecated, use nextHopMode');
  }
  if (has('reachableBy') && !has('peerIP')) ctx.error('spec.reachableBy', 'must be empty when peerIP is empty');
  s.keepOriginalNextHop ??= false;
  s.sourceAddress ??= 'UseNodeIP';
}

// ---------------------------------------------------------------------------------------
// Endpoints and sets

const endpointPort = obj({ name: required(str({ pattern: /^[a-zA-Z0-9_.-]{1,128}$/ })), protocol: required(endpointProtocol), port: required(int(1, 65535)) });
const profileNames = list(name());

const wepSpec = obj({
  orchestrator: string,
  workload: string,
  node: name(),
  containerID: str({ pattern: /^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$/ }),
  pod: string,
  endpoint: string,
  serviceAccountName: string,
  ipNetworks: list(net),
  ipNATs: unimplemented(list(obj({ internalIP: required(ip()), externalIP: required(ip()) })), 'floating IPs (DNAT) are not programmed'),
  ipv4Gateway: unimplemented(ip(4)),
  ipv6Gateway: unimplemented(ip(6)),
  profiles: profileNames,
  interfaceName,
  mac,
  ports: list(
    obj({
      name: str({ pattern: /^[a-zA-Z0-9_.-]{1,128}$/ }),
      protocol: required(endpointProtocol),
      port: required(int(1, 65535)),
      hostPort: unimplemented(int(0, 65535), 'host ports are the portmap CNI plugin\'s job'),
      hostIP: ip(),
    }),
  ),
  allowSpoofedSourcePrefixes: unimplemented(list(net)),
  qosControls: unimplemented(any),
});

/** `a.b.c.d/32` (the usual workload network): a single IPv4 address, checked without parsing to a Cidr. */
function isHost4(n: string): boolean {
  const slash = n.length - 3;
  return slash > 0 && n.charCodeAt(slash) === 47 && n.charCodeAt(slash + 1) === 51 && n.charCodeAt(slash + 2) === 50 && parseIpv4(n, 0, slash) >= 0;
}

function finalizeWEP(r: { spec: Record<string, any> }, ctx: Ctx): void {
  const s = r.spec;
  s.ipNetworks ??= [];
  // a field that is not a list has been reported already
  const ipNetworks: unknown[] = Array.isArray(s.ipNetworks) ? s.ipNetworks : [];
  const ipNATs: unknown[] | undefined = Array.isArray(s.ipNATs) ? s.ipNATs : undefined;
  // the networks as CIDRs, needed only to check NATs against them
  const nets: (Cidr | undefined)[] | undefined = ipNATs?.length ? [] : undefined;
  for (let i = 0; i < ipNetworks.length; i++) {
    const n = ipNetworks[i];
    if (nets === undefined && typeof n === 'string' && isHost4(n)) continue; // a /32: nothing to report
    const c = typeof n === 'string' ? parseCidr(n) : undefined;
    nets?.push(c);
    if (c && !String(n).includes('/')) continue; // bare address = /32 or /128
    if (c && c.prefix !== (c.version === 4 ? 32 : 128)) ctx.error(`spec.ipNetworks[${i}]`, 'IP network contains multiple addresses (use a /32 or /128)');
  }
  if (ipNATs && nets) {
    for (let i = 0; i < ipNATs.length; i++) {
      const n = ipNATs[i] as any;
      const inner = typeof n?.internalIP === 'string' ? parseCidr(n.internalIP) : undefined;
      if (inner && !nets.some((c) => c && cidrContains(c, inner))) ctx.error(`spec.ipNATs[${i}].internalIP`, 'NAT is not in the endpoint networks');
    }
  }
  const ports: unknown[] | undefined = Array.isArray(s.ports) ? s.ports : undefined;
  if (ports) {
    for (let i = 0; i < ports.length; i++) {
      const p = ports[i] as any;
      if (!p?.name && !p?.hostPort) ctx.error(`spec.ports[${i}].name`, 'must not be empty if no hostPort is specified');
    }
  }
}

const hepSpec = refine(
  obj({
    node: name(),
    interfaceName: str({ pattern: /^(\*|[a-zA-Z0-9_.-]{1,15})$/, patternText: 'an interface name or "*"' }),
    expectedIPs: list(ip()),
    profiles: profileNames,
    ports: list(endpointPort),
  }),
  (s, path, ctx) => {
    if (!s.interfaceName && !s.expectedIPs?.length) ctx.error(join(path, 'interfaceName'), 'a HostEndpoint needs interfaceName or expectedIPs');
  },
);

const networkSetSpec = obj({ nets: list(net) });

function noNamespaceLabel(r: { metadata: { labels?: Record<string, string> } }, ctx: Ctx): void {
  if (r.metadata.labels && 'projectcalico.org/namespace' in r.metadata.labels) {
    ctx.error('metadata.labels["projectcalico.org/namespace"]', 'projectcalico.org/namespace is not a valid label name for network sets');
  }
}

// ---------------------------------------------------------------------------------------
// FelixConfiguration: typed fields Petrel uses; every other documented field is accepted with
// a warning.

const failsafePorts = list(obj({ protocol: oneOf(['TCP', 'UDP', 'SCTP'], { caseInsensitive: true }), port: required(int(0, 65535)), net: net }));
const routeTableRange = refine(obj({ min: required(int(1, 4294967295)), max: required(int(1, 4294967295)) }), (v, path, ctx) => {
  if (v.min > v.max) ctx.error(join(path, 'min'), `min ${v.min} cannot be greater than max ${v.max}`);
});

/** FelixConfiguration fields whose values are checked (Calico's types and ranges). */
const FELIX_TYPED: Record<string, Check> = {
  routeRefreshInterval: duration,
  interfaceRefreshInterval: duration,
  iptablesRefreshInterval: duration,
  iptablesPostWriteCheckInterval: duration,
  ipsetsRefreshInterval: duration,
  interfacePrefix: str({ pattern: /^[a-zA-Z0-9_.-]{1,14}(,[a-zA-Z0-9_.-]{1,14})*$/, patternText: 'comma-separated interface name prefixes' }),
  interfaceExclude: string,
  chainInsertMode: oneOf(['Insert', 'Append'], { caseInsensitive: true }),
  defaultEndpointToHostAction: oneOf(['Drop', 'Return', 'Accept'], { caseInsensitive: true }),
  iptablesFilterAllowAction: oneOf(['Accept', 'Return'], { caseInsensitive: true }),
  iptablesMangleAllowAction: oneOf(['Accept', 'Return'], { caseInsensitive: true }),
  iptablesFilterDenyAction: oneOf(['Drop', 'Reject'], { caseInsensitive: true }),
  iptablesBackend: oneOf(['Legacy', 'NFT', 'Auto'], { caseInsensitive: true }),
  iptablesMarkMask: int(0, 4294967295),
  logPrefix: string,
  ipipEnabled: bool,
  ipipMTU: int(0, 65535),
  vxlanEnabled: bool,
  vxlanMTU: int(0, 65535),
  vxlanMTUV6: int(0, 65535),
  vxlanPort: int(1, 65535),
  vxlanVNI: int(1, 16777215),
  failsafeInboundHostPorts: failsafePorts,
  failsafeOutboundHostPorts: failsafePorts,
  routeTableRange,
  routeTableRanges: list(routeTableRange),
  deviceRouteProtocol: int(0, 255),
  removeExternalRoutes: bool,
  maxIpsetSize: int(1, 2147483647),
  disableConntrackInvalidCheck: bool,
  natOutgoingAddress: ip(),
  healthEnabled: bool,
  healthHost: string,
  healthPort: int(1, 65535),
  prometheusMetricsEnabled: bool,
  prometheusMetricsPort: int(1, 65535),
  logSeverityScreen: logSeverity,
};

/** Calico's defaults of typed fields Petrel ignores (setting one to its default is no warning). */
const FELIX_DEFAULTS: Record<string, unknown> = {
  interfaceRefreshInterval: '90s',
  iptablesPostWriteCheckInterval: '5s',
  ipsetsRefreshInterval: '90s',
  iptablesMangleAllowAction: 'Accept',
  iptablesMarkMask: 0xffff0000,
  deviceRouteProtocol: 3,
  removeExternalRoutes: true,
  healthEnabled: true,
  healthPort: 9099,
  logSeverityScreen: 'Info',
};

/**
 * The FelixConfiguration fields Petrel's agent honours (agent/calc, routes/, acl/). Every other
 * field, typed above or not, is accepted with a warning naming it. Keep in step with the code.
 */
export const FELIX_USED = new Set([
  'routeRefreshInterval',
  'iptablesRefreshInterval',
  'interfacePrefix',
  'chainInsertMode',
  'defaultEndpointToHostAction',
  'iptablesFilterAllowAction',
  'iptablesFilterDenyAction',
  'iptablesBackend',
  'logPrefix',
  'ipipEnabled',
  'ipipMTU',
  'vxlanEnabled',
  'vxlanMTU',
  'vxlanMTUV6',
  'vxlanPort',
  'vxlanVNI',
  'failsafeInboundHostPorts',
  'failsafeOutboundHostPorts',
  'maxIpsetSize',
  'disableConntrackInvalidCheck',
]);

/** Calico's other FelixConfiguration fields (accepted; a warning names each one set). */
const FELIX_OTHER = (
  'nodeSelector useInternalDataplaneDriver dataplaneDriver dataplaneWatchdogTimeout ipv6Support iptablesLockProbeInterval ' +
  'featureDetectOverride featureGates xdpRefreshInterval netlinkTimeout metadataAddr metadataPort openstackRegion ' +
  'logActionRateLimit logActionRateLimitBurst logFilePath logSeverityFile logSeveritySys logDebugFilenameRegex ' +
  'allowVXLANPacketsFromWorkloads allowIPIPPacketsFromWorkloads reportingInterval reportingTTL endpointReportingEnabled ' +
  'endpointReportingDelay endpointStatusPathPrefix healthTimeoutOverrides prometheusMetricsHost prometheusGoMetricsEnabled ' +
  'prometheusProcessMetricsEnabled prometheusWireGuardMetricsEnabled prometheusMetricsCAFile prometheusMetricsCertFile ' +
  'prometheusMetricsKeyFile prometheusMetricsClientAuth kubeNodePortRanges policySyncPathPrefix usageReportingEnabled ' +
  'usageReportingInitialDelay usageReportingInterval natPortRange natOutgoingExclusions deviceRouteSourceAddress ' +
  'deviceRouteSourceAddressIPv6 programClusterRoutes ipForwarding externalNodesList debugMemoryProfilePath ' +
  'debugDisableLogDropping debugSimulateCalcGraphHangAfter debugSimulateDataplaneHangAfter debugSimulateDataplaneApplyDelay ' +
  'debugHost debugPort iptablesNATOutgoingInterfaceFilter sidecarAccelerationEnabled xdpEnabled genericXDPEnabled nftablesMode ' +
  'nftablesFlowTableOffload nftablesFlowTableDataIfacePattern nftablesRefreshInterval nftablesFilterAllowAction ' +
  'nftablesMangleAllowAction nftablesFilterDenyAction nftablesMarkMask bpfEnabled bpfOverlayHostSourceIP bpfDisableUnprivileged ' +
  'bpfJITHardening bpfLogLevel bpfConntrackLogLevel bpfConntrackMode bpfConntrackTimeouts bpfIPFragTimeout bpfLogFilters ' +
  'bpfCTLBLogFilter bpfDataIfacePattern bpfL3IfacePattern bpfConnectTimeLoadBalancingEnabled bpfConnectTimeLoadBalancing ' +
  'bpfHostNetworkedNATWithoutCTLB bpfExternalServiceMode bpfDSROptoutCIDRs bpfExtToServiceConnmark ' +
  'bpfKubeProxyIptablesCleanupEnabled bpfKubeProxyMinSyncPeriod bpfKubeProxyHealthzPort bpfPSNATPorts bpfMapSizeNATFrontend ' +
  'bpfMapSizeNATBackend bpfMapSizeNATAffinity bpfMapSizeRoute bpfMapSizeConntrack bpfMapSizePerCpuConntrack ' +
  'bpfMapSizeConntrackScaling bpfMapSizeConntrackCleanupQueue bpfMapSizeIPSets bpfMapSizeIfState bpfHostConntrackBypass ' +
  'bpfIPFragmentReassemblyEnabled bpfEnforceRPF bpfPolicyDebugEnabled bpfForceTrackPacketsFromIfaces bpfDisableGROForIfaces ' +
  'bpfExcludeCIDRsFromNAT bpfExportBufferSizeMB istioAmbientMode istioDSCPMark cgroupV2Path flowLogsPolicyEvaluationMode ' +
  'bpfRedirectToPeer bpfAttachType flowLogsFlushInterval flowLogsCollectorDebugTrace flowLogsGoldmaneServer ' +
  'flowLogsLocalReporter bpfProfiling routeSource routeSyncDisabled ipv4NormalRoutePriority ipv4ElevatedRoutePriority ' +
  'ipv6NormalRoutePriority ipv6ElevatedRoutePriority liveMigrationRouteConvergenceTime wireguardEnabled wireguardEnabledV6 ' +
  'wireguardThreadingEnabled wireguardListeningPort wireguardListeningPortV6 wireguardRoutingRulePriority ' +
  'wireguardInterfaceName wireguardInterfaceNameV6 wireguardMTU wireguardMTUV6 wireguardHostEncryptionEnabled ' +
  'wireguardKeepAlive awsSrcDstCheck serviceLoopPrevention workloadSourceSpoofing mtuIfacePattern floatingIPs ' +
  'localSubnetL2Reachability localSubnetL2ReachabilityRefreshInterval windowsManageFirewallRules goGCThreshold ' +
  'goMemoryLimitMB goMaxProcs requireMTUFile bpfMaglevMaxEndpointsPerService bpfMaglevMaxServices ' +
  // older releases
  'bpfKubeProxyEndpointSlicesEnabled'
)
  .split(/\s+/)
  .filter((f) => f && !(f in FELIX_TYPED));

const felixSpec = obj({
  ...Object.fromEntries(Object.entries(FELIX_TYPED).map(([f, check]) => [f, FELIX_USED.has(f) ? check : unimplemented(check, undefined, FELIX_DEFAULTS[f])])),
  ...Object.fromEntries(FELIX_OTHER.map((f) => [f, unimplemented(any)])),
});

function finalizeFelix(r: { spec: Record<string, any> }, ctx: Ctx): void {
  const s = r.spec;
  if (s.routeTableRange && s.routeTableRanges) ctx.error('spec.routeTableRanges', 'routeTableRange and routeTableRanges cannot both be set');
  if (s.routeTableRange && typeof s.routeTableRange.max === 'number' && s.routeTableRange.max > 250) {
    ctx.error('spec.routeTableRange.max', 'must be a range of route table indices within 1..250');
  }
}

// ---------------------------------------------------------------------------------------
// IPAM

const blockAffinitySpec = obj({
  state: oneOf(['', 'pending', 'confirmed', 'pendingDeletion']),
  node: required(name()),
  type: string,
  cidr: required(cidr({ strict: true })),
  deleted: bool,
});

const nullableOrdinal: Check = (v, path, ctx) => (v === null ? null : int(0, 2 ** 31)(v, path, ctx));
const allocations: Check = (value, path, ctx) => {
  if (!Array.isArray(value)) {
    ctx.error(path, `must be a list, not ${describe(value)}`);
    return value;
  }
  return value.map((v, i) => nullableOrdinal(v, at(path, i), ctx));
};

const ipamBlockSpec = obj({
  cidr: required(cidr({ strict: true })),
  affinity: str({ pattern: /^(host|virtual):.+$/, patternText: 'expected host:<node> or virtual:<name>' }),
  affinityClaimTime: string,
  allocations,
  unallocated: list(int(0, 2 ** 31)),
  attributes: list(
    obj({
      handle_id: string,
      secondary: map(string),
      alternateOwnerAttrs: map(string),
      releasedAt: string,
    }),
  ),
  sequenceNumber: int(0, Number.MAX_VALUE),
  sequenceNumberForAllocation: map(int(0, Number.MAX_VALUE)),
  deleted: bool,
  strictAffinity: bool,
});

const ipamHandleSpec = obj({ handleID: required(string), block: map(int(0, 2 ** 31)), deleted: bool });

// ---------------------------------------------------------------------------------------
// Names

const POLICY_NAME = /^(([a-z0-9]([-a-z0-9]*[a-z0-9])?)(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)?|((knp|ossg)\.default\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*))$/;
const GLOBAL_POLICY_NAME = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function policyName(re: RegExp) {
  return (n: string): string | undefined => {
    if (n.length > 253) return `is too long by ${n.length - 253} characters (max 253)`;
    if (!re.test(n)) return `${describe(n)} must consist of lower case alphanumeric characters or '-' (optionally prefixed "<tier>.")`;
    return undefined;
  };
}

// ---------------------------------------------------------------------------------------

export const CALICO_SCHEMAS: Partial<Record<KindId, KindSchema>> = {
  IPPool: { spec: ippoolSpec, status: any, finalize: finalizeIPPool },
  Node: { spec: nodeSpec, status: nodeStatus },
  BGPConfiguration: { spec: bgpConfigSpec, finalize: finalizeBGPConfiguration },
  BGPPeer: { spec: bgpPeerSpec, finalize: finalizeBGPPeer },
  WorkloadEndpoint: { spec: wepSpec, finalize: finalizeWEP },
  HostEndpoint: { spec: hepSpec },
  NetworkPolicy: {
    spec: networkPolicySpec,
    nameRule: policyName(POLICY_NAME),
    finalize: (r, ctx) => defaultPolicy(r.spec, (r.metadata.labels ??= {}), false, 'spec', ctx),
  },
  GlobalNetworkPolicy: {
    spec: globalNetworkPolicySpec,
    nameRule: policyName(GLOBAL_POLICY_NAME),
    finalize: (r, ctx) => defaultPolicy(r.spec, (r.metadata.labels ??= {}), true, 'spec', ctx),
  },
  NetworkSet: { spec: networkSetSpec, finalize: noNamespaceLabel },
  GlobalNetworkSet: { spec: networkSetSpec, finalize: noNamespaceLabel },
  Profile: { spec: profileSpec },
  FelixConfiguration: { spec: felixSpec, finalize: finalizeFelix },
  BlockAffinity: {
    spec: blockAffinitySpec,
    finalize: (r) => {
      r.spec.state ??= 'confirmed';
      if (r.spec.state === '') r.spec.state = 'confirmed';
      r.spec.deleted ??= false;
    },
  },
  IPAMBlock: {
    spec: ipamBlockSpec,
    finalize: (r) => {
      const s = r.spec;
      s.allocations ??= [];
      s.unallocated ??= [];
      s.attributes ??= [];
      s.sequenceNumber ??= 0;
      s.deleted ??= false;
      s.strictAffinity ??= false;
    },
  },
  IPAMHandle: {
    spec: ipamHandleSpec,
    finalize: (r) => {
      r.spec.block ??= {};
      r.spec.deleted ??= false;
    },
  },
};
