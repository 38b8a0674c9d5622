// The health port (CONTRACT §2): /liveness, /readiness, /metrics, /status. Plain HTTP,
// unauthenticated, so nothing served here ever holds a secret.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { HealthRegistry } from './health.js';
import type { Logger } from './log.js';
import { metricsRegistry } from './metrics.js';

export interface HealthServerOptions {
  host: string;
  port: number;
  health: HealthRegistry;
  /** The /status document; must already be free of secrets. */
  status: () => unknown;
  log: Logger;
}

export class HealthServer {
  private server?: Server;

  constructor(private readonly opts: HealthServerOptions) {}

  async start(): Promise<AddressInfo> {
    const { health, status, log } = this.opts;
    const server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      const json = (code: number, body: unknown) => {
        res.writeHead(code, { 'content-type': 'application/json' });
        res.end(`${JSON.stringify(body, null, 2)}\n`);
      };
      if (req.method !== 'GET' && req.method !== 'HEAD') return json(405, { error: 'method not allowed' });
      try {
        switch (path) {
          case '/liveness': {
            const h = health.snapshot();
            const failing = Object.fromEntries(Object.entries(h.components).filter(([, c]) => !c.live));
            return h.live ? json(200, { live: true }) : json(503, { live: false, components: failing });
          }
          case '/readiness': {
            const h = health.snapshot();
            const failing = Object.fromEntries(Object.entries(h.components).filter(([, c]) => !c.ready));
            return h.ready ? json(200, { ready: true }) : json(503, { ready: false, components: failing });
          }
          case '/metrics':
            metricsRegistry.metrics().then(
              (text) => {
                res.writeHead(200, { 'content-type': metricsRegistry.contentType });
                res.end(text);
              },
              (err) => json(500, { error: String(err) }),
            );
            return;
          case '/status':
            return json(200, status());
          default:
            return json(404, { error: 'not found', paths: ['/liveness', '/readiness', '/metrics', '/status'] });
        }
      } catch (err) {
        log.error({ err, path }, 'health server handler failed');
        return json(500, { error: String(err) });
      }
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port, this.opts.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const addr = server.address() as AddressInfo;
    log.info({ host: addr.address, port: addr.port }, 'health server listening');
    return addr;
  }

  async stop(): Promise<void> {
    const s = this.server;
    if (!s) return;
    this.server = undefined;
    s.closeAllConnections?.();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}
