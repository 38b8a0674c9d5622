// Where the managers act: the network namespace this process lives in (production: the node's
// host namespace), or another namespace reached through a tiny broker child started under
// `ip netns exec` (tests, the lab). The broker only opens netlink sockets in its namespace and
// relays raw datagrams and /proc/sys reads/writes; every byte of logic stays in this process.
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { RawNetlinkSocket } from 'netlink';

/** One raw rtnetlink socket: datagrams in, datagrams out. Emits 'message' (Buffer) and 'error'. */
export interface NlChannel extends EventEmitter {
  send(buf: Buffer): void;
  /** joins (true) or leaves multicast groups */
  membership(groups: number[], on: boolean): void;
  /** the socket's receive buffer in bytes (SO_RCVBUF as the kernel granted it) */
  readonly recvBufferSize: number;
  close(): void;
}

export interface NetHost {
  /** `host` or the namespace name. */
  readonly name: string;
  openNetlink(opts?: { groups?: number[]; rcvbuf?: number }): Promise<NlChannel>;
  /** Writes a /proc/sys file (path relative to /proc/sys, e.g. `net/ipv4/conf/x/proxy_arp`). */
  writeSysctl(path: string, value: string): Promise<void>;
  /** Reads one; undefined when it does not exist. */
  readSysctl(path: string): Promise<string | undefined>;
  close(): Promise<void>;
}

const NETLINK_ROUTE = 0;

class LocalChannel extends EventEmitter implements NlChannel {
  private readonly sock: RawNetlinkSocket;
  readonly recvBufferSize: number;
  constructor(opts: { groups?: number[]; rcvbuf?: number }) {
    super();
    this.sock = new RawNetlinkSocket(NETLINK_ROUTE, {
      recvBufferSize: opts.rcvbuf ?? 4 * 1024 * 1024,
      sendBufferSize: 4 * 1024 * 1024,
    });
    for (const g of opts.groups ?? []) this.sock.addMembership(g);
    this.recvBufferSize = this.sock.getRecvBufferSize();
    // Never let a handler's exception reach the native layer (it would abort the process).
    const safe =
      <A extends unknown[]>(f: (...a: A) => void) =>
      (...a: A) => {
        try {
          f(...a);
        } catch (e) {
          process.emitWarning(`netlink handler failed: ${(e as Error)?.stack ?? e}`);
        }
      };
    this.sock.on('message', safe((m: Buffer) => this.emit('message', m)));
    this.sock.on('truncatedMessage', safe(() => this.emit('error', Object.assign(new Error('truncated netlink message'), { code: 'ETRUNC' }))));
    this.sock.on('error', safe((e: Error) => this.emit('error', e)));
    // Only pending requests keep the process alive, never the socket itself.
    this.sock.unref();
  }
  membership(groups: number[], on: boolean): void {
    for (const g of groups) {
      try {
        if (on) this.sock.addMembership(g);
        else this.sock.dropMembership(g);
      } catch {
        /* not a member / already a member */
      }
    }
  }
  send(buf: Buffer): void {
    this.sock.send(buf, {}, (err) => {
      try {
        if (err) this.emit('error', err);
      } catch (e) {
        process.emitWarning(`netlink send callback failed: ${(e as Error)?.stack ?? e}`);
      }
    });
  }
  close(): void {
    try {
      this.sock.close();
    } catch {
      /* already closed */
    }
  }
}

/** The namespace this process runs in. */
export class LocalHost implements NetHost {
  readonly name = 'host';
  async openNetlink(opts: { groups?: number[]; rcvbuf?: number } = {}): Promise<NlChannel> {
    return new LocalChannel(opts);
  }
  async writeSysctl(path: string, value: string): Promise<void> {
    await writeFile(`/proc/sys/${path}`, value);
  }
  async readSysctl(path: string): Promise<string | undefined> {
    try {
      return (await readFile(`/proc/sys/${path}`, 'utf8')).trim();
    } catch {
      return undefined;
    }
  }
  async close(): Promise<void> {}
}

