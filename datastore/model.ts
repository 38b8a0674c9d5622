// Typed specs of every kind Petrel reads, with Calico's (projectcalico.org/v3) and Kubernetes'
// own field names, so that a manifest written for Calico or kubectl reads the same here.
// These are the shapes *after* validation and defaulting (datastore/validate.ts): defaulted
// fields are present, ASNs are numbers, CIDRs are as written (pool CIDRs strictly masked).
import type { ObjectMeta, Resource } from './types.js';

// ---------------------------------------------------------------------------------------
// Shared Calico value types

/** Calico's numorstring.Port: a number, `"min:max"` range or a named port. */
export type PortSpec = number | string;
/** Calico's numorstring.Protocol: `TCP UDP ICMP ICMPv6 SCTP UDPLite` or 1-255. */
export type ProtocolSpec = number | string;
export type EncapMode = 'Never' | 'Always' | 'CrossSubnet';
export type RuleAction = 'Allow' | 'Deny' | 'Log' | 'Pass';
export type PolicyType = 'Ingress' | 'Egress';

export interface SecretKeyRef {
  name: string;
  key: string;
  optional?: boolean;
}
/** BGP passwords come from a Secret, never inline (Calico BGPPassword). */
export interface BGPPassword {
  secretKeyRef?: SecretKeyRef;
}

// ---------------------------------------------------------------------------------------
// IPAM and topology

export interface IPPoolSpec {
  cidr: string;
  /** 26 for IPv4, 122 for IPv6 by default. */
  blockSize: number;
  ipipMode: EncapMode;
  vxlanMode: EncapMode;
  natOutgoing: boolean;
  disabled: boolean;
  disableBGPExport: boolean;
  /** Which nodes may take blocks from the pool; `all()` by default. */
  nodeSelector: string;
  namespaceSelector?: string;
  /** `Workload`, `Tunnel`, `LoadBalancer`; default [Workload, Tunnel]. */
  allowedUses: Array<'Workload' | 'Tunnel' | 'LoadBalancer'>;
  assignmentMode: 'Automatic' | 'Manual';
}

export interface NodeBGPSpec {
  asNumber?: number;
  /** `a.b.c.d/len` (the node's address and subnet) or a bare address. */
  ipv4Address?: string;
  ipv6Address?: string;
  ipv4IPIPTunnelAddr?: string;
  routeReflectorClusterID?: string;
}

export interface OrchRef {
  nodeName?: string;
  orchestrator: string;
}

export interface NodeAddress {
  address: string;
  type?: 'CalicoNodeIP' | 'InternalIP' | 'ExternalIP';
}

export interface NodeSpec {
  bgp?: NodeBGPSpec;
  ipv4VXLANTunnelAddr?: string;
  vxlanTunnelMACAddr?: string;
  ipv6VXLANTunnelAddr?: string;
  vxlanTunnelMACAddrV6?: string;
  orchRefs?: OrchRef[];
  wireguard?: { interfaceIPv4Address?: string; interfaceIPv6Address?: string };
  addresses?: NodeAddress[];
  interfaces?: Array<{ name?: string; addresses?: string[] }>;
}

export interface NodeStatus {
  wireguardPublicKey?: string;
  wireguardPublicKeyV6?: string;
  podCIDRs?: string[];
}

export interface BlockAffinitySpec {
  state: 'pending' | 'confirmed' | 'pendingDeletion' | '';
  node: string;
  cidr: string;
  type?: string;
  deleted: boolean;
}

export interface AllocationAttribute {
  handle_id?: string;
  secondary?: Record<string, string>;
  alternateOwnerAttrs?: Record<string, string>;
  releasedAt?: string;
}

export interface IPAMBlockSpec {
  cidr: string;
  /** `host:<node>` or `virtual:<name>`. */
  affinity?: string;
  affinityClaimTime?: string;
  /** Per ordinal: null (free) or an index into `attributes`. */
  allocations: Array<number | null>;
  unallocated: number[];
  attributes: AllocationAttribute[];
  sequenceNumber: number;
  sequenceNumberForAllocation?: Record<string, number>;
  deleted: boolean;
  strictAffinity: boolean;
}

export interface IPAMHandleSpec {
  handleID: string;
  /** IP count per block CIDR. */
  block: Record<string, number>;
  deleted: boolean;
}

// ---------------------------------------------------------------------------------------
// BGP

export interface CIDRBlock {
  cidr: string;
}

