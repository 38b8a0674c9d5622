// Minimal BGP endpoint for the codec interop test (plain JS, no codec inside: the test owns all
// encoding/decoding). Usage: node peer.mjs ADDR RECORD_FILE OPEN_HEX [SEND_FILE]
// Listens on ADDR:179 (or, with ADDR = connect:REMOTE, connects to REMOTE:179, retrying), sends OPEN_HEX on connect, KEEPALIVE + the bytes of SEND_FILE after
// the peer's OPEN, records every message the peer sends (its OPEN included), and after each second of
// silence rewrites RECORD_FILE and prints "idle N" (N = messages recorded). Runs until killed.
import net from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';

const [addr, recordFile, openHex, sendFile] = process.argv.slice(2);
const KEEPALIVE = Buffer.from('ffffffffffffffffffffffffffffffff001304', 'hex');
function handle(sock) {
  let buf = Buffer.alloc(0);
  let gotOpen = false;
  const recorded = [];
  let idle;
  sock.write(Buffer.from(openHex, 'hex'));
  setInterval(() => sock.write(KEEPALIVE), 20000).unref();
  sock.on('data', (chunk) => {
    buf = Buffer.concat([buf, chunk]);
    while (buf.length >= 19) {
      const len = buf.readUInt16BE(16);
      if (len < 19 || buf.length < len) break;
      const msg = buf.subarray(0, len);
      buf = buf.subarray(len);
      if (!gotOpen && msg[18] === 1) {
        gotOpen = true;
        recorded.push(Buffer.from(msg));
        sock.write(KEEPALIVE);
        if (sendFile) sock.write(readFileSync(sendFile));
        continue;
      }
      recorded.push(Buffer.from(msg));
    }
    clearTimeout(idle);
    idle = setTimeout(() => {
      writeFileSync(recordFile, Buffer.concat(recorded));
      console.log(`idle ${recorded.length}`);
    }, 1000);
  });
  sock.on('error', () => undefined);
}
if (addr.startsWith('connect:')) {
  const remote = addr.slice(8);
  console.log('listening'); // ready to go (active mode)
  const attempt = () => {
    const sock = net.connect(179, remote);
    sock.once('connect', () => handle(sock));
    sock.once('error', () => setTimeout(attempt, 200));
  };
  attempt();
} else {
  net.createServer(handle).listen(179, addr, () => console.log('listening'));
}
