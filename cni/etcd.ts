// A small etcd v3 client over etcd's JSON gRPC-gateway (`/v3/kv/range`, `/v3/kv/txn`, served on
// the client port since etcd 3.3), built on node:http(s) only. The `etcd3` package pulls in
// grpc-js and protobufjs: importing it costs ~220 ms here, more than the whole budget of a CNI
// ADD, so the short-lived plugin talks JSON instead (docs/cni.md). Keep-alive reuses one socket.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';

export interface EtcdConfig {
  endpoints: string[];
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  timeoutMs?: number;
}

export interface KeyValue {
  key: string;
  value: string;
  modRevision: string;
  createRevision: string;
}

export class EtcdUnavailable extends Error {
  override name = 'EtcdUnavailable';
}

const b64 = (s: string) => Buffer.from(s).toString('base64');
const unb64 = (s: string | undefined) => (s ? Buffer.from(s, 'base64').toString() : '');

/** The key just past every key that starts with `prefix` (etcd's range_end for a prefix). */
export function prefixEnd(prefix: string): string {
  const b = Buffer.from(prefix);
  for (let i = b.length - 1; i >= 0; i--) {
    if (b[i] < 0xff) {
      const out = Buffer.from(b.subarray(0, i + 1));
      out[i]++;
      return out.toString('latin1');
    }
  }
  return '\0';
}

export class EtcdJson {
  private readonly agents: (http.Agent | https.Agent)[];
  private current = 0;

  constructor(private readonly cfg: EtcdConfig) {
    if (!cfg.endpoints.length) throw new Error('no etcd endpoints configured');
    this.agents = cfg.endpoints.map((e) =>
      e.startsWith('https:')
        ? new https.Agent({
            keepAlive: true,
            ca: cfg.caFile ? readFileSync(cfg.caFile) : undefined,
            cert: cfg.certFile ? readFileSync(cfg.certFile) : undefined,
            key: cfg.keyFile ? readFileSync(cfg.keyFile) : undefined,
          })
        : new http.Agent({ keepAlive: true }),
    );
  }

