// `petrel agent`: the per-node daemon. Data flows one way (docs/architecture.md):
// datastore stream → ResourceCache → calculation → dataplanes (routes/, acl/) and bgp/;
// BGP's best routes come back into the calculation as an input of the route set.
import os from 'node:os';
import type { DatastoreEvent, DatastoreOptions, Datastore } from '../datastore/index.js';
import { Batcher } from './calc/batcher.js';
import { ResourceCache } from './calc/cache.js';
import { HealthRegistry, type HealthReporter } from './health.js';
import { logger, type Logger } from './log.js';
import { counter, gauge } from './metrics.js';
import { HealthServer } from './server.js';
import { VERSION } from './version.js';

export type DataplaneMode = 'linux' | 'dry-run';

export interface AgentOptions {
  datastore: DatastoreOptions;
  healthHost: string;
  healthPort: number;
  dataplane: DataplaneMode;
  bgp: boolean;
  /** protocol number on every route Petrel programs (CONTRACT §4); default 80. */
  routeProtocol?: number;
  /** name prefix of every iptables chain and ipset Petrel creates (CONTRACT §4); default `pet-`. */
  chainPrefix?: string;
  /** workload interface name prefix (CONTRACT §4); default `cali`. */
  interfacePrefix?: string;
  /** Injected datastore (tests); otherwise created from `datastore` options. */
  datastoreInstance?: Datastore;
}

/** One part of the agent that turns the calculation's view into kernel or BGP state. */
export interface AgentComponent {
  readonly name: string;
  /** Called on every batch of datastore events, before the first in-sync too (no kernel writes). */
  onEvents?(events: DatastoreEvent[], cache: ResourceCache): void;
  /** Called after in-sync whenever something it depends on changed: compute and apply. */
  apply(cache: ResourceCache): Promise<void>;
  status(): unknown;
  stop(opts: { graceful: boolean }): Promise<void>;
}

const resourcesGauge = () =>
  gauge({ name: 'petrel_datastore_resources', help: 'Resources known to the agent, by kind', labelNames: ['kind'] });
const updatesCounter = () =>
  counter({ name: 'petrel_datastore_updates_total', help: 'Datastore events received, by type', labelNames: ['type'] });
const inSyncGauge = () => gauge({ name: 'petrel_datastore_in_sync', help: '1 once the datastore stream is in sync' });
const applyCounter = () =>
  counter({ name: 'petrel_calc_apply_total', help: 'Calculation passes applied, by result', labelNames: ['result'] });

export class Agent {
  readonly health = new HealthRegistry();
  readonly cache = new ResourceCache();
  readonly log: Logger;
  private datastore?: Datastore;
  private server?: HealthServer;
  private readonly components: AgentComponent[] = [];
  private readonly batcher: Batcher;
  private dsHealth!: HealthReporter;
  private calcHealth!: HealthReporter;
  private dsState: { connected: boolean; reason?: string } = { connected: false, reason: 'starting' };
  private lastApply?: { at: string; durationMs: number; error?: string };
  private applies = 0;
  private stopping = false;
  private readonly startedAt = new Date().toISOString();
  private watchdog?: NodeJS.Timeout;
  private statusReporter?: NodeJS.Timeout;

  constructor(readonly opts: AgentOptions) {
    this.log = logger('agent', { node: opts.datastore.nodename });
    this.batcher = new Batcher(() => this.applyAll(), 10, (err) => this.log.error({ err }, 'apply failed'));
    const info = gauge({ name: 'petrel_build_info', help: 'Petrel build information', labelNames: ['version', 'node_version'] });
    info.set({ version: VERSION, node_version: process.version }, 1);
  }

  get nodeName(): string {
    return this.opts.datastore.nodename;
  }

  addComponent(c: AgentComponent): void {
    this.components.push(c);
  }

  /** Asks for a calculation pass (e.g. BGP learned routes changed). */
  kick(): void {
    if (this.cache.inSync) this.batcher.kick();
  }

  async start(): Promise<{ healthPort: number }> {
    this.dsHealth = this.health.register('datastore', { reason: 'connecting' });
    this.calcHealth = this.health.register('calculation', { timeoutMs: 90_000, reason: 'waiting for datastore in-sync' });
    // Liveness watchdog: the event loop itself must keep turning.
    this.watchdog = setInterval(() => this.calcHealth.alive(), 10_000);
    this.watchdog.unref();

    this.server = new HealthServer({
      host: this.opts.healthHost,
      port: this.opts.healthPort,
      health: this.health,
      status: () => this.status(),
      log: this.log,
    });
    const addr = await this.server.start();

    let ds = this.opts.datastoreInstance;
    if (!ds) {
      const { createDatastore } = await import('../datastore/factory.js');
      ds = await createDatastore(this.opts.datastore);
    }
    this.datastore = ds;
    await ds.watch((events) => this.onEvents(events));
    this.updateDatastoreHealth();
    if (ds.reportNodeStatus) {
      this.statusReporter = setInterval(() => void this.reportStatus(), 10_000);
      this.statusReporter.unref();
    }
    this.log.info(
      { datastore: this.opts.datastore.type, dataplane: this.opts.dataplane, bgp: this.opts.bgp, version: VERSION },
      'agent started',
    );
    return { healthPort: addr.port };
  }