export interface Community {
  name: string;
  value: string;
}

export interface PrefixAdvertisement {
  cidr: string;
  communities: string[];
}

export interface BGPConfigurationSpec {
  logSeverityScreen: string;
  /** Only on `default`; defaulted true there. */
  nodeToNodeMeshEnabled?: boolean;
  /** Only on `default`; defaulted 64512 there. */
  asNumber?: number;
  serviceLoadBalancerIPs?: CIDRBlock[];
  serviceExternalIPs?: CIDRBlock[];
  serviceClusterIPs?: CIDRBlock[];
  serviceLoadBalancerAggregation?: 'Enabled' | 'Disabled';
  communities?: Community[];
  prefixAdvertisements?: PrefixAdvertisement[];
  /** Defaulted 179 on `default`. */
  listenPort?: number;
  nodeMeshPassword?: BGPPassword;
  nodeMeshMaxRestartTime?: string;
  bindMode?: 'None' | 'NodeIP';
  ignoredInterfaces?: string[];
  localWorkloadPeeringIPV4?: string;
  localWorkloadPeeringIPV6?: string;
  programClusterRoutes?: 'Enabled' | 'Disabled' | 'EnabledIPIPOnly' | 'EnabledNoEncapOnly';
  ipv4NormalRoutePriority?: number;
  ipv6NormalRoutePriority?: number;
}

export interface BGPPeerSpec {
  /** A single node this peering applies to (empty = all, or see nodeSelector). */
  node?: string;
  nodeSelector?: string;
  /** `ip`, `ip:port` or `[ipv6]:port`. */
  peerIP?: string;
  asNumber?: number;
  localASNumber?: number;
  peerSelector?: string;
  keepOriginalNextHop: boolean;
  nextHopMode?: 'Auto' | 'Self' | 'Keep';
  password?: BGPPassword;
  sourceAddress: 'UseNodeIP' | 'None';
  maxRestartTime?: string;
  keepaliveTime?: string;
  numAllowedLocalASNumbers?: number;
  ttlSecurity?: number;
  reachableBy?: string;
  filters?: string[];
  localWorkloadSelector?: string;
  reversePeering?: 'Auto' | 'Manual';
  failureDetectionMode?: 'None' | 'BFDIfDirectlyConnected';
  restartMode?: 'GracefulRestart' | 'LongLivedGracefulRestart';
  birdGatewayMode?: 'Recursive' | 'DirectIfDirectlyConnected';
}

// ---------------------------------------------------------------------------------------
// Endpoints

export interface EndpointPort {
  name: string;
  protocol: ProtocolSpec;
  port: number;
}

export interface WorkloadEndpointPort extends EndpointPort {
  hostPort?: number;
  hostIP?: string;
}

export interface IPNAT {
  internalIP: string;
  externalIP: string;
}

export interface WorkloadEndpointSpec {
  orchestrator?: string;
  workload?: string;
  node?: string;
  containerID?: string;
  pod?: string;
  endpoint?: string;
  serviceAccountName?: string;
  /** `/32` and `/128` networks. */
  ipNetworks: string[];
  ipNATs?: IPNAT[];
  ipv4Gateway?: string;
  ipv6Gateway?: string;
  profiles?: string[];
  interfaceName?: string;
  mac?: string;
  ports?: WorkloadEndpointPort[];
  allowSpoofedSourcePrefixes?: string[];
  qosControls?: Record<string, unknown>;
}

export interface HostEndpointSpec {
  node?: string;
  /** `*` = every interface of the node. */
  interfaceName?: string;
  expectedIPs?: string[];
  profiles?: string[];
  ports?: EndpointPort[];
}

export interface NetworkSetSpec {
  nets?: string[];
}

// ---------------------------------------------------------------------------------------
// Policy

export interface ICMPFields {
  type?: number;
  code?: number;
}

export interface ServiceMatch {
  name?: string;
  namespace?: string;
}

export interface ServiceAccountMatch {
  names?: string[];
  selector?: string;
}

export interface EntityRule {
  nets?: string[];
  notNets?: string[];
  selector?: string;
  notSelector?: string;
  namespaceSelector?: string;
  ports?: PortSpec[];
  notPorts?: PortSpec[];
  services?: ServiceMatch;
  serviceAccounts?: ServiceAccountMatch;
}

export interface HTTPMatch {
  methods?: string[];
  paths?: Array<{ exact?: string; prefix?: string }>;
}

