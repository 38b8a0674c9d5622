// Minimal passive BGP endpoint for the codec interop test (plain JS, no codec inside: the test
// owns all encoding/decoding). Usage: node peer.mjs LISTEN_ADDR RECORD_FILE OPEN_HEX [SEND_FILE]
// Listens on LISTEN_ADDR:179, sends OPEN_HEX on connect, KEEPALIVE + the bytes of SEND_FILE after
// the peer's OPEN, records every message the peer sends after its OPEN, and after each second of
// silence rewrites RECORD_FILE and prints "idle N" (N = messages recorded). Runs until killed.
import net from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';

const [addr, recordFile, openHex, sendFile] = process.argv.slice(2);
const KEEPALIVE = Buffer.from('ffffffffffffffffffffffffffffffff001304', 'hex');
const server = net.createServer((sock) => {
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
});
server.listen(179, addr, () => console.log('listening'));
