import { describe, expect, it } from 'vitest';
import { canonicalCidr, cidrContains, formatIp, hasHostBits, parseCidr, parseIp } from './net.js';

describe('net', () => {
  it('parses and formats IPv4 and IPv6', () => {
    expect(formatIp(4, parseIp('10.1.2.3')!.addr)).toBe('10.1.2.3');
    expect(formatIp(6, parseIp('fd00:0:0:0:0:0:0:1')!.addr)).toBe('fd00::1');
    expect(formatIp(6, parseIp('::ffff:10.0.0.1')!.addr)).toBe('::ffff:a00:1');
    expect(formatIp(6, parseIp('fd00:1:0:0:1:0:0:0')!.addr)).toBe('fd00:1:0:0:1::');
    expect(formatIp(6, parseIp('fd00:0:0:1:0:0:1:1')!.addr)).toBe('fd00::1:0:0:1:1');
    expect(parseIp('10.1.2')).toBeUndefined();
  });
  it('canonicalises and checks CIDRs', () => {
    expect(canonicalCidr('10.1.2.3/24')).toBe('10.1.2.0/24');
    expect(canonicalCidr('fd00:0::/48')).toBe('fd00::/48');
    expect(canonicalCidr('0.0.0.0/0')).toBe('0.0.0.0/0');
    expect(hasHostBits(parseCidr('10.1.2.3/24')!)).toBe(true);
    expect(hasHostBits(parseCidr('10.1.2.0/24')!)).toBe(false);
    expect(parseCidr('10.0.0.0/33')).toBeUndefined();
    expect(parseCidr('10.0.0.0/x')).toBeUndefined();
    expect(cidrContains(parseCidr('10.0.0.0/8')!, parseCidr('10.2.0.0/16')!)).toBe(true);
    expect(cidrContains(parseCidr('10.0.0.0/16')!, parseCidr('10.2.0.0/16')!)).toBe(false);
    expect(cidrContains(parseCidr('fd00::/8')!, parseCidr('fd12::1')!)).toBe(true);
  });
});
