// A minimal Kubernetes REST client for the short-lived plugin (kubeconfig or in-cluster service
// account; bearer token or client certificate), on node:https with keep-alive. The full
// @kubernetes/client-node costs far more start-up time than a CNI call can spend.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { PodInfo } from './backend.js';

export class K8sUnavailable extends Error {
  override name = 'K8sUnavailable';
}

export class K8sHttpError extends Error {
  override name = 'K8sHttpError';
  constructor(
    readonly status: number,
    msg: string,
  ) {
    super(msg);
  }
}

interface Conn {
  server: string;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  token?: string;
  insecure?: boolean;
}

function b64OrFile(data: unknown, file: unknown): Buffer | undefined {
  if (typeof data === 'string' && data) return Buffer.from(data, 'base64');
  if (typeof file === 'string' && file) return readFileSync(file);
  return undefined;
}

export class K8sClient {
  private readonly agent: http.Agent;

  constructor(private readonly conn: Conn) {
    this.agent = conn.server.startsWith('https:')
      ? new https.Agent({ keepAlive: true, ca: conn.ca, cert: conn.cert, key: conn.key, rejectUnauthorized: !conn.insecure })
      : new http.Agent({ keepAlive: true });
  }

  /** From a kubeconfig file (current context), else the in-cluster service account. */
  static async fromKubeconfig(path: string | undefined): Promise<K8sClient> {
    if (!path) {
      const sa = '/var/run/secrets/kubernetes.io/serviceaccount';
      const host = process.env.KUBERNETES_SERVICE_HOST;
      if (!host) throw new K8sUnavailable('no kubeconfig configured and not running in a cluster');
      return new K8sClient({
        server: `https://${host.includes(':') ? `[${host}]` : host}:${process.env.KUBERNETES_SERVICE_PORT ?? 443}`,
        ca: readFileSync(`${sa}/ca.crt`),
        token: readFileSync(`${sa}/token`, 'utf8').trim(),
      });
    }
    const text = readFileSync(path, 'utf8');
    // kubeconfigs are YAML; most written by tools are also plain JSON-compatible YAML.
    let kc: any;
    try {
      kc = JSON.parse(text);
    } catch {
      kc = (await import('yaml')).parse(text);
    }
    const ctxName = kc['current-context'];
    const ctx = (kc.contexts ?? []).find((c: any) => c.name === ctxName)?.context ?? kc.contexts?.[0]?.context ?? {};
    const cluster = (kc.clusters ?? []).find((c: any) => c.name === ctx.cluster)?.cluster ?? kc.clusters?.[0]?.cluster;
    const user = (kc.users ?? []).find((u: any) => u.name === ctx.user)?.user ?? kc.users?.[0]?.user ?? {};
    if (!cluster?.server) throw new K8sUnavailable(`kubeconfig ${path} names no cluster server`);
    return new K8sClient({
      server: cluster.server,
      ca: b64OrFile(cluster['certificate-authority-data'], cluster['certificate-authority']),
      cert: b64OrFile(user['client-certificate-data'], user['client-certificate']),
      key: b64OrFile(user['client-key-data'], user['client-key']),
      token: user.token ?? (user.tokenFile ? readFileSync(user.tokenFile, 'utf8').trim() : undefined),
      insecure: cluster['insecure-skip-tls-verify'] === true,
    });
  }

  async request(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<{ status: number; body: any }> {
    const url = new URL(path, this.conn.server);
    const data = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string | number> = { accept: 'application/json' };
    if (this.conn.token) headers.authorization = `Bearer ${this.conn.token}`;
    if (data !== undefined) {
      headers['content-type'] = contentType;
      headers['content-length'] = Buffer.byteLength(data);
    }
    const res = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const mod = url.protocol === 'https:' ? https : http;
      const req = mod.request(url, { method, agent: this.agent as any, headers, timeout: 15_000 }, (r) => {
        let text = '';
        r.setEncoding('utf8');
        r.on('data', (d) => (text += d));
        r.on('end', () => resolve({ status: r.statusCode ?? 0, text }));
        r.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error('timed out')));
      req.on('error', (e) => reject(new K8sUnavailable(`Kubernetes API ${this.conn.server} unreachable: ${e.message}`)));
      if (data !== undefined) req.write(data);
      req.end();
    });
    let parsed: any;
    try {
      parsed = res.text ? JSON.parse(res.text) : undefined;
    } catch {
      parsed = res.text;
    }
    if (res.status >= 500 || res.status === 429) throw new K8sUnavailable(`Kubernetes API ${method} ${path}: HTTP ${res.status}: ${parsed?.message ?? res.text}`);
    if (res.status === 401 || res.status === 403) throw new K8sHttpError(res.status, `Kubernetes API ${method} ${path}: HTTP ${res.status}: ${parsed?.message ?? ''}`);
    return { status: res.status, body: parsed };
  }

  async podInfo(ns: string, pod: string): Promise<PodInfo | undefined> {
    const [p, n] = await Promise.all([
      this.request('GET', `/api/v1/namespaces/${encodeURIComponent(ns)}/pods/${encodeURIComponent(pod)}`),
      this.request('GET', `/api/v1/namespaces/${encodeURIComponent(ns)}`),
    ]);
    if (p.status === 404) return undefined;
    if (p.status !== 200) throw new K8sHttpError(p.status, `reading pod ${ns}/${pod}: HTTP ${p.status}: ${p.body?.message ?? ''}`);
    return {
      labels: p.body.metadata?.labels ?? {},
      annotations: p.body.metadata?.annotations ?? {},
      serviceAccount: p.body.spec?.serviceAccountName,
      namespaceAnnotations: n.status === 200 ? n.body.metadata?.annotations ?? {} : {},
    };
  }

  close(): void {
    this.agent.destroy();
  }
}

