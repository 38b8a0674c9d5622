import { describe, expect, it } from 'vitest';
import { validateResource } from './validate.js';
import { ValidationError, type Resource } from './types.js';

const V3 = 'projectcalico.org/v3';
const calico = (kind: string, spec: unknown, metadata: Record<string, unknown> = { name: 'x' }) => ({ apiVersion: V3, kind, metadata, spec });
const knp = (spec: unknown) => ({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'np', namespace: 'web' }, spec });
const gnp = (spec: Record<string, unknown>) => calico('GlobalNetworkPolicy', spec, { name: 'g' });
const rule = (r: Record<string, unknown>) => gnp({ ingress: [r] });

interface Case {
  name: string;
  doc: unknown;
  /** Field path (exact) that must be named in the error. */
  bad?: string;
  /** Substring of that problem's message. */
  msg?: string;
  /** Checks on the validated resource. */
  check?: (r: Resource) => void;
  /** Path that must be named in a warning. */
  warn?: string;
}

const cases: Case[] = [
  // --- envelope and metadata
  { name: 'IPPool minimal, defaults', doc: calico('IPPool', { cidr: '10.244.0.0/16' }), check: (r) => expect(r.spec).toMatchObject({ blockSize: 26, ipipMode: 'Never', vxlanMode: 'Never', natOutgoing: false, disabled: false, nodeSelector: 'all()', allowedUses: ['Workload', 'Tunnel'] }) },
  { name: 'crd.projectcalico.org/v1 normalised to v3', doc: { ...calico('IPPool', { cidr: '10.0.0.0/16' }), apiVersion: 'crd.projectcalico.org/v1' }, check: (r) => expect(r.apiVersion).toBe(V3) },
  { name: 'unknown kind', doc: { apiVersion: V3, kind: 'IPPools', metadata: { name: 'a' } }, bad: 'kind', msg: 'unknown kind' },
  { name: 'Calico kind Petrel does not implement', doc: { apiVersion: V3, kind: 'Tier', metadata: { name: 'security' }, spec: { order: 100 } }, bad: 'kind', msg: 'does not implement' },
  { name: 'missing kind', doc: { apiVersion: V3, metadata: { name: 'a' } }, bad: 'kind', msg: 'required' },
  { name: 'wrong apiVersion for kind', doc: { apiVersion: 'v1', kind: 'IPPool', metadata: { name: 'a' }, spec: { cidr: '10.0.0.0/8' } }, bad: 'apiVersion', msg: 'projectcalico.org/v3' },
  { name: 'missing metadata.name', doc: calico('IPPool', { cidr: '10.0.0.0/16' }, {}), bad: 'metadata.name', msg: 'required' },
  { name: 'name not DNS-1123', doc: calico('IPPool', { cidr: '10.0.0.0/16' }, { name: 'My_Pool' }), bad: 'metadata.name', msg: 'DNS-1123' },
  { name: 'name too long', doc: calico('IPPool', { cidr: '10.0.0.0/16' }, { name: 'a'.repeat(254) }), bad: 'metadata.name', msg: 'too long' },
  { name: 'unknown metadata field', doc: calico('IPPool', { cidr: '10.0.0.0/16' }, { name: 'a', lables: {} }), bad: 'metadata.lables', msg: 'unknown field' },
  { name: 'label value must be a string', doc: calico('IPPool', { cidr: '10.0.0.0/16' }, { name: 'a', labels: { v: 1 } }), bad: 'metadata.labels["v"]', msg: 'strings' },
  { name: 'bad label key', doc: calico('IPPool', { cidr: '10.0.0.0/16' }, { name: 'a', labels: { 'bad key': 'x' } }), bad: 'metadata.labels["bad key"]' },
  { name: 'unknown top-level field', doc: { ...calico('IPPool', { cidr: '10.0.0.0/16' }), sepc: {} }, bad: 'sepc', msg: 'unknown field' },
  { name: 'namespaced kind defaults namespace', doc: calico('NetworkPolicy', {}, { name: 'p' }), check: (r) => expect(r.metadata.namespace).toBe('default') },
  { name: 'bad namespace', doc: calico('NetworkPolicy', {}, { name: 'p', namespace: 'Web' }), bad: 'metadata.namespace' },
  { name: 'namespace on cluster-scoped kind is a warning', doc: calico('IPPool', { cidr: '10.0.0.0/16' }, { name: 'a', namespace: 'x' }), warn: 'metadata.namespace', check: (r) => expect(r.metadata.namespace).toBeUndefined() },
  { name: 'unknown spec field with suggestion', doc: calico('IPPool', { cidr: '10.0.0.0/16', natoutgoing: true }), bad: 'spec.natoutgoing', msg: 'did you mean "natOutgoing"' },
  // --- IPPool
  { name: 'IPPool v6 defaults blockSize 122', doc: calico('IPPool', { cidr: 'fd00:10:244::/64' }), check: (r) => expect(r.spec!.blockSize).toBe(122) },
  { name: 'IPPool host bits rejected', doc: calico('IPPool', { cidr: '10.244.0.1/16' }), bad: 'spec.cidr', msg: 'host bits' },
  { name: 'IPPool cidr invalid', doc: calico('IPPool', { cidr: '10.244.0.0/33' }), bad: 'spec.cidr', msg: 'not a valid CIDR' },
  { name: 'IPPool cidr required', doc: calico('IPPool', {}), bad: 'spec.cidr', msg: 'required' },
  { name: 'IPPool v4 blockSize 19', doc: calico('IPPool', { cidr: '10.0.0.0/8', blockSize: 19 }), bad: 'spec.blockSize', msg: '20-32' },
  { name: 'IPPool v4 blockSize 32 ok', doc: calico('IPPool', { cidr: '10.0.0.0/8', blockSize: 32 }) },
  { name: 'IPPool v6 blockSize 115', doc: calico('IPPool', { cidr: 'fd00::/48', blockSize: 115 }), bad: 'spec.blockSize', msg: '116-128' },
  { name: 'IPPool smaller than a block', doc: calico('IPPool', { cidr: '10.0.0.0/28' }), bad: 'spec.cidr', msg: 'too small' },
  { name: 'IPPool link-local', doc: calico('IPPool', { cidr: '169.254.0.0/16' }), bad: 'spec.cidr', msg: 'link-local' },
  { name: 'IPPool ipipMode enum', doc: calico('IPPool', { cidr: '10.0.0.0/16', ipipMode: 'always' }), bad: 'spec.ipipMode', msg: 'Never, Always, CrossSubnet' },
  { name: 'IPPool ipip and vxlan', doc: calico('IPPool', { cidr: '10.0.0.0/16', ipipMode: 'Always', vxlanMode: 'CrossSubnet' }), bad: 'spec.vxlanMode', msg: 'both' },
  { name: 'IPPool ipip on v6', doc: calico('IPPool', { cidr: 'fd00::/64', ipipMode: 'Always' }), bad: 'spec.ipipMode', msg: 'IPv6' },
  { name: 'IPPool nodeSelector parsed', doc: calico('IPPool', { cidr: '10.0.0.0/16', nodeSelector: 'rack == "a' }), bad: 'spec.nodeSelector', msg: 'position' },
  { name: 'IPPool natOutgoing type', doc: calico('IPPool', { cidr: '10.0.0.0/16', natOutgoing: 'yes' }), bad: 'spec.natOutgoing', msg: 'true or false' },
  { name: 'IPPool namespaceSelector is a warning', doc: calico('IPPool', { cidr: '10.0.0.0/16', namespaceSelector: 'all()' }), warn: 'spec.namespaceSelector' },
  // --- Node
  { name: 'Node full', doc: calico('Node', { bgp: { ipv4Address: '192.168.56.10/24', ipv6Address: 'fd00::10/64', asNumber: '64512', routeReflectorClusterID: '224.0.0.1' }, ipv4VXLANTunnelAddr: '10.244.0.1', vxlanTunnelMACAddr: '66:f2:3a:11:22:33', orchRefs: [{ nodeName: 'n', orchestrator: 'k8s' }] }, { name: 'node-1' }), check: (r) => expect(r.spec!.bgp.asNumber).toBe(64512) },
  { name: 'Node ipv4Address is v6', doc: calico('Node', { bgp: { ipv4Address: 'fd00::1/64' } }), bad: 'spec.bgp.ipv4Address', msg: 'IPv4' },
  { name: 'Node bad MAC', doc: calico('Node', { vxlanTunnelMACAddr: 'ee:ee:ee' }), bad: 'spec.vxlanTunnelMACAddr', msg: 'MAC' },
  { name: 'Node empty bgp', doc: calico('Node', { bgp: {} }), bad: 'spec.bgp' },
  // --- ASNs
  { name: 'ASN asdot normalised', doc: calico('BGPPeer', { peerIP: '192.168.56.1', asNumber: '1.10' }), check: (r) => expect(r.spec!.asNumber).toBe(65546) },
  { name: 'ASN max', doc: calico('BGPPeer', { peerIP: '192.168.56.1', asNumber: 4294967295 }) },
  { name: 'ASN zero', doc: calico('BGPPeer', { peerIP: '192.168.56.1', asNumber: 0 }), bad: 'spec.asNumber', msg: 'AS number' },
  { name: 'ASN too big', doc: calico('BGPPeer', { peerIP: '192.168.56.1', asNumber: 4294967296 }), bad: 'spec.asNumber' },
  { name: 'ASN asdot part too big', doc: calico('BGPPeer', { peerIP: '192.168.56.1', asNumber: '65536.1' }), bad: 'spec.asNumber' },
  // --- BGPPeer / BGPConfiguration
  { name: 'BGPPeer defaults', doc: calico('BGPPeer', { peerIP: '192.168.56.1', asNumber: 64513 }), check: (r) => expect(r.spec).toMatchObject({ keepOriginalNextHop: false, sourceAddress: 'UseNodeIP' }) },
  { name: 'BGPPeer ip:port', doc: calico('BGPPeer', { peerIP: '[fd00::1]:1790', asNumber: 64513 }) },
  { name: 'BGPPeer bad peerIP', doc: calico('BGPPeer', { peerIP: '192.168.56.300', asNumber: 64513 }), bad: 'spec.peerIP' },
  { name: 'BGPPeer peerIP needs asNumber', doc: calico('BGPPeer', { peerIP: '192.168.56.1' }), bad: 'spec.asNumber', msg: 'required' },
  { name: 'BGPPeer node and nodeSelector', doc: calico('BGPPeer', { node: 'a', nodeSelector: 'all()', peerSelector: 'rr == "true"' }), bad: 'spec.nodeSelector', msg: 'both' },
  { name: 'BGPPeer peerSelector with asNumber', doc: calico('BGPPeer', { peerSelector: 'rr == "true"', asNumber: 64512 }), bad: 'spec.asNumber', msg: 'peerSelector' },
  { name: 'BGPPeer duration', doc: calico('BGPPeer', { peerIP: '10.0.0.1', asNumber: 65000, maxRestartTime: '2 minutes' }), bad: 'spec.maxRestartTime', msg: 'duration' },
  { name: 'BGPPeer duration ok', doc: calico('BGPPeer', { peerIP: '10.0.0.1', asNumber: 65000, maxRestartTime: '1m30s', keepaliveTime: '20s' }) },
  { name: 'BGPPeer filters warn', doc: calico('BGPPeer', { peerIP: '10.0.0.1', asNumber: 65000, filters: ['f'] }), warn: 'spec.filters' },
  { name: 'BGPConfiguration default defaults', doc: calico('BGPConfiguration', {}, { name: 'default' }), check: (r) => expect(r.spec).toMatchObject({ nodeToNodeMeshEnabled: true, asNumber: 64512, listenPort: 179, logSeverityScreen: 'Info' }) },
  { name: 'BGPConfiguration node-specific gets no global defaults', doc: calico('BGPConfiguration', { listenPort: 1790 }, { name: 'node.node-1' }), check: (r) => expect(r.spec!.asNumber).toBeUndefined() },
  { name: 'BGPConfiguration listenPort range', doc: calico('BGPConfiguration', { listenPort: 70000 }, { name: 'default' }), bad: 'spec.listenPort', msg: '1-65535' },
  { name: 'BGPConfiguration serviceClusterIPs cidr', doc: calico('BGPConfiguration', { serviceClusterIPs: [{ cidr: '10.96.0.0/12' }, { cidr: 'nope' }] }, { name: 'default' }), bad: 'spec.serviceClusterIPs[1].cidr' },
  { name: 'BGPConfiguration community value', doc: calico('BGPConfiguration', { communities: [{ name: 'c', value: '65536:1' }], prefixAdvertisements: [{ cidr: '10.0.0.0/8', communities: ['c'] }] }, { name: 'default' }), bad: 'spec.communities[0].value', msg: '16-bit' },
  { name: 'BGPConfiguration undefined community', doc: calico('BGPConfiguration', { prefixAdvertisements: [{ cidr: '10.0.0.0/8', communities: ['nope'] }] }, { name: 'default' }), bad: 'spec.prefixAdvertisements[0].communities[0]' },
  // --- Policy rules
  { name: 'GNP types derived from rules', doc: gnp({ selector: 'all()', egress: [{ action: 'Allow' }] }), check: (r) => expect(r.spec!.types).toEqual(['Egress']) },
  { name: 'GNP no rules → Ingress', doc: gnp({ selector: 'all()' }), check: (r) => expect(r.spec).toMatchObject({ types: ['Ingress'], tier: 'default', ingress: [], egress: [] }) },
  { name: 'GNP both → Ingress, Egress', doc: gnp({ ingress: [{ action: 'Deny' }], egress: [{ action: 'Allow' }] }), check: (r) => expect(r.spec!.types).toEqual(['Ingress', 'Egress']) },
  { name: 'rule action required', doc: rule({ protocol: 'TCP' }), bad: 'spec.ingress[0].action', msg: 'required' },
  { name: 'rule action enum', doc: rule({ action: 'Accept' }), bad: 'spec.ingress[0].action', msg: 'Allow, Deny, Log, Pass' },
  { name: 'rule protocol name', doc: rule({ action: 'Allow', protocol: 'TPC' }), bad: 'spec.ingress[0].protocol' },
  { name: 'rule protocol 0', doc: rule({ action: 'Allow', protocol: 0 }), bad: 'spec.ingress[0].protocol', msg: '1-255' },
  { name: 'rule protocol number ok', doc: rule({ action: 'Allow', protocol: 132, destination: { ports: [9000] } }) },
  { name: 'rule protocol lower-case normalised', doc: rule({ action: 'Allow', protocol: 'udplite' }), check: (r) => expect(r.spec!.ingress[0].protocol).toBe('UDPLite') },
  { name: 'rule port out of range', doc: rule({ action: 'Allow', protocol: 'TCP', destination: { ports: [80, 70000] } }), bad: 'spec.ingress[0].destination.ports[1]', msg: '1-65535' },
  { name: 'rule port range reversed', doc: rule({ action: 'Allow', protocol: 'TCP', destination: { ports: ['9000:8000'] } }), bad: 'spec.ingress[0].destination.ports[0]', msg: 'greater' },
  { name: 'rule port 0', doc: rule({ action: 'Allow', protocol: 'TCP', source: { ports: [0] } }), bad: 'spec.ingress[0].source.ports[0]' },
  { name: 'rule named and ranged ports', doc: rule({ action: 'Allow', protocol: 'TCP', destination: { ports: ['http', '8000:8080', '443'] } }), check: (r) => expect(r.spec!.ingress[0].destination.ports).toEqual(['http', '8000:8080', 443]) },
  { name: 'rule numeric port needs protocol', doc: rule({ action: 'Allow', destination: { ports: ['http', 80] } }), bad: 'spec.ingress[0].destination.ports[1]', msg: 'protocol' },
  { name: 'rule named port without protocol ok', doc: rule({ action: 'Allow', destination: { ports: ['http'] } }) },
  { name: 'rule ports with ICMP', doc: rule({ action: 'Allow', protocol: 'ICMP', destination: { ports: [80] } }), bad: 'spec.ingress[0].destination.ports' },
  { name: 'rule icmp type range', doc: rule({ action: 'Allow', protocol: 'ICMP', icmp: { type: 255 } }), bad: 'spec.ingress[0].icmp.type', msg: '0-254' },
  { name: 'rule icmp code without type', doc: rule({ action: 'Allow', protocol: 'ICMP', icmp: { code: 0 } }), bad: 'spec.ingress[0].icmp.code' },
  { name: 'rule icmp needs ICMP protocol', doc: rule({ action: 'Allow', protocol: 'TCP', icmp: { type: 8 } }), bad: 'spec.ingress[0].icmp' },
  { name: 'rule ICMPv6 with ipVersion 4', doc: rule({ action: 'Allow', protocol: 'ICMPv6', ipVersion: 4 }), bad: 'spec.ingress[0].protocol' },
  { name: 'rule ipVersion enum', doc: rule({ action: 'Allow', ipVersion: 5 }), bad: 'spec.ingress[0].ipVersion' },
  { name: 'rule nets bad CIDR', doc: rule({ action: 'Allow', source: { nets: ['10.0.0.0/8', '300.0.0.0/8'] } }), bad: 'spec.ingress[0].source.nets[1]' },
  { name: 'rule nets version vs ipVersion', doc: rule({ action: 'Allow', ipVersion: 4, destination: { nets: ['fd00::/64'] } }), bad: 'spec.ingress[0].destination.nets[0]' },
  { name: 'rule mixed families', doc: rule({ action: 'Allow', source: { nets: ['10.0.0.0/8'] }, destination: { nets: ['fd00::/8'] } }), bad: 'spec.ingress[0].destination.nets[0]', msg: 'both IPv4 and IPv6' },
  { name: 'rule notNets catch-all', doc: rule({ action: 'Deny', source: { notNets: ['0.0.0.0/0'] } }), bad: 'spec.ingress[0].source.notNets[0]' },
  { name: 'rule selector syntax', doc: rule({ action: 'Allow', source: { selector: 'app == ' } }), bad: 'spec.ingress[0].source.selector', msg: 'position' },
  { name: 'rule global() only in namespaceSelector', doc: rule({ action: 'Allow', source: { selector: 'global()' } }), bad: 'spec.ingress[0].source.selector' },
  { name: 'rule namespaceSelector global() ok', doc: rule({ action: 'Allow', source: { namespaceSelector: 'global()' } }) },
  { name: 'rule unknown entity field', doc: rule({ action: 'Allow', source: { selecter: 'a == "b"' } }), bad: 'spec.ingress[0].source.selecter' },
  { name: 'rule http is a warning', doc: rule({ action: 'Allow', protocol: 'TCP', http: { methods: ['GET'] } }), warn: 'spec.ingress[0].http' },
  { name: 'policy types duplicate', doc: gnp({ types: ['Ingress', 'Ingress'] }), bad: 'spec.types[1]' },
  { name: 'policy order must be a number', doc: gnp({ order: 'first' }), bad: 'spec.order' },
  { name: 'NetworkPolicy tier-prefixed name ok', doc: calico('NetworkPolicy', {}, { name: 'default.allow-dns', namespace: 'web' }) },
  { name: 'GlobalNetworkPolicy name with two dots', doc: calico('GlobalNetworkPolicy', {}, { name: 'a.b.c' }), bad: 'metadata.name' },
  { name: 'GNP preDNAT needs applyOnForward', doc: gnp({ preDNAT: true, ingress: [{ action: 'Deny' }] }), bad: 'spec.applyOnForward' },
  // --- Endpoints, sets, profiles
  { name: 'WorkloadEndpoint ipNetworks /32', doc: calico('WorkloadEndpoint', { node: 'node-1', ipNetworks: ['10.244.0.5/32', 'fd00::5/128'], interfaceName: 'cali0123456789a', mac: 'ee:ee:ee:ee:ee:ee', ports: [{ name: 'http', protocol: 'TCP', port: 80 }] }, { name: 'node--1-k8s-web-eth0', namespace: 'web' }) },
  { name: 'WorkloadEndpoint ipNetworks multiple addresses', doc: calico('WorkloadEndpoint', { ipNetworks: ['10.244.0.0/24'] }), bad: 'spec.ipNetworks[0]', msg: 'multiple' },
  { name: 'WorkloadEndpoint interface name too long', doc: calico('WorkloadEndpoint', { interfaceName: 'cali0123456789abc' }), bad: 'spec.interfaceName' },
  { name: 'WorkloadEndpoint port protocol ICMP', doc: calico('WorkloadEndpoint', { ports: [{ name: 'p', protocol: 'ICMP', port: 1 }] }), bad: 'spec.ports[0].protocol' },
  { name: 'HostEndpoint needs interface or IPs', doc: calico('HostEndpoint', { node: 'node-1' }), bad: 'spec.interfaceName' },
  { name: 'HostEndpoint expectedIPs', doc: calico('HostEndpoint', { node: 'node-1', interfaceName: '*', expectedIPs: ['192.168.56.10', 'x'] }), bad: 'spec.expectedIPs[1]' },
  { name: 'NetworkSet nets', doc: calico('NetworkSet', { nets: ['198.51.100.0/28', '203.0.113.5'] }, { name: 'ext', namespace: 'web' }) },
  { name: 'GlobalNetworkSet bad net', doc: calico('GlobalNetworkSet', { nets: ['a.b.c.d/8'] }), bad: 'spec.nets[0]' },
  { name: 'Profile labelsToApply', doc: calico('Profile', { labelsToApply: { 'bad key!': 'x' } }), bad: 'spec.labelsToApply["bad key!"]' },
  // --- FelixConfiguration / IPAM
  { name: 'FelixConfiguration used fields', doc: calico('FelixConfiguration', { routeRefreshInterval: '90s', iptablesRefreshInterval: '3m', interfacePrefix: 'cali', vxlanVNI: 4096, vxlanPort: 4789, defaultEndpointToHostAction: 'Drop', failsafeInboundHostPorts: [{ protocol: 'tcp', port: 22 }] }, { name: 'default' }) },
  { name: 'FelixConfiguration typed field Petrel ignores warns', doc: calico('FelixConfiguration', { routeTableRange: { min: 1, max: 250 } }, { name: 'default' }), warn: 'spec.routeTableRange' },
  { name: 'FelixConfiguration routeTableRange min > max', doc: calico('FelixConfiguration', { routeTableRange: { min: 9, max: 2 } }, { name: 'default' }), bad: 'spec.routeTableRange.min' },
  { name: 'rule services is a warning', doc: rule({ action: 'Allow', destination: { services: { name: 'kubernetes', namespace: 'default' } } }), warn: 'spec.ingress[0].destination.services' },
  { name: 'rule services with ports', doc: rule({ action: 'Allow', protocol: 'TCP', destination: { services: { name: 'kubernetes' }, ports: [443] } }), bad: 'spec.ingress[0].destination.ports' },
  { name: 'FelixConfiguration bad duration', doc: calico('FelixConfiguration', { routeRefreshInterval: '90' }, { name: 'default' }), bad: 'spec.routeRefreshInterval' },
  { name: 'FelixConfiguration vxlanVNI range', doc: calico('FelixConfiguration', { vxlanVNI: 0 }, { name: 'default' }), bad: 'spec.vxlanVNI' },
  { name: 'unimplemented field at Calico default: no warning', doc: calico('BGPConfiguration', { logSeverityScreen: 'info', bindMode: 'None' }, { name: 'default' }) },
  { name: 'unimplemented field off its default warns', doc: calico('BGPConfiguration', { logSeverityScreen: 'Debug' }, { name: 'default' }), warn: 'spec.logSeverityScreen' },
  { name: 'FelixConfiguration documented field warns', doc: calico('FelixConfiguration', { bpfEnabled: true }, { name: 'default' }), warn: 'spec.bpfEnabled' },
  { name: 'FelixConfiguration typo is an error', doc: calico('FelixConfiguration', { bpfEnable: true }, { name: 'default' }), bad: 'spec.bpfEnable' },
  { name: 'BlockAffinity', doc: calico('BlockAffinity', { node: 'node-1', cidr: '10.244.0.0/26', state: 'confirmed', deleted: 'false' }, { name: 'node-1-10-244-0-0-26' }), check: (r) => expect(r.spec!.deleted).toBe(false) },
  { name: 'BlockAffinity state enum', doc: calico('BlockAffinity', { node: 'node-1', cidr: '10.244.0.0/26', state: 'claimed' }), bad: 'spec.state' },
  { name: 'IPAMBlock allocations', doc: calico('IPAMBlock', { cidr: '10.244.0.0/30', affinity: 'host:node-1', allocations: [0, null, null, null], unallocated: [1, 2, 3], attributes: [{ handle_id: 'k8s-pod-network.abc', secondary: { node: 'node-1' } }], strictAffinity: false }, { name: '10-244-0-0-30' }) },
  { name: 'IPAMBlock bad affinity', doc: calico('IPAMBlock', { cidr: '10.244.0.0/26', affinity: 'node-1' }), bad: 'spec.affinity' },
  // --- Kubernetes NetworkPolicy
  { name: 'K8s NP full', doc: knp({ podSelector: { matchLabels: { app: 'web' } }, ingress: [{ from: [{ namespaceSelector: { matchExpressions: [{ key: 'team', operator: 'In', values: ['a'] }] } }, { ipBlock: { cidr: '10.0.0.0/8', except: ['10.1.0.0/16'] } }], ports: [{ port: 80 }, { protocol: 'UDP', port: 5000, endPort: 5010 }, { port: 'http' }] }] }), check: (r) => { expect(r.spec!.policyTypes).toEqual(['Ingress']); expect(r.spec!.ingress[0].ports[0].protocol).toBe('TCP'); } },
  { name: 'K8s NP egress → policyTypes', doc: knp({ podSelector: {}, egress: [{ to: [{ podSelector: {} }] }] }), check: (r) => expect(r.spec!.policyTypes).toEqual(['Ingress', 'Egress']) },
  { name: 'K8s NP podSelector required', doc: knp({}), bad: 'spec.podSelector', msg: 'required' },
  { name: 'K8s NP operator', doc: knp({ podSelector: { matchExpressions: [{ key: 'a', operator: 'Equals', values: ['b'] }] } }), bad: 'spec.podSelector.matchExpressions[0].operator' },
  { name: 'K8s NP In needs values', doc: knp({ podSelector: { matchExpressions: [{ key: 'a', operator: 'In' }] } }), bad: 'spec.podSelector.matchExpressions[0].values' },
  { name: 'K8s NP Exists has no values', doc: knp({ podSelector: { matchExpressions: [{ key: 'a', operator: 'Exists', values: ['x'] }] } }), bad: 'spec.podSelector.matchExpressions[0].values' },
  { name: 'K8s NP except outside cidr', doc: knp({ podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/16', except: ['10.1.0.0/24'] } }] }] }), bad: 'spec.ingress[0].from[0].ipBlock.except[0]', msg: 'subset' },
  { name: 'K8s NP ipBlock with selector', doc: knp({ podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/16' }, podSelector: {} }] }] }), bad: 'spec.ingress[0].from[0].ipBlock' },
  { name: 'K8s NP endPort < port', doc: knp({ podSelector: {}, egress: [{ ports: [{ port: 5000, endPort: 4000 }] }] }), bad: 'spec.egress[0].ports[0].endPort', msg: 'greater than or equal' },
  { name: 'K8s NP protocol enum', doc: knp({ podSelector: {}, egress: [{ ports: [{ protocol: 'ICMP' }] }] }), bad: 'spec.egress[0].ports[0].protocol' },
  { name: 'K8s NP bad named port', doc: knp({ podSelector: {}, egress: [{ ports: [{ port: 'Not_A_Name' }] }] }), bad: 'spec.egress[0].ports[0].port' },
  { name: 'K8s NP policyTypes enum', doc: knp({ podSelector: {}, policyTypes: ['Inbound'] }), bad: 'spec.policyTypes[0]' },
  { name: 'K8s NP unknown field', doc: knp({ podSelector: {}, ingres: [] }), bad: 'spec.ingres' },
  // --- Other Kubernetes kinds pass through
  { name: 'Pod passes unknown fields through', doc: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web-0', namespace: 'web' }, spec: { nodeName: 'node-1', containers: [{ name: 'c', image: 'nginx', resources: { limits: { cpu: '1' } }, ports: [{ name: 'http', containerPort: 80 }] }], tolerations: [] }, status: { podIPs: [{ ip: '10.244.0.5' }], conditions: [] } }, check: (r) => expect(r.spec!.containers[0].image).toBe('nginx') },
  { name: 'Pod bad pod IP', doc: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: {}, status: { podIP: '10.244.0.500' } }, bad: 'status.podIP' },
  { name: 'Pod bad containerPort', doc: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { containers: [{ name: 'c', ports: [{ containerPort: 0 }] }] } }, bad: 'spec.containers[0].ports[0].containerPort' },
  { name: 'Namespace name is a DNS label', doc: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'a.b' } }, bad: 'metadata.name' },
  { name: 'ServiceAccount extra top-level fields', doc: { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'sa', namespace: 'web' }, automountServiceAccountToken: false } },
  { name: 'Service clusterIP None', doc: { apiVersion: 'v1', kind: 'Service', metadata: { name: 'db' }, spec: { clusterIP: 'None', ports: [{ port: 5432 }] } } },
];

describe('validateResource table', () => {
  it('has at least 60 cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(60);
  });

  for (const c of cases) {
    it(c.name, () => {
      if (c.bad !== undefined) {
        let err: unknown;
        try {
          validateResource(c.doc, { file: 'f.yaml', index: 3 });
        } catch (e) {
          err = e;
        }
        expect(err, 'expected a ValidationError').toBeInstanceOf(ValidationError);
        const ve = err as ValidationError;
        const hit = ve.problems.find((p) => p.path === c.bad);
        expect(hit, `no problem at ${c.bad}; got ${JSON.stringify(ve.problems)}`).toBeDefined();
        expect(ve.message).toContain(c.bad);
        expect(ve.message).toContain('f.yaml, document 3');
        if (c.msg) expect(hit!.message).toContain(c.msg);
        return;
      }
      const { resource, warnings } = validateResource(c.doc, { file: 'f.yaml', index: 0 });
      if (c.warn) expect(warnings.map((w) => w.path)).toContain(c.warn);
      else expect(warnings).toEqual([]);
      c.check?.(resource);
    });
  }
});

describe('validateResource errors', () => {
  it('names file, document, kind/name and every bad field at once', () => {
    const doc = calico('IPPool', { cidr: '10.0.0.1/16', ipipMode: 'Sometimes', blockSize: 'big' }, { name: 'pool-a' });
    try {
      validateResource(doc, { file: 'pools.yaml', index: 2 });
      expect.unreachable();
    } catch (e) {
      const ve = e as ValidationError;
      expect(ve.message).toMatch(/^pools\.yaml, document 2, IPPool pool-a: /);
      expect(ve.problems.map((p) => p.path).sort()).toEqual(['spec.blockSize', 'spec.cidr', 'spec.ipipMode']);
      expect(ve.source).toMatchObject({ file: 'pools.yaml', index: 2, kind: 'IPPool', name: 'pool-a' });
    }
  });

  it('names the namespace of namespaced resources', () => {
    const doc = calico('NetworkPolicy', { ingress: [{ action: 'Nope' }] }, { name: 'p', namespace: 'web' });
    expect(() => validateResource(doc, { file: 'a.yaml', index: 0 })).toThrow(/a\.yaml, document 0, NetworkPolicy web\/p: spec\.ingress\[0\]\.action/);
  });

  it('rejects non-objects and never throws anything but ValidationError', () => {
    for (const raw of [null, 42, 'text', [], { kind: 7 }, { apiVersion: V3, kind: 'IPPool', metadata: 'x' }, { apiVersion: V3, kind: 'IPPool', metadata: { name: 'a' }, spec: [] }]) {
      expect(() => validateResource(raw, {})).toThrow(ValidationError);
    }
  });

  it('a WorkloadEndpoint list field that is not a list is a field error, not a crash', () => {
    for (const field of ['ipNetworks', 'ipNATs', 'ports']) {
      for (const v of ['10.0.0.1/32', 5, {}]) {
        const doc = calico('WorkloadEndpoint', { node: 'node-1', ipNetworks: ['10.0.0.1/32'], [field]: v }, { name: 'w', namespace: 'n' });
        for (const reuseInput of [false, true]) {
          expect(() => validateResource(structuredClone(doc), {}, { reuseInput }), `${field} ${JSON.stringify(v)}`).toThrow(`spec.${field}: must be a list`);
        }
      }
    }
  });

  it('does not modify its input', () => {
    const doc = gnp({ ingress: [{ action: 'Allow', protocol: 'tcp', destination: { ports: ['80'] } }] });
    const before = JSON.stringify(doc);
    const { resource } = validateResource(doc, {});
    expect(JSON.stringify(doc)).toBe(before);
    expect(resource.spec!.ingress[0]).toMatchObject({ protocol: 'TCP', destination: { ports: [80] } });
  });

  it('is idempotent: a validated resource validates to itself', () => {
    for (const c of cases.filter((x) => x.bad === undefined)) {
      const once = validateResource(c.doc, {}).resource;
      expect(validateResource(once, {}).resource, c.name).toEqual(once);
    }
  });
});
