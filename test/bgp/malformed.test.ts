// Malformed input on a live session: a scripted peer sends bad messages to a Petrel speaker;
// each gets the NOTIFICATION the codec prescribes (or RFC 7606 treat-as-withdraw, session kept),
// the speaker process survives, and its other session stays Established throughout.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { BgpNotification, CapabilityCode, decodeUpdate, encodeOpen } from '../../bgp/codec/index.js';
import { requireRoot, type NetNs } from '../netns.js';
import { Lab, PetrelProc, ROOT, until } from './harness.js';

requireRoot();
const lab = new Lab();
let ns: NetNs;
let p: PetrelProc;
let healthy: PetrelProc;
let healthySince = '';

const MARKER = 'ff'.repeat(16);
const hdr = (type: number, bodyHex: string, lenOverride?: number) =>
  MARKER + (lenOverride ?? 19 + bodyHex.length / 2).toString(16).padStart(4, '0') + type.toString(16).padStart(2, '0') + bodyHex;
const u16 = (n: number) => n.toString(16).padStart(4, '0');
const updBody = (attrs: string, nlri: string, withdrawn = '') => u16(withdrawn.length / 2) + withdrawn + u16(attrs.length / 2) + attrs + nlri;
const upd = (attrs: string, nlri: string, withdrawn = '') => hdr(2, updBody(attrs, nlri, withdrawn));

const ORIGIN = '40010100';
const ASPATH = '4002060201' + '0000fe4c'; // AS_SEQUENCE [65100], 4-octet
const NH = '4003040a620002'; // 10.98.0.2
const OK = ORIGIN + ASPATH + NH;
const NLRI = '180ac800'; // 10.200.0.0/24

interface Case {
  name: string;
  msg: string;
  /** Expected NOTIFICATION [code, subcode]; for UPDATEs left undefined = the codec's verdict. */
  notify?: [number, number];
}

const CASES: Case[] = [
  { name: 'bad marker', msg: '00' + MARKER.slice(2) + '001304', notify: [1, 1] },
  { name: 'length below 19', msg: hdr(4, '', 18), notify: [1, 2] },
  { name: 'KEEPALIVE with a body', msg: hdr(4, '00'), notify: [1, 2] },
  { name: 'unknown message type', msg: hdr(9, ''), notify: [1, 3] },
  { name: 'OPEN in Established', msg: '', notify: [5, 3] }, // filled in beforeAll
  { name: 'truncated NLRI', msg: upd(OK, '180ac8') },
  { name: 'NLRI prefix length 33', msg: upd(OK, '210ac80000ff') },
  { name: 'ORIGIN value 7', msg: upd('40010107' + ASPATH + NH, NLRI) },
  { name: 'ORIGIN with the optional flag', msg: upd('c0010100' + ASPATH + NH, NLRI) },
  { name: 'AS_PATH segment overruns', msg: upd(ORIGIN + '40020602050000fe4c' + NH, NLRI) },
  { name: 'AS_PATH bad segment type', msg: upd(ORIGIN + '4002060901' + '0000fe4c' + NH, NLRI) },
  { name: 'missing NEXT_HOP', msg: upd(ORIGIN + ASPATH, NLRI) },
  { name: 'attribute length past the block', msg: upd('400105' + '00', NLRI) },
  { name: 'duplicate ORIGIN', msg: upd(ORIGIN + ORIGIN + ASPATH + NH, NLRI) },
  { name: 'withdrawn length past the message', msg: hdr(2, '00ff0000') },
  { name: 'attribute block length past the message', msg: hdr(2, '000000ff' + OK) },
  { name: 'NEXT_HOP length 5', msg: upd(ORIGIN + ASPATH + '4003050a62000200', NLRI) },
  { name: 'MED with the wrong length', msg: upd(OK + '800403000001', NLRI) },
];