// Frames on the broker's stdio: u32 length (of what follows), u8 op, u32 id, payload.
const OP_OPEN = 1;
const OP_SEND = 2;
const OP_CLOSE = 3;
const OP_SYSCTL_W = 4;
const OP_SYSCTL_R = 5;
const OP_MEMBERSHIP = 6;
const OP_MSG = 10;
const OP_ERR = 11;
const OP_RESULT = 12;

const BROKER = String.raw`
const { RawNetlinkSocket } = require(process.argv[1]);
const fs = require('fs');
const socks = new Map();
function frame(op, id, payload) {
  const h = Buffer.alloc(9);
  h.writeUInt32LE(5 + payload.length, 0); h[4] = op; h.writeUInt32LE(id, 5);
  process.stdout.write(Buffer.concat([h, payload]));
}
const json = (o) => Buffer.from(JSON.stringify(o));
function handle(op, id, p) {
  try {
    if (op === 1) {
      const o = JSON.parse(p.toString());
      const s = new RawNetlinkSocket(0, { recvBufferSize: o.rcvbuf || 4194304, sendBufferSize: 4194304 });
      for (const g of o.groups || []) s.addMembership(g);
      s.on('message', (m) => frame(10, id, m));
      s.on('error', (e) => frame(11, id, json({ code: e.code, errno: e.errno, message: e.message })));
      socks.set(id, s);
      frame(12, id, json({ ok: true, value: String(s.getRecvBufferSize()) }));
    } else if (op === 2) {
      const s = socks.get(id);
      if (s) s.send(p, {}, (e) => { if (e) frame(11, id, json({ code: e.code, errno: e.errno, message: e.message })); });
    } else if (op === 3) {
      const s = socks.get(id); if (s) { s.close(); socks.delete(id); }
    } else if (op === 6) {
      const s = socks.get(id); const o = JSON.parse(p.toString());
      for (const g of o.groups) { try { o.on ? s.addMembership(g) : s.dropMembership(g); } catch (e) {} }
    } else if (op === 4) {
      const o = JSON.parse(p.toString());
      try { fs.writeFileSync('/proc/sys/' + o.path, o.value); frame(12, id, json({ ok: true })); }
      catch (e) { frame(12, id, json({ ok: false, error: e.message })); }
    } else if (op === 5) {
      const o = JSON.parse(p.toString());
      try { frame(12, id, json({ ok: true, value: fs.readFileSync('/proc/sys/' + o.path, 'utf8').trim() })); }
      catch (e) { frame(12, id, json({ ok: true })); }
    }
  } catch (e) { frame(12, id, json({ ok: false, error: e.message })); }
}
let acc = Buffer.alloc(0);
process.stdin.on('data', (d) => {
  acc = acc.length ? Buffer.concat([acc, d]) : d;
  while (acc.length >= 4) {
    const len = acc.readUInt32LE(0);
    if (acc.length < 4 + len) break;
    const op = acc[4], id = acc.readUInt32LE(5), p = acc.subarray(9, 4 + len);
    acc = acc.subarray(4 + len);
    handle(op, id, p);
  }
});
process.stdin.on('end', () => process.exit(0));
`;

class BrokerChannel extends EventEmitter implements NlChannel {
  recvBufferSize = 212992;
  constructor(
    private readonly host: NetnsHost,
    readonly id: number,
  ) {
    super();
  }
  send(buf: Buffer): void {
    this.host.frame(OP_SEND, this.id, buf);
  }
  membership(groups: number[], on: boolean): void {
    this.host.frame(OP_MEMBERSHIP, this.id, Buffer.from(JSON.stringify({ groups, on })));
  }
  close(): void {
    this.host.frame(OP_CLOSE, this.id, Buffer.alloc(0));
    this.host.channels.delete(this.id);
  }
}

