// Petrel against BIRD 2 (bird2), each in its own namespace: eBGP IPv4 (2-octet ASNs), iBGP
// IPv6 (4-octet ASN), attributes seen by `birdc show route all`, withdrawals both ways,
// graceful restart (kill -9 Petrel while BIRD holds its routes), hold timer (BIRD SIGSTOPped),
// TCP-MD5 (right and wrong password), and three Petrel RR clients of a BIRD route reflector.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { requireRoot, vethPair, type NetNs } from '../netns.js';
import { Bird, Lab, PetrelProc, sleep, until } from './harness.js';

requireRoot();
const lab = new Lab();
let P: NetNs; // Petrel
let B: NetNs; // BIRD
const P4 = '10.77.1.1';
const B4 = '10.77.1.2';
const P6 = 'fd00:77:1::1';
const B6 = 'fd00:77:1::2';

beforeAll(async () => {
  P = await lab.ns();
  B = await lab.ns();
  await vethPair(P, 'vp', [`${P4}/24`, '10.77.1.11/24', '10.77.1.12/24', '10.77.1.13/24', `${P6}/64`], B, 'vb', [`${B4}/24`, `${B6}/64`]);
}, 120_000);
afterEach(() => lab.endTest(), 60_000);
afterAll(() => lab.cleanup(), 60_000);

const kernelProto = `protocol kernel k4 { ipv4 { import none; export where source = RTS_BGP; }; }
protocol kernel k6 { ipv6 { import none; export where source = RTS_BGP; }; }
`;