beforeAll(async () => {
  ns = await lab.ns();
  for (let i = 1; i <= 3; i++) await ns.exec('ip', ['addr', 'add', `10.98.0.${i}/32`, 'dev', 'lo']);
  p = await PetrelProc.start(lab, ns, { routerId: '10.98.0.1', asNumber: 65001, listenAddress: '10.98.0.1' }, {
    peers: [
      { address: '10.98.0.2', asNumber: 65100, type: 'global', passive: true, holdTime: 30 },
      { address: '10.98.0.3', asNumber: 65003, type: 'global', sourceAddress: '10.98.0.1', holdTime: 9 },
    ],
  }, [{ prefix: '10.97.0.0/24' }]);
  healthy = await PetrelProc.start(lab, ns, { routerId: '10.98.0.3', asNumber: 65003, listenAddress: '10.98.0.3' }, {
    peers: [{ address: '10.98.0.1', asNumber: 65001, type: 'global', sourceAddress: '10.98.0.3', holdTime: 9 }],
  }, [{ prefix: '10.96.0.0/24' }]);
  await until('healthy session', async () => (await p.peer('10.98.0.3')).state === 'Established');
  healthySince = (await p.peer('10.98.0.3')).since;
  const open = encodeOpen({
    asn: 65100,
    holdTime: 30,
    bgpId: '10.98.0.2',
    capabilities: [
      { code: CapabilityCode.MULTIPROTOCOL, afi: 1, safi: 1 },
      { code: CapabilityCode.FOUR_OCTET_AS, asn: 65100 },
    ],
  }).toString('hex');
  CASES.find((c) => c.name === 'OPEN in Established')!.msg = open;
  (globalThis as any).__open = open;
}, 120_000);
afterAll(() => lab.cleanup(), 60_000);

/** Runs the scripted peer; `during` runs while its session is still open (~0.6 s after it sent). */
async function sendAs(peerMsgs: string[], waitMs = 1800, during?: () => Promise<void>): Promise<any> {
  const proc = ns.spawn('node', [join(ROOT, 'test/bgp/rawpeer.mjs'), '10.98.0.2', '10.98.0.1', (globalThis as any).__open, peerMsgs.join(','), String(waitMs)]);
  let out = '';
  let onSent: (() => void) | undefined;
  const sent = new Promise<void>((r) => (onSent = r));
  proc.stdout!.on('data', (d) => {
    out += d;
    if (out.includes('sent\n')) onSent!();
  });
  const exited = new Promise<void>((r) => proc.on('exit', () => r()));
  let duringResult: unknown;
  if (during) {
    await Promise.race([sent, exited]);
    if (out.includes('sent\n')) {
      await new Promise((r) => setTimeout(r, 600));
      duringResult = await during().catch((e) => e);
    }
  }
  await exited;
  if (duringResult instanceof Error) throw duringResult;
  return JSON.parse(out.trim().split('\n').pop()!);
}

describe('malformed input on a live session', () => {
  it('a valid UPDATE is installed (control)', async () => {
    let installed = false;
    const r = await sendAs([upd(OK, NLRI)], 2500, async () => {
      installed = (await p.rib()).get('10.200.0.0/24')?.nextHop === '10.98.0.2';
    });
    expect(r.established).toBe(true);
    expect(installed).toBe(true);
    expect(r.received.filter((m: any) => m.type === 3)).toEqual([]);
  });

  for (const c of CASES) {
    it(`${c.name}: the prescribed NOTIFICATION or treat-as-withdraw; other sessions untouched`, async () => {
      let expected = c.notify;
      let treatAsWithdraw = false;
      if (!expected) {
        const body = Buffer.from(c.msg, 'hex').subarray(19);
        const v = decodeUpdate(body, { fourOctetAs: true, external: true });
        if (v instanceof BgpNotification) expected = [v.code, v.subcode];
        else treatAsWithdraw = v.treatAsWithdraw;
      }
      // valid route first, then the bad message: after treat-as-withdraw the route must be gone
      let installedDuring: boolean | undefined;
      const r = await until('session with the scripted peer', async () => {
        const x = await sendAs([upd(OK, NLRI), c.msg], 1800, async () => {
          installedDuring = (await p.rib()).has('10.200.0.0/24');
        });
        return x.established ? x : undefined;
      });
      const notes = r.received.filter((m: any) => m.type === 3).map((m: any) => [m.code, m.subcode]);
      if (expected) {
        expect(notes).toEqual([expected]);
        expect(r.closed).toBe(true);
      } else {
        expect(notes).toEqual([]);
        expect(r.closed).toBe(false);
        // still connected: the valid route sent first is gone again after treat-as-withdraw
        if (treatAsWithdraw) expect(installedDuring).toBe(false);
      }
      const h = await p.peer('10.98.0.3');
      expect(h.state).toBe('Established');
      expect(h.since).toBe(healthySince);
      expect((await healthy.rib()).has('10.97.0.0/24')).toBe(true);
    });
  }
});
