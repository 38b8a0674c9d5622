// Unit tests of the pure parts of routes/: the route model, netlink encoding/decoding, MTU rules.
import { describe, expect, it } from 'vitest';
import { RouteManager, formatRoute, normaliseRoute, routeKey } from './manager.js';
import { detectHostMtu, tunnelMtus } from './mtu.js';
import { workloadSysctls } from './interfaces.js';
import {
  AF_INET,
  AF_INET6,
  NLM_F_CREATE,
  NLM_F_REQUEST,
  NlWriter,
  RTM_NEWROUTE,
  RTN_UNICAST,
  RTNH_F_ONLINK,
  decodeRoute,
  encodeRoute,
  ipBytes,
  ipFromBytes,
  parseMessages,
  v4Octets,
} from './nl.js';

describe('route model', () => {
  it('normalises: canonical dst, default scope, v6 without scope', () => {
    expect(normaliseRoute({ dst: '10.65.0.7/24', type: 'blackhole' })).toEqual({ dst: '10.65.0.0/24', type: 'blackhole', scope: 'universe' });
    expect(normaliseRoute({ dst: '10.65.0.7/32', type: 'unicast', dev: 'cali1' })).toEqual({ dst: '10.65.0.7/32', type: 'unicast', dev: 'cali1', scope: 'link' });
    expect(normaliseRoute({ dst: 'FD00:65:0:0::7/128', type: 'unicast', via: 'FD00::1' })).toEqual({ dst: 'fd00:65::7/128', type: 'unicast', via: 'fd00::1' });
    expect(normaliseRoute({ dst: '10.1.0.0/16', type: 'unicast', via: '10.0.0.1', table: 254 })).toEqual({ dst: '10.1.0.0/16', type: 'unicast', via: '10.0.0.1', scope: 'universe' });
  });

  it('rejects bad routes with a message naming the problem', () => {
    expect(() => normaliseRoute({ dst: '10.0.0.0/33', type: 'blackhole' })).toThrow(/invalid destination CIDR/);
    expect(() => normaliseRoute({ dst: '10.0.0.0/8', type: 'unicast' })).toThrow(/needs dev or via/);
    expect(() => normaliseRoute({ dst: '10.0.0.0/8', type: 'unicast', via: '10.0.0.256' })).toThrow(/not an IPv4 address/);
    expect(() => normaliseRoute({ dst: '10.0.0.0/8', type: 'unicast', via: '10.0.0.1', onlink: true })).toThrow(/onlink needs dev/);
    expect(() => normaliseRoute({ dst: '10.0.0.0/8', type: 'local' as any })).toThrow(/invalid type/);
    expect(() => normaliseRoute({ dst: '10.0.0.0/8', type: 'unicast', dev: 'a-very-long-interface-name' })).toThrow(/invalid interface name/);
    expect(() => normaliseRoute({ dst: 'fd00::/64', type: 'unicast', via: '10.0.0.1' })).toThrow(/not an IPv6 address/);
  });

  it('refuses route protocols that belong to the kernel or the administrator', () => {
    expect(() => new RouteManager({ protocol: 3 })).toThrow(/route protocol 3 is the kernel's or the administrator's/);
    expect(() => new RouteManager({ protocol: 256 })).toThrow(/invalid route protocol 256/);
    expect(new RouteManager({}).protocol).toBe(80);
  });

  it('keys: the dst for the main table, dst%table otherwise; formatted like ip route', () => {
    expect(routeKey({ dst: '10.0.0.0/8' })).toBe('10.0.0.0/8');
    expect(routeKey({ dst: '10.0.0.0/8', table: 100 })).toBe('10.0.0.0/8%100');
    expect(formatRoute({ dst: '10.65.2.0/26', type: 'unicast', via: '10.65.2.1', dev: 'vxlan.calico', onlink: true })).toBe('10.65.2.0/26 via 10.65.2.1 dev vxlan.calico onlink');
  });
});

describe('netlink encoding', () => {
  it('IPv4 and IPv6 address bytes round-trip', () => {
    expect(ipBytes('192.168.1.2')).toEqual([192, 168, 1, 2]);
    expect(v4Octets('01.2.3.4')).toBeUndefined();
    expect(v4Octets('1.2.3')).toBeUndefined();
    const b = Buffer.from(ipBytes('fd00:65::2:1'));
    expect(ipFromBytes(b, 0, 16)).toBe('fd00:65::2:1');
  });

  it('a route message decodes to what was encoded', () => {
    const w = new NlWriter(16);
    encodeRoute(w, RTM_NEWROUTE, NLM_F_REQUEST | NLM_F_CREATE, 7, {
      family: AF_INET,
      dst: '10.65.2.0/26',
      table: 1000,
      protocol: 80,
      rtype: RTN_UNICAST,
      scope: 0,
      flags: RTNH_F_ONLINK,
      oif: 5,
      gateway: '10.65.2.1',
      mtu: 1450,
    });
    encodeRoute(w, RTM_NEWROUTE, NLM_F_REQUEST, 8, { family: AF_INET6, dst: 'fd00:65::/122', table: 254, protocol: 80, rtype: 6, scope: 0, flags: 0, priority: 1024 });
    const msgs = parseMessages(Buffer.from(w.view()));
    expect(msgs.map((m) => m.seq)).toEqual([7, 8]);
    expect(decodeRoute(msgs[0])).toMatchObject({ dst: '10.65.2.0/26', table: 1000, protocol: 80, oif: 5, gateway: '10.65.2.1', mtu: 1450, flags: RTNH_F_ONLINK });
    expect(decodeRoute(msgs[1])).toMatchObject({ family: AF_INET6, dst: 'fd00:65::/122', table: 254, rtype: 6, priority: 1024 });
  });
});

describe('MTU and interface rules', () => {
  it('host MTU: smallest matching interface, else 1460; tunnels subtract their overhead unless configured', () => {
    expect(detectHostMtu([{ name: 'lo', mtu: 65536 }, { name: 'eth0', mtu: 9000 }, { name: 'ens3', mtu: 1500 }, { name: 'cali1', mtu: 1400 }])).toBe(1500);
    expect(detectHostMtu([{ name: 'lo', mtu: 65536 }, { name: 'docker0', mtu: 1500 }])).toBe(1460);
    expect(tunnelMtus(1500)).toEqual({ vxlan: 1450, vxlanV6: 1430, ipip: 1480 });
    expect(tunnelMtus(1500, { vxlanMTU: 1400, ipipMTU: 1300 })).toEqual({ vxlan: 1400, vxlanV6: 1430, ipip: 1300 });
  });

  it('workload interface sysctls are the ones Felix writes', () => {
    const s = Object.fromEntries(workloadSysctls('cali123'));
    expect(s).toMatchObject({
      'net/ipv4/conf/cali123/proxy_arp': '1',
      'net/ipv4/neigh/cali123/proxy_delay': '0',
      'net/ipv4/conf/cali123/forwarding': '1',
      'net/ipv4/conf/cali123/rp_filter': '2',
      'net/ipv4/conf/cali123/route_localnet': '1',
      'net/ipv6/conf/cali123/proxy_ndp': '1',
      'net/ipv6/conf/cali123/forwarding': '1',
      'net/ipv6/conf/cali123/accept_ra': '0',
    });
    expect(workloadSysctls('cali123', false).some(([p]) => p.includes('ipv6'))).toBe(false);
  });
});