export interface Rule {
  action: RuleAction;
  ipVersion?: 4 | 6;
  /** Canonical names (`TCP`, `ICMPv6`...) or numbers. */
  protocol?: ProtocolSpec;
  notProtocol?: ProtocolSpec;
  icmp?: ICMPFields;
  notICMP?: ICMPFields;
  source?: EntityRule;
  destination?: EntityRule;
  http?: HTTPMatch;
  metadata?: { annotations?: Record<string, string> };
}

export interface NetworkPolicySpec {
  /** `default` unless set. */
  tier: string;
  /** Lower first; absent = after every ordered policy. */
  order?: number;
  selector: string;
  /** Derived from the rules when absent, as Calico does. */
  types: PolicyType[];
  ingress: Rule[];
  egress: Rule[];
  serviceAccountSelector?: string;
  performanceHints?: string[];
}

export interface GlobalNetworkPolicySpec extends NetworkPolicySpec {
  namespaceSelector?: string;
  doNotTrack: boolean;
  preDNAT: boolean;
  applyOnForward: boolean;
}

export interface ProfileSpec {
  ingress?: Rule[];
  egress?: Rule[];
  labelsToApply?: Record<string, string>;
}

export interface RouteTableRange {
  min: number;
  max: number;
}

/**
 * Calico FelixConfiguration (`default`, `node.<name>`). The fields Petrel uses are typed;
 * every other documented Calico field is accepted (with a warning that Petrel ignores it).
 */
export interface FelixConfigurationSpec {
  routeRefreshInterval?: string;
  interfaceRefreshInterval?: string;
  iptablesRefreshInterval?: string;
  iptablesPostWriteCheckInterval?: string;
  ipsetsRefreshInterval?: string;
  interfacePrefix?: string;
  interfaceExclude?: string;
  chainInsertMode?: 'Insert' | 'Append';
  defaultEndpointToHostAction?: 'Drop' | 'Return' | 'Accept';
  iptablesFilterAllowAction?: 'Accept' | 'Return';
  iptablesMangleAllowAction?: 'Accept' | 'Return';
  iptablesFilterDenyAction?: 'Drop' | 'Reject';
  iptablesMarkMask?: number;
  ipipEnabled?: boolean;
  ipipMTU?: number;
  vxlanEnabled?: boolean;
  vxlanMTU?: number;
  vxlanMTUV6?: number;
  vxlanPort?: number;
  vxlanVNI?: number;
  failsafeInboundHostPorts?: Array<{ protocol?: string; port: number; net?: string }>;
  failsafeOutboundHostPorts?: Array<{ protocol?: string; port: number; net?: string }>;
  routeTableRange?: RouteTableRange;
  routeTableRanges?: RouteTableRange[];
  deviceRouteProtocol?: number;
  removeExternalRoutes?: boolean;
  logSeverityScreen?: string;
  healthEnabled?: boolean;
  healthHost?: string;
  healthPort?: number;
  prometheusMetricsEnabled?: boolean;
  prometheusMetricsPort?: number;
  natOutgoingAddress?: string;
  disableConntrackInvalidCheck?: boolean;
  maxIpsetSize?: number;
  [field: string]: unknown;
}

// ---------------------------------------------------------------------------------------
// Kubernetes kinds Petrel reads (the parts it reads; everything else passes through).

export interface LabelSelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  values?: string[];
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

export interface K8sNetworkPolicyPort {
  /** `TCP` by default. */
  protocol?: 'TCP' | 'UDP' | 'SCTP';
  port?: number | string;
  endPort?: number;
}

export interface K8sNetworkPolicyPeer {
  podSelector?: LabelSelector;
  namespaceSelector?: LabelSelector;
  ipBlock?: { cidr: string; except?: string[] };
}

export interface K8sNetworkPolicySpec {
  podSelector: LabelSelector;
  policyTypes: PolicyType[];
  ingress?: Array<{ from?: K8sNetworkPolicyPeer[]; ports?: K8sNetworkPolicyPort[] }>;
  egress?: Array<{ to?: K8sNetworkPolicyPeer[]; ports?: K8sNetworkPolicyPort[] }>;
}

export interface ContainerPort {
  name?: string;
  containerPort: number;
  hostPort?: number;
  hostIP?: string;
  protocol?: 'TCP' | 'UDP' | 'SCTP';
}