/** Acts inside network namespace `ns` through a broker child (`ip netns exec ns node -e ...`). */
export class NetnsHost implements NetHost {
  readonly channels = new Map<number, BrokerChannel>();
  private readonly waiting = new Map<number, (r: { ok: boolean; value?: string; error?: string }) => void>();
  private readonly child: ChildProcess;
  private nextId = 1;
  private acc: Buffer = Buffer.alloc(0);
  private exited = false;

  constructor(readonly name: string) {
    const netlinkPath = createRequire(import.meta.url).resolve('netlink');
    this.child = spawn('ip', ['netns', 'exec', name, process.execPath, '-e', BROKER, netlinkPath], { stdio: ['pipe', 'pipe', 'inherit'] });
    this.child.stdout!.on('data', (d: Buffer) => this.onData(d));
    this.child.on('exit', () => {
      this.exited = true;
      for (const [, w] of this.waiting) w({ ok: false, error: `netns broker for ${name} exited` });
      this.waiting.clear();
    });
    this.child.stdin!.on('error', () => undefined);
  }

  frame(op: number, id: number, payload: Buffer): void {
    if (this.exited) return;
    const h = Buffer.allocUnsafe(9);
    h.writeUInt32LE(5 + payload.length, 0);
    h[4] = op;
    h.writeUInt32LE(id, 5);
    this.child.stdin!.write(h);
    if (payload.length) this.child.stdin!.write(Buffer.from(payload));
  }

  private onData(d: Buffer): void {
    this.acc = this.acc.length ? Buffer.concat([this.acc, d]) : d;
    while (this.acc.length >= 4) {
      const len = this.acc.readUInt32LE(0);
      if (this.acc.length < 4 + len) break;
      const op = this.acc[4];
      const id = this.acc.readUInt32LE(5);
      const p = Buffer.from(this.acc.subarray(9, 4 + len));
      this.acc = this.acc.subarray(4 + len);
      try {
        if (op === OP_MSG) this.channels.get(id)?.emit('message', p);
        else if (op === OP_ERR) {
          const e = JSON.parse(p.toString());
          this.channels.get(id)?.emit('error', Object.assign(new Error(e.message), { code: e.code, errno: e.errno }));
        } else if (op === OP_RESULT) {
          const w = this.waiting.get(id);
          this.waiting.delete(id);
          w?.(JSON.parse(p.toString()));
        }
      } catch (e) {
        process.emitWarning(`netns broker message handler failed: ${(e as Error)?.stack ?? e}`);
      }
    }
  }

  private call(op: number, id: number, payload: object): Promise<{ ok: boolean; value?: string; error?: string }> {
    if (this.exited) return Promise.resolve({ ok: false, error: `netns broker for ${this.name} exited` });
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.frame(op, id, Buffer.from(JSON.stringify(payload)));
    });
  }

  async openNetlink(opts: { groups?: number[]; rcvbuf?: number } = {}): Promise<NlChannel> {
    const id = this.nextId++;
    const ch = new BrokerChannel(this, id);
    this.channels.set(id, ch);
    const r = await this.call(OP_OPEN, id, opts);
    if (!r.ok) throw new Error(`netlink socket in ${this.name}: ${r.error}`);
    if (r.value) ch.recvBufferSize = Number(r.value);
    return ch;
  }

  async writeSysctl(path: string, value: string): Promise<void> {
    const r = await this.call(OP_SYSCTL_W, this.nextId++, { path, value });
    if (!r.ok) throw new Error(`write /proc/sys/${path}: ${r.error}`);
  }

  async readSysctl(path: string): Promise<string | undefined> {
    const r = await this.call(OP_SYSCTL_R, this.nextId++, { path });
    return r.value;
  }

  async close(): Promise<void> {
    if (this.exited) return;
    const done = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.stdin!.end();
    const t = setTimeout(() => this.child.kill('SIGKILL'), 2000);
    await done;
    clearTimeout(t);
  }
}
