// Component health registry (CONTRACT §2): every component reports live/ready with a reason;
// /liveness and /readiness aggregate. A reporter that stops reporting within its timeout is
// treated as not live, as Felix's health aggregator does.

export interface ComponentHealth {
  live: boolean;
  ready: boolean;
  reason?: string;
  /** ms since epoch of the last report. */
  updated: number;
}

export interface HealthReport {
  live: boolean;
  ready: boolean;
  components: Record<string, { live: boolean; ready: boolean; reason?: string }>;
}

export class HealthRegistry {
  private readonly components = new Map<string, ComponentHealth & { timeoutMs?: number }>();

  /** Declares a component (not ready until it says so). `timeoutMs`: liveness watchdog. */
  register(name: string, opts: { timeoutMs?: number; reason?: string } = {}): HealthReporter {
    this.components.set(name, {
      live: true,
      ready: false,
      reason: opts.reason ?? 'starting',
      updated: Date.now(),
      timeoutMs: opts.timeoutMs,
    });
    return new HealthReporter(this, name);
  }

  unregister(name: string): void {
    this.components.delete(name);
  }

  report(name: string, h: { live?: boolean; ready?: boolean; reason?: string }): void {
    const c = this.components.get(name);
    if (!c) return;
    if (h.live !== undefined) c.live = h.live;
    if (h.ready !== undefined) c.ready = h.ready;
    c.reason = h.reason;
    c.updated = Date.now();
  }

  snapshot(now = Date.now()): HealthReport {
    const components: HealthReport['components'] = {};
    let live = true;
    let ready = true;
    for (const [name, c] of this.components) {
      const timedOut = c.timeoutMs !== undefined && now - c.updated > c.timeoutMs;
      const cl = c.live && !timedOut;
      const reason = timedOut ? `no report for ${Math.round((now - c.updated) / 1000)}s` : c.reason;
      components[name] = { live: cl, ready: c.ready && cl, ...(reason ? { reason } : {}) };
      live &&= cl;
      ready &&= c.ready && cl;
    }
    return { live, ready, components };
  }
}

export class HealthReporter {
  constructor(
    private readonly registry: HealthRegistry,
    readonly name: string,
  ) {}
  ready(reason?: string): void {
    this.registry.report(this.name, { live: true, ready: true, reason });
  }
  notReady(reason: string): void {
    this.registry.report(this.name, { live: true, ready: false, reason });
  }
  dead(reason: string): void {
    this.registry.report(this.name, { live: false, ready: false, reason });
  }
  /** Keep-alive for the watchdog without changing state. */
  alive(): void {
    const s = this.registry.snapshot().components[this.name];
    if (s) this.registry.report(this.name, { live: s.live, ready: s.ready, reason: s.reason });
  }
}
