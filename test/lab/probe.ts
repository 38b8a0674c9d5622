// A tiny TCP+UDP echo server and prober, run inside pod namespaces by the lab and e2e tests.
//   node probe.js serve PORT              echo on TCP and UDP PORT until killed
//   node probe.js check PORT MS IP...     prints {"<ip>": {"tcp": bool, "udp": bool}} as JSON
import { createSocket } from 'node:dgram';
import { createServer, connect } from 'node:net';

function serve(port: number): void {
  createServer((s) => s.pipe(s)).listen(port, '0.0.0.0');
  const u = createSocket('udp4');
  u.on('message', (msg, rinfo) => u.send(msg, rinfo.port, rinfo.address));
  u.bind(port, '0.0.0.0');
}

function tcp(ip: string, port: number, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: ip, port });
    const done = (ok: boolean) => {
      clearTimeout(t);
      s.destroy();
      resolve(ok);
    };
    const t = setTimeout(() => done(false), ms);
    s.on('connect', () => s.write('petrel'));
    s.on('data', (d) => done(d.toString() === 'petrel'));
    s.on('error', () => done(false));
  });
}

function udp(ip: string, port: number, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const u = createSocket('udp4');
    let tries = 0;
    const done = (ok: boolean) => {
      clearTimeout(t);
      clearInterval(resend);
      u.close();
      resolve(ok);
    };
    const t = setTimeout(() => done(false), ms);
    u.on('message', (m) => done(m.toString() === 'petrel'));
    u.on('error', () => done(false));
    const send = () => tries++ < 5 && u.send('petrel', port, ip);
    send();
    const resend = setInterval(send, Math.max(50, ms / 5));
  });
}

const [mode, portArg, ...rest] = process.argv.slice(2);
const port = Number(portArg);
if (mode === 'serve') {
  serve(port);
} else if (mode === 'check') {
  const [msArg, ...ips] = rest;
  const ms = Number(msArg);
  const results = await Promise.all(ips.map(async (ip) => [ip, { tcp: await tcp(ip, port, ms), udp: await udp(ip, port, ms) }] as const));
  process.stdout.write(JSON.stringify(Object.fromEntries(results)));
} else {
  console.error('usage: probe.js serve PORT | check PORT MS IP...');
  process.exit(2);
}
