// The character-loop fast paths accept exactly what the regular expressions (and node:net)
// they replace accept: checked on edge cases and on random strings over the relevant alphabets.
import { isIPv4 } from 'node:net';
import { describe, expect, it } from 'vitest';
import { validateResource } from '../validate.js'; // also: the module graph in its usual order (values.ts and the schemas import each other)
import { ValidationError } from '../types.js';
import { parseCidr, parseIp, parseIpv4 } from '../net.js';
import { Ctx } from './schema.js';
import { DNS1123_LABEL, DNS1123_SUBDOMAIN, QNAME, checkCidr, cidr, labelKeyProblem, labelValue, nameProblem, net } from './values.js';

function rand(alphabet: string, maxLen: number, seed: { s: number }): string {
  const next = () => {
    seed.s = (seed.s * 1103515245 + 12345) & 0x7fffffff;
    return seed.s;
  };
  const n = next() % (maxLen + 1);
  let out = '';
  for (let i = 0; i < n; i++) out += alphabet[next() % alphabet.length];
  return out;
}

describe('validation fast paths', () => {
  it('parseIpv4 accepts exactly what node:net isIPv4 accepts', () => {
    const edge = ['0.0.0.0', '255.255.255.255', '256.0.0.1', '01.2.3.4', '1.2.3.04', '1.2.3', '1.2.3.4.5', '1..2.3', '.1.2.3', '1.2.3.', '1.2.3.4 ', ' 1.2.3.4', '10.0.0.0/8', '1e1.2.3.4', '999.1.1.1', '00.0.0.0', '0.0.0.00'];
    const seed = { s: 7 };
    const samples = [...edge, ...Array.from({ length: 6000 }, () => rand('0123456789.', 16, seed)), ...Array.from({ length: 5000 }, () => rand('012.5', 15, seed))];
    for (const t of samples) {
      const v = parseIpv4(t, 0, t.length);
      expect(v >= 0, t).toBe(isIPv4(t));
      if (v >= 0) expect(v).toBe(t.split('.').reduce((a, p) => a * 256 + Number(p), 0));
    }
    expect(parseIp('10.1.2.3')).toEqual({ version: 4, addr: 0x0a010203n });
    expect(parseIp('255.255.255.255')!.addr).toBe(0xffffffffn);
    expect(parseIp('fd00::1')?.version).toBe(6);
    expect(parseIp('1.2.3')).toBeUndefined();
  });

  it('parseCidr prefix digits as /^\\d{1,3}$/', () => {
    for (const p of ['', '0', '32', '33', '032', '0032', '1a', '-1', '+1', ' 1', '99', '100', '128', '129']) {
      const ok = /^\d{1,3}$/.test(p) && Number(p) <= 32;
      expect(parseCidr(`10.0.0.0/${p}`) !== undefined, p).toBe(ok);
    }
    expect(parseCidr('fd00::/128')?.prefix).toBe(128);
    expect(parseCidr('fd00::/129')).toBeUndefined();
  });

  it('CIDR checks without a parse (plain IPv4 a.b.c.d/n) report what checkCidr reports', () => {
    const seed = { s: 5 };
    const samples = ['10.0.0.1/32', '10.0.0.1/33', '10.0.0.1/', '10.0.0.1', '10.0.0.1/032', '10.0.0.1/0032', '10.0.0.1/8/8', ' 10.0.0.1/32', '10.0.0.1/32 ', '010.0.0.1/32', 'fd00::1/128', '1.2.3.4/1a', '/32', '1.2.3.4//32'];
    for (let i = 0; i < 6000; i++) samples.push(rand('0123456789./', 18, seed), `${rand('0125.', 14, seed)}/${rand('0123', 3, seed)}`);
    const checks: [ReturnType<typeof cidr>, Parameters<typeof checkCidr>[3]][] = [
      [net, { allowBare: true }],
      [cidr(), {}],
      [cidr({ version: 4 }), { version: 4 }],
      [cidr({ version: 6, allowBare: true }), { version: 6, allowBare: true }],
      [cidr({ strict: true }), { strict: true }],
    ];
    for (const s of samples) {
      for (const [check, opts] of checks) {
        const fast = new Ctx();
        const slow = new Ctx();
        expect(check(s, 'p', fast), s).toBe(s);
        checkCidr(s, 'p', slow, opts);
        expect(fast.errors, `${s} ${JSON.stringify(opts)}`).toEqual(slow.errors);
      }
    }
  });

  it('WorkloadEndpoint ipNetworks: a /32 is passed over as parseCidr would pass it', () => {
    const seed = { s: 9 };
    const samples = ['10.0.0.1/32', '10.0.0.0/24', '10.0.0.1', 'fd00::1/128', 'fd00::/64', '10.0.0.1/032', '1.2.3.4/5/32', 'x/32', '/32', '1.2.3.4 /32'];
    for (let i = 0; i < 3000; i++) samples.push(`${rand('0123.', 12, seed)}/${rand('23', 2, seed)}`, rand('0123./', 16, seed));
    const problems = (ipNetworks: unknown[]) => {
      const wep = { apiVersion: 'projectcalico.org/v3', kind: 'WorkloadEndpoint', metadata: { name: 'w', namespace: 'n' }, spec: { node: 'n1', ipNetworks } };
      try {
        validateResource(wep);
        return [];
      } catch (e) {
        if (!(e instanceof ValidationError)) throw e;
        return e.problems;
      }
    };
    for (const s of samples) {
      // what the check did before the fast path: parse every network, a /n other than the full length is an error
      const c = parseCidr(s);
      const expected = [];
      if (!c) expected.push('spec.ipNetworks[0]');
      else if (s.includes('/') && c.prefix !== (c.version === 4 ? 32 : 128)) expected.push('spec.ipNetworks[0]');
      expect(problems([s]).map((p) => p.path), s).toEqual(expected);
    }
  });

  it('DNS-1123 names and qualified names as the regular expressions', () => {
    const seed = { s: 11 };
    const samples = ['a', '-', 'a-', '-a', 'a.b', 'a..b', '.a', 'a.', 'A', 'a_b', 'a-b.c-d', '0', 'a.-b', 'a-.b'];
    for (let i = 0; i < 4000; i++) samples.push(rand('ab0-.', 12, seed), rand('aZ9-_.', 10, seed));
    for (const s of samples) {
      if (s === '') continue;
      expect(nameProblem(s, 'subdomain') === undefined, s).toBe(DNS1123_SUBDOMAIN.test(s));
      expect(nameProblem(s, 'label') === undefined, s).toBe(s.length <= 63 && DNS1123_LABEL.test(s));
      expect(labelKeyProblem(s) === undefined, s).toBe(!s.includes('/') && s.length <= 63 && QNAME.test(s));
      const ctx = new Ctx();
      labelValue(s, 'v', ctx);
      expect(ctx.errors.length === 0, s).toBe(s.length <= 63 && QNAME.test(s));
      expect(labelValue.ok!(s)).toBe(ctx.errors.length === 0);
    }
    expect(labelValue.ok!('')).toBe(true);
    expect(labelValue.ok!(5)).toBe(false);
  });
});
