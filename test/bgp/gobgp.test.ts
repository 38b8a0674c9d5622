// Petrel against gobgpd (GoBGP 3.x), each in its own namespace: eBGP IPv4 with MED and
// communities both ways, iBGP IPv6 with 4-octet ASNs, withdrawals (`gobgp global rib -j`).
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { requireRoot, vethPair, type NetNs } from '../netns.js';
import { Gobgp, Lab, PetrelProc, until } from './harness.js';

requireRoot();
const lab = new Lab();
let P: NetNs;
let G: NetNs;
const P4 = '10.77.2.1';
const G4 = '10.77.2.2';
const P6 = 'fd00:77:2::1';
const G6 = 'fd00:77:2::2';

beforeAll(async () => {
  P = await lab.ns();
  G = await lab.ns();
  await vethPair(P, 'vp', [`${P4}/24`, `${P6}/64`], G, 'vg', [`${G4}/24`, `${G6}/64`]);
}, 120_000);
afterEach(() => lab.endTest(), 60_000);
afterAll(() => lab.cleanup(), 60_000);

function ribEntry(rib: any, prefix: string): any {
  const e = rib[prefix];
  return Array.isArray(e) ? e.find((x: any) => x.best) ?? e[0] : undefined;
}

describe('Petrel <-> gobgpd', () => {
  it('eBGP IPv4: MED and communities both ways, AS path and next hop, withdrawals', async () => {
    const g = await Gobgp.start(
      lab,
      G,
      'g1',
      Gobgp.toml({ as: 64513, routerId: G4, localAddresses: [G4], peers: [{ ip: P4, as: 64512, localIp: G4 }] }),
    );
    const p = await PetrelProc.start(lab, P, { routerId: P4, asNumber: 64512 }, {
      peers: [{ address: G4, asNumber: 64513, type: 'global', holdTime: 9 }],
    });
    await p.call('exports', { exports: [{ prefix: '10.11.0.0/26', communities: ['64512:300'] }, { prefix: '10.11.0.64/26' }] });
    await until('established', async () => (await p.peer(G4)).state === 'Established', 30_000);
    await g.cli('global', 'rib', 'add', '203.0.113.0/24', '-a', 'ipv4', 'community', '64513:100', 'med', '10');
    await g.cli('global', 'rib', 'add', '198.51.100.0/25', '-a', 'ipv4', 'nexthop', G4);
    await until('Petrel learns', async () => (await p.rib()).size === 2);
    expect((await p.rib()).get('203.0.113.0/24')).toMatchObject({ nextHop: G4, asPath: [64513], med: 10, communities: ['64513:100'] });
    await until('gobgp learns', async () => Object.keys(await g.json('global', 'rib', '-a', 'ipv4')).length === 4);
    const rib = await g.json('global', 'rib', '-a', 'ipv4');
    const e = ribEntry(rib, '10.11.0.0/26');
    const attrs = Object.fromEntries(e.attrs.map((a: any) => [a.type, a]));
    expect(attrs[1].value).toBe(0); // ORIGIN IGP
    expect(attrs[2].as_paths[0].asns).toEqual([64512]);
    expect(attrs[3].nexthop).toBe(P4);
    expect(attrs[8].communities).toEqual([64512 * 65536 + 300]);
    expect(e['neighbor-ip']).toBe(P4);
    // withdrawals both ways
    await g.cli('global', 'rib', 'del', '198.51.100.0/25', '-a', 'ipv4');
    await until('Petrel sees the withdrawal', async () => (await p.rib()).size === 1);
    await p.exports(['10.11.0.64/26']);
    await until('gobgp sees the withdrawal', async () => {
      const r = await g.json('global', 'rib', '-a', 'ipv4');
      return !r['10.11.0.0/26'] && !!r['10.11.0.64/26'];
    });
    p.kill();
    g.stop();
  });

  it('UPDATEs are packed: 300 prefixes with one attribute set arrive in a couple of messages, withdrawals batched', async () => {
    const g = await Gobgp.start(lab, G, 'g3', Gobgp.toml({ as: 64513, routerId: G4, localAddresses: [G4], peers: [{ ip: P4, as: 64512, localIp: G4 }] }));
    const prefixes = Array.from({ length: 300 }, (_, i) => `10.12.${i >> 2}.${(i & 3) * 64}/26`);
    const p = await PetrelProc.start(lab, P, { routerId: P4, asNumber: 64512 }, { peers: [{ address: G4, asNumber: 64513, type: 'global', holdTime: 9 }] }, prefixes.map((prefix) => ({ prefix })));
    await until('gobgp has all', async () => Object.keys(await g.json('global', 'rib', '-a', 'ipv4')).length === 300);
    const updates = async () => (await g.json('neighbor', P4)).state.messages.received.update as number;
    const u0 = await updates();
    expect(u0).toBeLessThanOrEqual(3); // 300 x 4 octets fit one UPDATE; plus End-of-RIB
    await p.exports([]);
    await until('gobgp saw all withdrawn', async () => Object.keys(await g.json('global', 'rib', '-a', 'ipv4')).length === 0);
    expect((await updates()) - u0).toBeLessThanOrEqual(2);
    p.kill();
    g.stop();
  });

  it('iBGP IPv6 with 4-octet ASNs', async () => {
    const g = await Gobgp.start(
      lab,
      G,
      'g2',
      Gobgp.toml({ as: 4200000010, routerId: G4, localAddresses: [G6], peers: [{ ip: P6, as: 4200000010, localIp: G6, ipv6: true }] }),
    );
    const p = await PetrelProc.start(lab, P, { routerId: P4, asNumber: 4200000010 }, {
      peers: [{ address: G6, asNumber: 4200000010, type: 'node-mesh', holdTime: 9 }],
    }, [{ prefix: 'fd00:11::/64' }]);
    await until('established', async () => (await p.peer(G6)).state === 'Established', 30_000);
    await g.cli('global', 'rib', 'add', 'fd00:60::/64', '-a', 'ipv6', 'nexthop', G6, 'local-pref', '200');
    await until('Petrel learns v6', async () => (await p.rib()).has('fd00:60::/64'));
    expect((await p.rib()).get('fd00:60::/64')).toMatchObject({ nextHop: G6, asPath: [], localPref: 200 });
    await until('gobgp learns v6', async () => !!(await g.json('global', 'rib', '-a', 'ipv6'))['fd00:11::/64']);
    const e = ribEntry(await g.json('global', 'rib', '-a', 'ipv6'), 'fd00:11::/64');
    const mp = e.attrs.find((a: any) => a.type === 14);
    expect(mp.nexthop).toBe(P6);
    const lp = e.attrs.find((a: any) => a.type === 5);
    expect(lp.value).toBe(100);
    const n = await g.json('neighbor', P6);
    expect(n.conf?.peer_asn ?? n.conf?.peer_as).toBe(4200000010);
    p.kill();
    g.stop();
  });
});
