// Helper for bench/bgp-decode --bird (not a benchmark itself: the leading '_' hides it from
// bench/run.ts). Runs inside a network namespace: listens on ADDR:179 as AS 65002, completes the
// OPEN exchange with the connecting peer, records every message the peer sends after its OPEN
// (raw wire bytes) until End-of-RIB or EXPECTED prefixes, writes them to OUT and prints a JSON
// summary on stdout.
import net from 'node:net';
import { writeFileSync } from 'node:fs';
import {
  BgpNotification,
  CapabilityCode,
  MessageReader,
  MessageType,
  decodeMessage,
  encodeKeepalive,
  encodeOpen,
  type UpdateMessage,
} from '../bgp/codec/index.js';

const [addr, out, expectedText] = process.argv.slice(2);
const expected = Number(expectedText ?? 100000);
const server = net.createServer((sock) => {
  const reader = new MessageReader();
  const ctx = { fourOctetAs: true };
  const recorded: Buffer[] = [];
  let gotOpen = false;
  let prefixes = 0;
  let updates = 0;
  let t0 = 0n;
  sock.write(
    encodeOpen({
      asn: 65002,
      holdTime: 90,
      bgpId: addr!,
      capabilities: [
        { code: CapabilityCode.MULTIPROTOCOL, afi: 1, safi: 1 },
        { code: CapabilityCode.ROUTE_REFRESH },
        { code: CapabilityCode.FOUR_OCTET_AS, asn: 65002 },
        { code: CapabilityCode.GRACEFUL_RESTART, restarting: false, notification: false, restartTime: 120, families: [{ afi: 1, safi: 1, forwardingState: false }] },
      ],
    }),
  );
  const ka = setInterval(() => sock.write(encodeKeepalive()), 20_000);
  const done = (why: string): void => {
    clearInterval(ka);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    const data = Buffer.concat(recorded);
    writeFileSync(out!, data);
    console.log(JSON.stringify({ done: why, prefixes, updates, bytes: data.length, ms }));
    sock.destroy();
    server.close();
    process.exit(0);
  };
  sock.on('data', (chunk: Buffer) => {
    reader.push(chunk);
    for (let r = reader.next(); r !== null; r = reader.next()) {
      if (r instanceof BgpNotification) {
        console.error(`framing error ${r.toString()}`);
        process.exit(2);
      }
      if (!gotOpen) {
        if (r.type === MessageType.OPEN) {
          gotOpen = true;
          t0 = process.hrtime.bigint();
          sock.write(encodeKeepalive());
        }
        continue;
      }
      recorded.push(Buffer.from(r.raw));
      if (r.type !== MessageType.UPDATE) continue;
      const u = decodeMessage(r, ctx);
      if (u instanceof BgpNotification) {
        console.error(`decode error ${u.toString()}`);
        process.exit(3);
      }
      updates++;
      prefixes += (u as UpdateMessage).nlri.length;
      if ((u as UpdateMessage).endOfRib) return done('end-of-rib');
      if (prefixes >= expected) return done('count');
    }
  });
  sock.on('error', (e) => {
    console.error(`socket error ${e.message}`);
    process.exit(4);
  });
});
server.listen(179, addr, () => console.log('listening'));