  private onEvents(events: DatastoreEvent[]): void {
    if (this.stopping) return;
    const wasInSync = this.cache.inSync;
    this.cache.apply(events);
    const updates = updatesCounter();
    for (const e of events) {
      updates.inc({ type: e.type });
      if (e.type === 'status') {
        const wasConnected = this.dsState.connected;
        this.dsState = { connected: e.state === 'connected', reason: e.reason };
        if (e.state === 'disconnected' && this.cache.inSync) {
          this.log.warn({ reason: e.reason }, 'datastore connection lost; keeping everything programmed');
        } else if (e.state === 'connected' && !wasConnected && this.cache.inSync) {
          this.log.info('datastore connection back; resyncing');
        }
      } else if (e.type === 'in-sync') {
        this.dsState = { connected: true };
      }
    }
    this.updateDatastoreHealth();
    for (const c of this.components) {
      try {
        c.onEvents?.(events, this.cache);
      } catch (err) {
        this.log.error({ err, component: c.name }, 'component rejected datastore events');
      }
    }
    const g = resourcesGauge();
    g.reset();
    for (const [kind, n] of Object.entries(this.cache.counts())) g.set({ kind }, n);
    if (this.cache.inSync) {
      inSyncGauge().set(1);
      if (!wasInSync) this.log.info({ resources: this.cache.counts() }, 'datastore in sync; first apply');
      this.batcher.kick();
      if (!wasInSync) setTimeout(() => void this.reportStatus(), 1000).unref();
    }
  }

  private updateDatastoreHealth(): void {
    const st = this.datastore?.status();
    const errors = st?.errors ?? [];
    if (!this.cache.inSync) {
      this.dsHealth.notReady(this.dsState.reason ? `not in sync: ${this.dsState.reason}` : 'waiting for the initial list');
    } else if (!this.dsState.connected) {
      this.dsHealth.notReady(`datastore unreachable: ${this.dsState.reason ?? 'connection lost'}`);
    } else {
      this.dsHealth.ready(errors.length ? `${errors.length} source(s) with errors, last good content kept` : undefined);
    }
  }

  /** One calculation pass over every component: only after in-sync, never concurrently. */
  private async applyAll(): Promise<void> {
    if (!this.cache.inSync || this.stopping) return;
    const t0 = performance.now();
    const errors: string[] = [];
    for (const c of this.components) {
      try {
        await c.apply(this.cache);
      } catch (err) {
        errors.push(`${c.name}: ${(err as Error).message}`);
        this.log.error({ err, component: c.name }, 'component apply failed; will retry');
      }
    }
    const durationMs = Math.round((performance.now() - t0) * 10) / 10;
    this.lastApply = { at: new Date().toISOString(), durationMs, ...(errors.length ? { error: errors.join('; ') } : {}) };
    this.applies++;
    applyCounter().inc({ result: errors.length ? 'error' : 'ok' });
    if (errors.length) {
      this.calcHealth.notReady(`apply failed: ${errors.join('; ')}`);
      setTimeout(() => this.batcher.kick(), 2000).unref();
    } else {
      this.calcHealth.ready();
    }
    this.updateDatastoreHealth();
  }

  /**
   * This node's view for `petrel ctl node status --all` (etcd): readiness, BGP peers, last apply.
   * Best effort: while the datastore is unreachable there is nothing to report to.
   */
  private async reportStatus(): Promise<void> {
    const ds = this.datastore;
    if (!ds?.reportNodeStatus || !this.cache.inSync || this.stopping) return;
    const full = this.status();
    const { node, version, ready, health, bgp, dataplane } = full as Record<string, any>;
    try {
      await ds.reportNodeStatus(this.nodeName, { node, version, ready, health, bgp, lastApply: dataplane?.lastApply ?? null });
    } catch (err) {
      this.log.debug({ err }, 'node status not reported');
    }
  }

  /** Resolves once queued calculation passes have run (tests). */
  async settled(): Promise<void> {
    await this.batcher.idle();
  }

  status(): Record<string, unknown> {
    const ds = this.datastore?.status();
    const out: Record<string, unknown> = {
      node: this.nodeName,
      version: VERSION,
      hostname: os.hostname(),
      startedAt: this.startedAt,
      ready: this.health.snapshot().ready,
      health: this.health.snapshot().components,
      datastore: {
        type: this.opts.datastore.type,
        inSync: this.cache.inSync,
        connected: this.dsState.connected,
        ...(this.dsState.reason ? { reason: this.dsState.reason } : {}),
        resources: this.cache.counts(),
        errors: ds?.errors ?? [],
      },
      dataplane: {
        mode: this.opts.dataplane,
        applies: this.applies,
        lastApply: this.lastApply ?? null,
      },
    };
    for (const c of this.components) {
      const s = c.status();
      if (c.name === 'bgp') out.bgp = s;
      else (out.dataplane as Record<string, unknown>)[c.name] = s;
    }
    if (!out.bgp) out.bgp = { enabled: this.opts.bgp, asNumber: null, routerId: null, peers: [] };
    return out;
  }

  async stop(opts: { graceful?: boolean } = {}): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    const graceful = opts.graceful ?? true;
    this.batcher.stop();
    if (this.watchdog) clearInterval(this.watchdog);
    if (this.statusReporter) clearInterval(this.statusReporter);
    this.log.info({ graceful }, 'agent stopping; kernel state is left in place');
    await Promise.allSettled(this.components.map((c) => c.stop({ graceful })));
    await this.datastore?.close().catch(() => undefined);
    await this.server?.stop();
  }
}
