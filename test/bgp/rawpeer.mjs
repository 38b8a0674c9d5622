// A scripted BGP peer for the malformed-input tests: connects from LOCAL to REMOTE:179, sends
// OPEN_HEX, answers the speaker's OPEN with a KEEPALIVE, and once the session is up (the
// speaker's KEEPALIVE) sends the messages in SEND_HEX (comma-separated), then records what comes
// back for WAIT_MS and prints one JSON line: { established, received: [{type, code?, subcode?}], closed }.
// Usage: node rawpeer.mjs LOCAL REMOTE OPEN_HEX SEND_HEX WAIT_MS
import net from 'node:net';

const [local, remote, openHex, sendHex, waitMs] = process.argv.slice(2);
const KEEPALIVE = Buffer.from('ffffffffffffffffffffffffffffffff001304', 'hex');
const out = { established: false, received: [], closed: false };
let buf = Buffer.alloc(0);
let gotOpen = false;
let sent = false;
const finish = () => {
  console.log(JSON.stringify(out));
  process.exit(0);
};
const sock = net.connect({ host: remote, port: 179, localAddress: local });
sock.on('connect', () => sock.write(Buffer.from(openHex, 'hex')));
sock.on('error', () => undefined);
sock.on('close', () => {
  out.closed = true;
  setTimeout(finish, 50);
});
setTimeout(finish, 15000);
sock.on('data', (chunk) => {
  buf = Buffer.concat([buf, chunk]);
  while (buf.length >= 19) {
    const len = buf.readUInt16BE(16);
    if (len < 19 || buf.length < len) break;
    const msg = buf.subarray(0, len);
    buf = buf.subarray(len);
    const type = msg[18];
    if (type === 1 && !gotOpen) {
      gotOpen = true;
      sock.write(KEEPALIVE);
      continue;
    }
    if (type === 4 && gotOpen && !sent) {
      out.established = true;
      sent = true;
      for (const h of sendHex.split(',').filter(Boolean)) sock.write(Buffer.from(h, 'hex'));
      console.log('sent');
      setTimeout(finish, Number(waitMs));
      continue;
    }
    if (sent) out.received.push(type === 3 ? { type, code: msg[19], subcode: msg[20] } : { type });
  }
});