describe('Petrel <-> BIRD 2', () => {
  it('eBGP IPv4: prefixes both ways with the right attributes; withdrawals propagate', async () => {
    const bird = await Bird.start(
      lab,
      B,
      'b1',
      Bird.conf({
        routerId: B4,
        static4: ['192.168.50.0/24', '192.168.51.0/24'],
        peers: [{ name: 'petrel', ip: P4, as: 64512, localIp: B4, localAs: 64513 }],
      }),
    );
    const p = await PetrelProc.start(lab, P, { routerId: P4, asNumber: 64512 }, {
      peers: [{ address: B4, asNumber: 64513, type: 'global', holdTime: 9 }],
    }, [{ prefix: '10.10.0.0/26' }, { prefix: '10.10.0.64/26' }]);
    await until('BIRD established', () => bird.established('petrel'));
    await until('BIRD has our routes', async () => (await bird.routes('petrel')).size === 2);
    const r = (await bird.routes('petrel')).get('10.10.0.0/26')!;
    expect(r).toMatch(/BGP\.origin: IGP/);
    expect(r).toMatch(/BGP\.as_path: 64512\n/);
    expect(r).toMatch(new RegExp(`BGP\\.next_hop: ${P4.replace(/\./g, '\\.')}`));
    await until('Petrel has BIRD routes', async () => (await p.rib()).size === 2);
    expect((await p.rib()).get('192.168.50.0/24')).toMatchObject({ nextHop: B4, asPath: [64513], peer: B4 });
    const st = await p.peer(B4);
    expect(st).toMatchObject({ state: 'Established', prefixesReceived: 2, prefixesAdvertised: 2, asNumber: 64513 });
    expect(st.capabilities).toEqual(expect.arrayContaining(['ipv4-unicast', '4-octet-as', 'route-refresh', 'graceful-restart']));
    // withdraw both ways
    await p.exports(['10.10.0.0/26']);
    await until('BIRD sees the withdrawal', async () => (await bird.routes('petrel')).size === 1);
    await bird.birdc('disable', 's4');
    await until('Petrel sees BIRD withdrawals', async () => (await p.rib()).size === 0);
    p.kill();
    bird.stop();
  });

  it('iBGP IPv6 with a 4-octet ASN', async () => {
    const bird = await Bird.start(
      lab,
      B,
      'b2',
      Bird.conf({
        routerId: B4,
        static6: ['fd00:50::/64'],
        peers: [{ name: 'petrel6', ip: P6, as: 4200000001, localIp: B6, localAs: 4200000001, ipv6: true }],
      }),
    );
    const p = await PetrelProc.start(lab, P, { routerId: P4, asNumber: 4200000001 }, {
      peers: [{ address: B6, asNumber: 4200000001, type: 'node-mesh', holdTime: 9 }],
    }, [{ prefix: 'fd00:10:0:1::/64' }]);
    await until('BIRD established', () => bird.established('petrel6'));
    await until('BIRD has our v6 route', async () => (await bird.routes('petrel6')).has('fd00:10:0:1::/64'));
    const r = (await bird.routes('petrel6')).get('fd00:10:0:1::/64')!;
    expect(r).toMatch(/BGP\.as_path:\s*\n/);
    expect(r).toMatch(/BGP\.local_pref: 100/);
    expect(r).toMatch(/BGP\.next_hop: fd00:77:1::1/);
    await until('Petrel has BIRD v6 route', async () => (await p.rib()).has('fd00:50::/64'));
    expect((await p.rib()).get('fd00:50::/64')).toMatchObject({ nextHop: B6, asPath: [] });
    expect((await bird.birdc('show', 'protocols', 'all', 'petrel6'))).toMatch(/Neighbor AS:\s+4200000001/);
    p.kill();
    bird.stop();
  });

  it('graceful restart: kill -9 Petrel, BIRD keeps the routes (never disappear), restarted Petrel re-syncs', async () => {
    const bird = await Bird.start(
      lab,
      B,
      'b3',
      kernelProto +
        Bird.conf({
          routerId: B4,
          peers: [{ name: 'petrel', ip: P4, as: 64512, localIp: B4, localAs: 64513, gr: { time: 60 } }],
        }),
    );
    const cfg = { peers: [{ address: B4, asNumber: 64513, type: 'global', holdTime: 9 }] };
    const ex = [{ prefix: '10.20.0.0/26' }, { prefix: '10.20.0.64/26' }];
    let p = await PetrelProc.start(lab, P, { routerId: P4, asNumber: 64512, gracefulRestart: { restartTime: 60, deferralTime: 5 } }, cfg, ex);
    await until('BIRD has both routes', async () => (await bird.routes('petrel')).size === 2);
    await until('kernel routes in BIRD ns', async () => (await B.exec('ip', ['route', 'show', 'proto', 'bird'])).stdout.includes('10.20.0.0/26'));
    // watch continuously: the routes must never disappear from BIRD's table
    let missing = 0;
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const r = await bird.routes('petrel').catch(() => new Map());
        if (!r.has('10.20.0.0/26')) missing++;
        await sleep(100);
      }
    })();
    for (let round = 0; round < 2; round++) {
      p.kill('SIGKILL');
      await p.waitExit();
      await until('BIRD notices', async () => !(await bird.established('petrel')));
      await sleep(500);
      const kept = await bird.routes('petrel');
      expect(kept.has('10.20.0.0/26')).toBe(true);
      expect((await B.exec('ip', ['route', 'show', 'proto', 'bird'])).stdout).toContain('10.20.0.0/26');
      // restarted agent: the second time one prefix is gone, BIRD must drop it after our End-of-RIB
      p = await PetrelProc.start(lab, P, { routerId: P4, asNumber: 64512, gracefulRestart: { restartTime: 60, deferralTime: 5 } }, cfg, round === 0 ? ex : ex.slice(0, 1));
      await until('BIRD re-established', () => bird.established('petrel'), 30_000);
      await until('re-synced', async () => (await bird.routes('petrel')).size === (round === 0 ? 2 : 1), 30_000);
    }
    watching = false;
    await watcher;
    expect(missing).toBe(0);
    p.kill();
    bird.stop();
  });

  it('graceful restart, Petrel as helper: `birdc graceful restart` + `bird -R`, routes kept stale, then refreshed', async () => {
    const conf =
      Bird.conf({
        routerId: B4,
        static4: ['192.168.65.0/24', '192.168.66.0/24'],
        peers: [{ name: 'petrel', ip: P4, as: 64512, localIp: B4, localAs: 64513, gr: { time: 60 } }],
      });
    const bird = await Bird.start(lab, B, 'b9', conf);
    const p = await PetrelProc.start(lab, P, { routerId: P4, asNumber: 64512 }, {
      peers: [{ address: B4, asNumber: 64513, type: 'global', holdTime: 9 }],
    }, []);
    await until('routes from BIRD', async () => (await p.rib()).size === 2);
    await bird.birdc('graceful', 'restart');
    await until('session down', async () => (await p.peer(B4)).state !== 'Established');
    const kept = await p.rib();
    expect(kept.size).toBe(2);
    expect([...kept.values()].every((r) => r.stale)).toBe(true);
    // BIRD comes back recovering (-R) with one static less: that one is swept after its End-of-RIB
    await bird.stop();
    const conf2 = conf.replace(' route 192.168.66.0/24 blackhole;', '');
    const cf = join(lab.dir, 'b9r.conf');
    writeFileSync(cf, conf2);
    await B.exec('bird', ['-R', '-c', cf, '-s', join(lab.dir, 'b9r.ctl'), '-P', join(lab.dir, 'b9r.pid')]);
    lab.defer(async () => {
      const pid = Number(readFileSync(join(lab.dir, 'b9r.pid'), 'utf8').trim());
      if (pid) process.kill(pid, 'SIGKILL');
    });
    await until('re-synced', async () => {
      const r = await p.rib();
      return r.size === 1 && r.has('192.168.65.0/24') && !r.get('192.168.65.0/24').stale;
    }, 45_000);
  });

  it('hold timer: BIRD frozen with SIGSTOP is declared down after the hold time', async () => {
    const bird = await Bird.start(
      lab,
      B,
      'b4',
      Bird.conf({ routerId: B4, static4: ['192.168.60.0/24'], peers: [{ name: 'petrel', ip: P4, as: 64512, localIp: B4, localAs: 64513, hold: 3 }] }),
    );
    const p = await PetrelProc.start(lab, P, { routerId: P4, asNumber: 64512 }, {
      peers: [{ address: B4, asNumber: 64513, type: 'global', holdTime: 3 }],
    }, []);
    await until('established', async () => (await p.peer(B4)).state === 'Established');
    expect((await p.peer(B4)).holdTime).toBe(3);
    await until('route', async () => (await p.rib()).size === 1);
    const birdPid = Number((await B.exec('cat', [`${lab.dir}/b4.pid`])).stdout.trim());
    process.kill(birdPid, 'SIGSTOP');
    const t0 = Date.now();
    try {
      await until('declared down', async () => (await p.peer(B4)).state !== 'Established', 10_000, 50);
      const took = Date.now() - t0;
      expect(took).toBeGreaterThan(1500);
      expect((await p.peer(B4)).info).toMatch(/hold timer/i);
      expect((await p.rib()).size).toBe(0); // hold expiry is not graceful: routes withdrawn
    } finally {
      process.kill(birdPid, 'SIGCONT');
    }
    p.kill();
    bird.stop();
  });

  it('TCP-MD5: the right password comes up, a wrong one fails cleanly', async () => {
    const bird = await Bird.start(
      lab,
      B,
      'b5',
      Bird.conf({ routerId: B4, static4: ['192.168.70.0/24'], peers: [{ name: 'petrel', ip: P4, as: 64512, localIp: B4, localAs: 64513, password: 'lab-secret' }] }),
    );
    const p = await PetrelProc.start(lab, P, { routerId: P4, asNumber: 64512 }, {
      peers: [{ address: B4, asNumber: 64513, type: 'global', holdTime: 9, password: 'lab-secret' }],
    }, [{ prefix: '10.30.0.0/26' }]);
    await until('MD5 session established', async () => (await p.peer(B4)).state === 'Established', 30_000);
    await until('routes over MD5', async () => (await bird.routes('petrel')).size === 1);
    const ss = (await P.exec('ss', ['-tni', 'dst', B4])).stdout;
    expect(ss).toMatch(/md5/);
    // status never shows the password
    expect(JSON.stringify(await p.status())).not.toContain('lab-secret');
    // wrong password: session goes down and stays down, speaker alive
    await p.configure([{ address: B4, asNumber: 64513, type: 'global', holdTime: 9, password: 'wrong' }]);
    await sleep(8000);
    const st = await p.peer(B4);
    expect(st.state).not.toBe('Established');
    expect(await bird.established('petrel')).toBe(false);
    // and back with the right one
    await p.configure([{ address: B4, asNumber: 64513, type: 'global', holdTime: 9, password: 'lab-secret' }]);
    await until('re-established', async () => (await p.peer(B4)).state === 'Established', 30_000);
    p.kill();
    bird.stop();
  });

  it('TTL security (GTSM): up with ttlSecurity set, refused without', async () => {
    const bird = await Bird.start(
      lab,
      B,
      'b7',
      Bird.conf({ routerId: B4, static4: ['192.168.80.0/24'], peers: [{ name: 'petrel', ip: P4, as: 64512, localIp: B4, localAs: 64513, ttlSecurity: true }] }),
    );
    const p = await PetrelProc.start(lab, P, { routerId: P4, asNumber: 64512 }, {
      peers: [{ address: B4, asNumber: 64513, type: 'global', holdTime: 9, ttlSecurity: 1 }],
    }, []);
    await until('GTSM session established', async () => (await p.rib()).size === 1, 30_000);
    // Without it our segments carry TTL 64 and BIRD drops them: no session, no routes.
    await p.configure([{ address: B4, asNumber: 64513, type: 'global', holdTime: 9 }]);
    await until('session reset', async () => (await p.rib()).size === 0);
    for (let i = 0; i < 12; i++) {
      await sleep(500);
      expect(await bird.established('petrel')).toBe(false);
      expect((await p.rib()).size).toBe(0);
    }
    bird.stop();
  });

  it('route reflection: three Petrel RR clients of a BIRD RR learn each other once', async () => {
    const clients = ['10.77.1.11', '10.77.1.12', '10.77.1.13'];
    const bird = await Bird.start(
      lab,
      B,
      'b6',
      Bird.conf({
        routerId: B4,
        rrClusterId: '1.1.1.1',
        peers: clients.map((c, i) => ({ name: `c${i}`, ip: c, as: 64512, localIp: B4, localAs: 64512, rrClient: true })),
      }),
    );
    const ps: PetrelProc[] = [];
    for (const [i, c] of clients.entries()) {
      ps.push(
        await PetrelProc.start(lab, P, { routerId: c, asNumber: 64512, listenAddress: c }, {
          peers: [{ address: B4, asNumber: 64512, type: 'global', sourceAddress: c, holdTime: 9 }],
        }, [{ prefix: `10.40.${i}.0/26` }]),
      );
    }
    for (const p of ps) await until('client learns the others', async () => (await p.rib()).size === 2, 30_000);
    for (const [i, p] of ps.entries()) {
      const rib = await p.rib();
      for (const [j, c] of clients.entries()) {
        if (j === i) continue;
        expect(rib.get(`10.40.${j}.0/26`)).toMatchObject({ nextHop: c, peer: B4, asPath: [] });
      }
      expect((await p.peer(B4)).prefixesReceived).toBe(2);
    }
    for (const p of ps) p.kill();
    bird.stop();
  });
});