export interface PodSpec {
  nodeName?: string;
  serviceAccountName?: string;
  hostNetwork?: boolean;
  containers?: Array<{ name: string; ports?: ContainerPort[]; [f: string]: unknown }>;
  initContainers?: Array<{ name: string; ports?: ContainerPort[]; [f: string]: unknown }>;
  [field: string]: unknown;
}

export interface PodStatus {
  phase?: 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown';
  podIP?: string;
  podIPs?: Array<{ ip: string }>;
  [field: string]: unknown;
}

export interface ServicePort {
  name?: string;
  protocol?: 'TCP' | 'UDP' | 'SCTP';
  port: number;
  targetPort?: number | string;
  nodePort?: number;
}

export interface ServiceSpec {
  type?: 'ClusterIP' | 'NodePort' | 'LoadBalancer' | 'ExternalName';
  clusterIP?: string;
  clusterIPs?: string[];
  externalIPs?: string[];
  externalTrafficPolicy?: 'Cluster' | 'Local';
  internalTrafficPolicy?: 'Cluster' | 'Local';
  selector?: Record<string, string>;
  ports?: ServicePort[];
  [field: string]: unknown;
}

export interface ServiceStatus {
  loadBalancer?: { ingress?: Array<{ ip?: string; hostname?: string }> };
  [field: string]: unknown;
}

export interface KubernetesNodeSpec {
  podCIDR?: string;
  podCIDRs?: string[];
  [field: string]: unknown;
}

export interface KubernetesNodeStatus {
  addresses?: Array<{ type: string; address: string }>;
  [field: string]: unknown;
}

export interface EndpointSlice extends Resource<never> {
  addressType: 'IPv4' | 'IPv6' | 'FQDN';
  endpoints: Array<{ addresses: string[]; conditions?: { ready?: boolean; serving?: boolean; terminating?: boolean }; nodeName?: string; [f: string]: unknown }>;
  ports?: Array<{ name?: string; protocol?: string; port?: number; appProtocol?: string }>;
}

// ---------------------------------------------------------------------------------------
// Typed resources

export interface TypedResource<Spec, Status = unknown> extends Resource<Spec> {
  metadata: ObjectMeta;
  spec: Spec;
  status?: Status;
}

export type IPPool = TypedResource<IPPoolSpec>;
export type CalicoNode = TypedResource<NodeSpec, NodeStatus>;
export type BGPConfiguration = TypedResource<BGPConfigurationSpec>;
export type BGPPeer = TypedResource<BGPPeerSpec>;
export type WorkloadEndpoint = TypedResource<WorkloadEndpointSpec>;
export type HostEndpoint = TypedResource<HostEndpointSpec>;
export type CalicoNetworkPolicy = TypedResource<NetworkPolicySpec>;
export type GlobalNetworkPolicy = TypedResource<GlobalNetworkPolicySpec>;
export type NetworkSet = TypedResource<NetworkSetSpec>;
export type GlobalNetworkSet = TypedResource<NetworkSetSpec>;
export type Profile = TypedResource<ProfileSpec>;
export type FelixConfiguration = TypedResource<FelixConfigurationSpec>;
export type BlockAffinity = TypedResource<BlockAffinitySpec>;
export type IPAMBlock = TypedResource<IPAMBlockSpec>;
export type IPAMHandle = TypedResource<IPAMHandleSpec>;
export type KubernetesNetworkPolicy = TypedResource<K8sNetworkPolicySpec>;
export type Namespace = TypedResource<Record<string, unknown> | undefined>;
export type Pod = TypedResource<PodSpec, PodStatus>;
export type Service = TypedResource<ServiceSpec, ServiceStatus>;
export type ServiceAccount = Resource<never>;
export type KubernetesNode = TypedResource<KubernetesNodeSpec, KubernetesNodeStatus>;

/** Defaults Calico applies (or assumes) where a field is absent. */
export const DEFAULTS = {
  ipv4BlockSize: 26,
  ipv6BlockSize: 122,
  asNumber: 64512,
  bgpListenPort: 179,
  interfacePrefix: 'cali',
  defaultTier: 'default',
} as const;

/** Calico's reserved label names that the Kubernetes conversions add. */
export const LABELS = {
  namespace: 'projectcalico.org/namespace',
  orchestrator: 'projectcalico.org/orchestrator',
  serviceAccount: 'projectcalico.org/serviceaccount',
  name: 'projectcalico.org/name',
} as const;
