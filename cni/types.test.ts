import { describe, expect, it } from 'vitest';
import { convertResult, parseCniArgs, parseResult } from './types.js';
import { parseNetConf } from './config.js';
import { hostVethName, workloadEndpointName } from './names.js';

describe('CNI results', () => {
  const r = { cniVersion: '1.0.0', interfaces: [{ name: 'eth0' }], ips: [{ address: '10.0.0.1/32', interface: 0 }, { address: 'fd00::1/128', interface: 0 }], routes: [] };
  it('adds ips[].version for 0.3.x and 0.4.0, none for 1.0.0', () => {
    expect((convertResult(r, '0.4.0').ips as any[]).map((i) => i.version)).toEqual(['4', '6']);
    expect((convertResult(r, '0.3.1').cniVersion)).toBe('0.3.1');
    expect((convertResult(r, '1.0.0').ips as any[])[0].version).toBeUndefined();
    expect(() => convertResult(r, '0.2.0')).toThrow(/0.2.0/);
  });
  it('reads an old result back into the 1.0.0 shape', () => {
    expect(parseResult({ cniVersion: '0.4.0', ips: [{ version: '4', address: '10.0.0.1/32' }] }).ips).toEqual([{ address: '10.0.0.1/32' }]);
  });
  it('parses CNI_ARGS and rejects malformed pairs', () => {
    expect(parseCniArgs('IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p')).toEqual({ IgnoreUnknown: '1', K8S_POD_NAMESPACE: 'ns', K8S_POD_NAME: 'p' });
    expect(() => parseCniArgs('garbage')).toThrow(/malformed/);
  });
});

describe('network configuration', () => {
  const base = { cniVersion: '1.0.0', name: 'k8s-pod-network', type: 'petrel', ipam: { type: 'petrel-ipam' }, nodename: 'n1' };
  it('takes a Calico conflist plugin entry as is', () => {
    const c = parseNetConf(
      JSON.stringify({ ...base, type: 'calico', datastore_type: 'kubernetes', mtu: 1440, kubernetes: { kubeconfig: '/etc/cni/net.d/calico-kubeconfig' }, ipam: { type: 'calico-ipam', assign_ipv6: 'true', ipv4_pools: ['10.0.0.0/16'] }, policy: { type: 'k8s' } }),
      {},
    );
    expect(c.datastoreType).toBe('kubernetes');
    expect(c.mtu).toBe(1440);
    expect(c.ipam.assignIpv4 && c.ipam.assignIpv6).toBe(true);
    expect(c.ipam.ipv4Pools).toEqual(['10.0.0.0/16']);
  });
  it('names what is wrong with the right code', () => {
    const code = (s: string) => {
      try {
        parseNetConf(s, {});
      } catch (e: any) {
        return e.code;
      }
      return 0;
    };
    expect(code('{')).toBe(6);
    expect(code(JSON.stringify({ ...base, cniVersion: '9.9.9' }))).toBe(1);
    expect(code(JSON.stringify({ ...base, ipam: {} }))).toBe(7);
    expect(code(JSON.stringify({ ...base, datastore_type: 'consul' }))).toBe(2);
    expect(code(JSON.stringify({ ...base, mtu: 'big' }))).toBe(7);
  });
});

describe('names', () => {
  it('derives the host veth and endpoint names as Calico does', async () => {
    // sha1("default.nginx") = 0c3b5ec2...; Calico: cali + first 11 hex chars
    expect(hostVethName('cali', 'default', 'nginx', 'x')).toMatch(/^cali[0-9a-f]{11}$/);
    expect(hostVethName('cali', undefined, undefined, '0123456789abcdef')).toBe('cali0123456789a');
    expect(workloadEndpointName('node-1', 'k8s', 'my-pod', 'eth0')).toBe('node--1-k8s-my--pod-eth0');
    // the agent derives the same name from the pod (datastore/derive.ts)
    const derive = await import('../datastore/derive.js');
    for (const [ns, pod] of [['default', 'nginx'], ['kube-system', 'coredns-5d78c9869d-abcde']]) {
      expect(derive.interfaceNameForPod(ns, pod)).toBe(hostVethName('cali', ns, pod, 'x'));
    }
  });
});
