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

function probeUdp(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const u = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    let done = false;
    const finish = (ok: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(t);
      u.close();
      resolve(ok);
    };
    const t = setTimeout(() => finish(false), timeoutMs);
    u.on('message', (m) => finish(m.toString() === 'ok'));
    u.on('error', () => finish(false));
    // A fresh source port per probe: a new conntrack flow every time.
    u.bind(0, () => u.send('ping', port, host));
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
