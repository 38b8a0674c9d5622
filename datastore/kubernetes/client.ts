// A small Kubernetes REST client on node:https, with credentials from @kubernetes/client-node's
// KubeConfig (in-cluster service account, kubeconfig files, exec plugins, client certs). Own
// HTTP so that list pages, watch streams (line framing, idle watchdog, abort) and Status errors
// are handled exactly as k8s-watch.md describes, without the informer's traps (§6).
import http from 'node:http';
import https from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';

export class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** A transport failure: no HTTP answer at all (refused, reset, TLS, timeout). */
export class TransportError extends Error {
  override name = 'TransportError';
}

export function loadKubeConfig(path?: string): KubeConfig {
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else if (process.env.KUBERNETES_SERVICE_HOST && process.env.KUBERNETES_SERVICE_PORT) kc.loadFromCluster();
  else kc.loadFromDefault();
  if (!kc.getCurrentCluster()) throw new Error(`no current cluster in the kubeconfig${path ? ` ${path}` : ''}`);
  return kc;
}

export interface WatchHandle {
  /** resolves when the stream ends (clean end: undefined; failure: the error) */
  done: Promise<Error | undefined>;
  abort(): void;
}

export class KubeClient {
  readonly server: URL;
  private optsCache?: { at: number; opts: https.RequestOptions };

  constructor(readonly kc: KubeConfig) {
    this.server = new URL(kc.getCurrentCluster()!.server);
  }

  private async baseOptions(): Promise<https.RequestOptions> {
    // re-read credentials now and then (rotated service-account tokens, exec plugins)
    if (this.optsCache && Date.now() - this.optsCache.at < 60_000) return this.optsCache.opts;
    const opts: https.RequestOptions = {};
    await this.kc.applyToHTTPSOptions(opts);
    this.optsCache = { at: Date.now(), opts };
    return opts;
  }

  private async request(method: string, path: string, body?: unknown, contentType = 'application/json', timeoutMs = 30_000): Promise<{ status: number; headers: http.IncomingHttpHeaders; res: http.IncomingMessage; req: http.ClientRequest }> {
    const base = await this.baseOptions();
    const url = new URL(path, this.server);
    const data = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const mod = url.protocol === 'http:' ? http : https;
    return await new Promise((resolve, reject) => {
      const req = mod.request(
        url,
        {
          ...base,
          method,
          headers: {
            ...(base.headers ?? {}),
            Accept: 'application/json',
            'User-Agent': 'petrel',
            ...(data !== undefined ? { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(data) } : {}),
          },
        },
        (res) => resolve({ status: res.statusCode ?? 0, headers: res.headers, res, req }),
      );
      req.setTimeout(timeoutMs, () => req.destroy(new TransportError(`${method} ${url.pathname}: no answer from ${this.server.host} within ${timeoutMs} ms`)));
      req.on('error', (e) => reject(e instanceof TransportError ? e : new TransportError(`${method} ${url.pathname}: ${this.server.host}: ${e.message}`)));
      if (data !== undefined) req.write(data);
      req.end();
    });
  }

  private static async readAll(res: http.IncomingMessage): Promise<string> {
    const chunks: Buffer[] = [];
    for await (const c of res) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }

  private static toError(status: number, text: string, headers: http.IncomingHttpHeaders, what: string): ApiError {
    let reason = '';
    let message = text.slice(0, 500);
    let retry: number | undefined;
    try {
      const j = JSON.parse(text);
      if (j?.kind === 'Status') {
        reason = j.reason ?? '';
        message = j.message ?? message;
        retry = j.details?.retryAfterSeconds;
      }
    } catch {
      /* plain text from a proxy */
    }
    const ra = Number(headers['retry-after']);
    return new ApiError(status, reason, `${what}: HTTP ${status}${reason ? ` ${reason}` : ''}: ${message}`, Number.isFinite(ra) && ra > 0 ? ra : retry);
  }

  /** JSON request; non-2xx answers throw ApiError, no answer throws TransportError. */
  async json(method: string, path: string, body?: unknown, contentType?: string): Promise<any> {
    const { status, headers, res } = await this.request(method, path, body, contentType);
    const text = await KubeClient.readAll(res);
    if (status < 200 || status >= 300) throw KubeClient.toError(status, text, headers, `${method} ${path}`);
    try {
      return JSON.parse(text);
    } catch (e) {
      throw new ApiError(status, 'BadResponse', `${method} ${path}: answer is not JSON: ${(e as Error).message}`);
    }
  }

  /**
   * A watch stream: calls `onEvent` per JSON line. Ends on clean end of stream, error, abort, or
   * when nothing (not even a bookmark) arrived for `idleTimeoutMs` (half-open connection).
   */
  async watch(path: string, onEvent: (ev: any) => void, idleTimeoutMs: number): Promise<WatchHandle> {
    const { status, headers, res, req } = await this.request('GET', path, undefined, undefined, idleTimeoutMs);
    if (status !== 200) {
      const text = await KubeClient.readAll(res);
      throw KubeClient.toError(status, text, headers, `GET ${path}`);
    }
    let aborted = false;
    let timer: NodeJS.Timeout | undefined;
    const done = new Promise<Error | undefined>((resolve) => {
      let buf = '';
      let finished = false;
      const finish = (e?: Error) => {
        if (finished) return;
        finished = true;
        if (timer) clearTimeout(timer);
        resolve(e);
      };
      const arm = () => {
        if (timer) clearTimeout(timer);
        timer = setTimeout(() => {
          finish(new TransportError(`watch ${path}: nothing received for ${idleTimeoutMs} ms (half-open connection?)`));
          req.destroy();
        }, idleTimeoutMs);
      };
      arm();
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        arm();
        buf += chunk;
        let i: number;
        while ((i = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, i).trim();
          buf = buf.slice(i + 1);
          if (!line) continue;
          let ev: any;
          try {
            ev = JSON.parse(line);
          } catch {
            finish(new ApiError(200, 'BadResponse', `watch ${path}: undecodable event line: ${line.slice(0, 200)}`));
            req.destroy();
            return;
          }
          onEvent(ev);
        }
      });
      res.on('end', () => finish(aborted ? undefined : buf.trim() ? new TransportError(`watch ${path}: stream ended mid-event`) : undefined));
      res.on('error', (e) => finish(aborted ? undefined : new TransportError(`watch ${path}: ${e.message}`)));
      res.on('close', () => finish(aborted || res.complete ? undefined : new TransportError(`watch ${path}: connection closed abruptly`)));
    });
    return {
      done,
      abort: () => {
        aborted = true;
        req.destroy();
      },
    };
  }
}
