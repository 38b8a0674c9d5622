// A pod's test process: serves TCP and UDP on the given ports (replying "ok") and probes
// other pods on request. Protocol on stdin/stdout: JSON lines
//   in:  {"id": 1, "host": "10.65.0.12", "port": 80, "proto": "tcp", "timeoutMs": 500}
//   out: {"id": 1, "ok": true}
// Usage: node probe.js <tcp ports,comma> <udp ports,comma>
import { createSocket } from 'node:dgram';
import { connect, createServer } from 'node:net';
import { createInterface } from 'node:readline';

const [tcpArg = '', udpArg = ''] = process.argv.slice(2);
const tcpPorts = tcpArg.split(',').filter(Boolean).map(Number);
const udpPorts = udpArg.split(',').filter(Boolean).map(Number);

let listening = 0;
const ready = () => {
  if (++listening === tcpPorts.length + udpPorts.length) process.stdout.write(JSON.stringify({ ready: true }) + '\n');
};
for (const port of tcpPorts) {
  createServer((s) => {
    s.on('error', () => undefined);
    s.end('ok\n');
  }).listen({ port, host: '::', ipv6Only: false }, ready);
}
for (const port of udpPorts) {
  const u = createSocket({ type: 'udp6', ipv6Only: false });
  u.on('message', (_m, rinfo) => u.send('ok', rinfo.port, rinfo.address));
  u.bind(port, '::', ready);
}
if (tcpPorts.length + udpPorts.length === 0) ready();

function probeTcp(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    let done = false;
    const finish = (ok: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(t);
      s.destroy();
      resolve(ok);
    };
    const t = setTimeout(() => finish(false), timeoutMs);
    s.on('data', (d) => finish(d.toString().startsWith('ok')));
    s.on('error', () => finish(false));
    s.on('close', () => finish(false));
  });
}

// UDP source ports, one per probe, in turn from a range below the kernel's ephemeral ports
// (32768-60999). Not bind(0): its port is random, so a probe can get the port of an earlier
// probe to the same pod, and while that flow's conntrack entry lives (30 s after a reply) the
// node's `--ctstate ESTABLISHED -j ACCEPT` lets the new probe through whatever the policy now
// says. Seen as "dev/client -> prod/db udp/80: expected denied, got allowed" under load. Taken
// in turn, a port comes back only after UDP_PORTS.count probes from this pod (minutes here).
const UDP_PORTS = { first: 20000, count: 12768 };
let udpNext = 0;

function probeUdp(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const u = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    let done = false;
    let bound = false;
    let tries = 0;
    const finish = (ok: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(t);
      u.close();
      resolve(ok);
    };
    const t = setTimeout(() => finish(false), timeoutMs);
    const bind = () => u.bind(UDP_PORTS.first + (udpNext++ % UDP_PORTS.count));
    u.once('listening', () => ((bound = true), u.send('ping', port, host)));
    u.on('message', (m) => finish(m.toString() === 'ok'));
    // The port held by something else (never by this pod's other probes: each has its own): the next one.
    u.on('error', (e: NodeJS.ErrnoException) => (!bound && e.code === 'EADDRINUSE' && ++tries < 16 ? bind() : finish(false)));
    bind();
  });
}

createInterface({ input: process.stdin }).on('line', (line) => {
  let req: { id: number; host: string; port: number; proto: 'tcp' | 'udp'; timeoutMs?: number };
  try {
    req = JSON.parse(line);
  } catch {
    return;
  }
  const p = req.proto === 'udp' ? probeUdp(req.host, req.port, req.timeoutMs ?? 500) : probeTcp(req.host, req.port, req.timeoutMs ?? 500);
  void p.then((ok) => process.stdout.write(JSON.stringify({ id: req.id, ok }) + '\n'));
});