  private async call(path: string, body: unknown): Promise<any> {
    const data = JSON.stringify(body);
    let lastErr: unknown;
    for (let i = 0; i < this.cfg.endpoints.length; i++) {
      const idx = (this.current + i) % this.cfg.endpoints.length;
      const url = new URL(path, this.cfg.endpoints[idx].replace(/\/+$/, '') + '/');
      try {
        const res = await new Promise<{ status: number; text: string }>((resolve, reject) => {
          const mod = url.protocol === 'https:' ? https : http;
          const req = mod.request(
            url,
            {
              method: 'POST',
              agent: this.agents[idx] as any,
              headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) },
              timeout: this.cfg.timeoutMs ?? 10_000,
            },
            (r) => {
              let text = '';
              r.setEncoding('utf8');
              r.on('data', (d) => (text += d));
              r.on('end', () => resolve({ status: r.statusCode ?? 0, text }));
              r.on('error', reject);
            },
          );
          req.on('timeout', () => req.destroy(new Error('timed out')));
          req.on('error', reject);
          req.end(data);
        });
        if (res.status !== 200) {
          let msg = res.text;
          try {
            msg = JSON.parse(res.text).error ?? JSON.parse(res.text).message ?? msg;
          } catch {
            /* keep text */
          }
          throw new Error(`etcd ${path}: HTTP ${res.status}: ${msg}`);
        }
        this.current = idx;
        return JSON.parse(res.text);
      } catch (e) {
        lastErr = e;
        if (e instanceof Error && /HTTP [45]\d\d/.test(e.message) && !/HTTP 503/.test(e.message)) throw e;
      }
    }
    throw new EtcdUnavailable(`etcd unreachable at ${this.cfg.endpoints.join(',')}: ${(lastErr as Error)?.message ?? lastErr}`);
  }

  private static kv(k: any): KeyValue {
    return { key: unb64(k.key), value: unb64(k.value), modRevision: String(k.mod_revision ?? '0'), createRevision: String(k.create_revision ?? '0') };
  }

  async get(key: string): Promise<KeyValue | undefined> {
    const r = await this.call('v3/kv/range', { key: b64(key) });
    return r.kvs?.length ? EtcdJson.kv(r.kvs[0]) : undefined;
  }

  async list(prefix: string): Promise<KeyValue[]> {
    const r = await this.call('v3/kv/range', { key: b64(prefix), range_end: Buffer.from(prefixEnd(prefix), 'latin1').toString('base64') });
    return (r.kvs ?? []).map(EtcdJson.kv);
  }

  /** Puts only when the key does not exist; returns the new mod revision or undefined on conflict. */
  async create(key: string, value: string): Promise<string | undefined> {
    const r = await this.call('v3/kv/txn', {
      compare: [{ key: b64(key), target: 'CREATE', result: 'EQUAL', create_revision: '0' }],
      success: [{ request_put: { key: b64(key), value: b64(value) } }],
    });
    return r.succeeded ? String(r.header?.revision) : undefined;
  }

  /** Puts only when the key's mod revision is `rev`; returns the new revision or undefined on conflict. */
  async update(key: string, value: string, rev: string): Promise<string | undefined> {
    const r = await this.call('v3/kv/txn', {
      compare: [{ key: b64(key), target: 'MOD', result: 'EQUAL', mod_revision: rev }],
      success: [{ request_put: { key: b64(key), value: b64(value) } }],
    });
    return r.succeeded ? String(r.header?.revision) : undefined;
  }

  /** Deletes only at revision `rev` (true) — or, without `rev`, unconditionally. */
  async delete(key: string, rev?: string): Promise<boolean> {
    if (rev === undefined) {
      await this.call('v3/kv/deleterange', { key: b64(key) });
      return true;
    }
    const r = await this.call('v3/kv/txn', {
      compare: [{ key: b64(key), target: 'MOD', result: 'EQUAL', mod_revision: rev }],
      success: [{ request_delete_range: { key: b64(key) } }],
    });
    return !!r.succeeded;
  }

  /** Several reads in one request (a transaction of ranges): one round trip, one socket. */
  async getMany(reads: { key: string; prefix?: boolean }[]): Promise<KeyValue[][]> {
    const r = await this.call('v3/kv/txn', {
      compare: [],
      success: reads.map((x) => ({
        request_range: x.prefix ? { key: b64(x.key), range_end: Buffer.from(prefixEnd(x.key), 'latin1').toString('base64') } : { key: b64(x.key) },
      })),
    });
    return (r.responses ?? []).map((x: any) => (x.response_range?.kvs ?? []).map(EtcdJson.kv));
  }

  /**
   * Writes several keys atomically if each compare holds (`rev` '0' = must not exist);
   * returns the new revision or undefined on conflict.
   */
  async putIf(writes: { key: string; value: string; rev: string }[]): Promise<string | undefined> {
    const r = await this.call('v3/kv/txn', {
      compare: writes.map((w) =>
        w.rev === '0'
          ? { key: b64(w.key), target: 'CREATE', result: 'EQUAL', create_revision: '0' }
          : { key: b64(w.key), target: 'MOD', result: 'EQUAL', mod_revision: w.rev },
      ),
      success: writes.map((w) => ({ request_put: { key: b64(w.key), value: b64(w.value) } })),
    });
    return r.succeeded ? String(r.header?.revision) : undefined;
  }

  /** Puts and deletes atomically if every key still has its revision; undefined on conflict. */
  async txnIf(compare: { key: string; rev: string }[], puts: { key: string; value: string }[], deletes: string[]): Promise<string | undefined> {
    const r = await this.call('v3/kv/txn', {
      compare: compare.map((c) => ({ key: b64(c.key), target: 'MOD', result: 'EQUAL', mod_revision: c.rev })),
      success: [
        ...puts.map((p) => ({ request_put: { key: b64(p.key), value: b64(p.value) } })),
        ...deletes.map((k) => ({ request_delete_range: { key: b64(k) } })),
      ],
    });
    return r.succeeded ? String(r.header?.revision) : undefined;
  }

  async put(key: string, value: string): Promise<string> {
    const r = await this.call('v3/kv/put', { key: b64(key), value: b64(value) });
    return String(r.header?.revision);
  }

  close(): void {
    for (const a of this.agents) a.destroy();
  }
}
