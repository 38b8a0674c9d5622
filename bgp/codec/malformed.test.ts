// The malformed-input table: every row is a wire message and the outcome RFC 4271 / RFC 7606 /
// RFC 4760 / RFC 6793 / RFC 7313 prescribe for it.
import { describe, expect, it } from 'vitest';
import {
  BgpNotification,
  ErrorAction,
  MessageReader,
  decodeMessage,
  encodeOpen,
  type CodecContext,
  type Message,
  type UpdateMessage,
} from './index.js';
import { A, CTX4, MALFORMED_CASES as rows, wire } from './malformed-cases.js';

const b = (...x: number[]): Buffer => Buffer.from(x);
const updBody = (attrs: Buffer[], nlri: Buffer): Buffer => {
  const a = Buffer.concat(attrs);
  return Buffer.concat([b(0, 0, a.length >> 8, a.length & 255), a, nlri]);
};
const NLRI = b(24, 10, 1, 2);
const BASE = [A(0x40, 1, [0]), A(0x40, 2, [2, 1, 0, 0, 0xfd, 0xe9]), A(0x40, 3, [10, 0, 0, 1])];
const upd = (attrs: Buffer[]): Buffer => wire(2, updBody(attrs, NLRI));

function run(msg: Buffer, ctx: CodecContext): Message | BgpNotification {
  const r = new MessageReader();
  r.push(msg);
  const raw = r.next();
  if (raw === null) throw new Error('reader wants more data');
  if (raw instanceof BgpNotification) return raw;
  return decodeMessage(raw, ctx);
}

describe('malformed message table', () => {
  it('has at least 40 rows', () => {
    expect(rows.length).toBeGreaterThanOrEqual(40);
  });
  for (const row of rows) {
    it(row.name, () => {
      const out = run(row.msg, row.ctx ?? CTX4);
      const e = row.expect;
      if ('notify' in e) {
        expect(out).toBeInstanceOf(BgpNotification);
        const n = out as BgpNotification;
        expect([n.code, n.subcode], n.reason).toEqual([e.notify[0], e.notify[1]]);
        if (e.notify[2] !== undefined) expect(n.data.toString('hex')).toBe(e.notify[2]);
        expect(n.reason.length).toBeGreaterThan(0);
        return;
      }
      if (out instanceof BgpNotification) throw new Error(`unexpected NOTIFICATION ${out.toString()}`);
      if (out.type !== 2) {
        expect('ok' in e).toBe(true);
        return;
      }
      const u = out as UpdateMessage;
      if ('twa' in e) {
        expect(u.treatAsWithdraw).toBe(true);
        expect(u.attrs).toBeNull();
        expect(u.problems.some((p) => p.action === ErrorAction.TREAT_AS_WITHDRAW)).toBe(true);
        expect(u.nlri.length + (u.mpReach?.nlri.length ?? 0)).toBeGreaterThan(0);
      } else if ('discard' in e) {
        expect(u.treatAsWithdraw).toBe(false);
        expect(u.problems).toContainEqual(expect.objectContaining({ action: ErrorAction.ATTRIBUTE_DISCARD, attrType: e.discard }));
        expect(u.attrs).not.toBeNull();
        expect(u.nlri.length + (u.mpReach?.nlri.length ?? 0)).toBeGreaterThan(0);
      } else {
        expect(u.treatAsWithdraw).toBe(false);
        expect(u.problems).toEqual([]);
      }
    });
  }

  it('duplicate attribute: the first occurrence wins', () => {
    const u = run(upd([...BASE, A(0x40, 1, [2])]), CTX4) as UpdateMessage;
    expect(u.attrs!.origin).toBe(0);
  });
  it('discarded AGGREGATOR leaves the rest of the attributes', () => {
    const u = run(upd([...BASE, A(0xc0, 7, [0, 0, 1, 10, 0])]), CTX4) as UpdateMessage;
    expect(u.attrs!.aggregator).toBeUndefined();
    expect(u.attrs!.nextHop).toBe('10.0.0.1');
  });
  it('a well-formed OPEN from encodeOpen passes the same path', () => {
    const out = run(encodeOpen({ asn: 65001, holdTime: 90, bgpId: '10.0.0.1', capabilities: [] }), CTX4);
    expect(out).not.toBeInstanceOf(BgpNotification);
  });
});
