// The agent's components: each turns the calculation's view into one kind of state.
//   policy  — acl/: endpoints + policies → iptables chains and ipsets (incremental)
//   routes  — routes/: datastore + BGP best routes → kernel FIB, workload interfaces, VXLAN, IPIP
//   bgp     — bgp/: datastore → speaker configuration and exports; best routes feed `routes`
// Data flows one way: datastore → calculation → dataplane/BGP; BGP's learned routes come back
// as an input of the route calculation only.
import { parseDuration, type DatastoreEvent, type KindId, type Resource } from '../datastore/index.js';
import type { AgentComponent, Agent } from './daemon.js';
import type { ResourceCache } from './calc/cache.js';
import type { HealthReporter } from './health.js';
import { computeServiceAdvertisement } from './calc/services.js';

export interface ComponentOptions {
  routeProtocol: number;
  chainPrefix?: string;
  interfacePrefix: string;
}

/** FelixConfiguration `default` overlaid with `node.<name>` (Calico's precedence). */
export function felixConfig(cache: ResourceCache, nodeName: string): Record<string, any> {
  const all = cache.list('FelixConfiguration');
  const def = all.find((r) => r.metadata.name === 'default')?.spec ?? {};
  const mine = all.find((r) => r.metadata.name === `node.${nodeName}`)?.spec ?? {};
  return { ...def, ...mine };
}

function touches(events: DatastoreEvent[], kinds: ReadonlySet<KindId>): boolean {
  return events.some((e) => (e.type === 'update' || e.type === 'delete') && kinds.has(e.kind));
}

/** Calico duration text ("90s", "1m30s") or seconds → ms; undefined when absent or invalid. */
function durationMs(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return v * 1000;
  return typeof v === 'string' ? parseDuration(v) : undefined;
}

// ---------------------------------------------------------------------------------------
// BGP

const BGP_KINDS: ReadonlySet<KindId> = new Set<KindId>([
  'Node',
  'BGPConfiguration',
  'BGPPeer',
  'KubernetesNode',
  'IPPool',
  'BlockAffinity',
  'WorkloadEndpoint',
  'Service',
  'EndpointSlice',
]);

export class BgpComponent implements AgentComponent {
  readonly name = 'bgp';
  private speaker?: import('../bgp/index.js').BgpSpeaker;
  private speakerKey?: string;
  private dirty = true;
  private readonly health: HealthReporter;
  private readonly learned = new Map<string, { prefix: string; nextHop: string; peer?: string }>();
  private lastConfig?: unknown;
  private exports: string[] = [];
  private error?: string;
  private warnings: string[] = [];
  private readonly resolveSecret: (ref: { name: string; key: string }) => string | undefined;

  constructor(
    private readonly agent: Agent,
    private readonly bgpMod: typeof import('../bgp/index.js'),
    private readonly calc: typeof import('./calc/bgp.js'),
    private readonly live: boolean,
  ) {
    this.health = agent.health.register('bgp', { reason: 'waiting for configuration' });
    // BGPPeer.password / nodeMeshPassword `secretKeyRef`s: Secrets mounted as volumes,
    // <dir>/<secret name>/<key> (PETREL_BGP_SECRETS_DIR, default /etc/petrel/bgp-secrets).
    this.resolveSecret = bgpMod.secretResolverFromDir(process.env.PETREL_BGP_SECRETS_DIR ?? '/etc/petrel/bgp-secrets');
  }

  onEvents(events: DatastoreEvent[]): void {
    if (touches(events, BGP_KINDS)) this.dirty = true;
  }

  /** BGP best routes, for the route calculation. */
  learnedRoutes(): { prefix: string; nextHop: string }[] {
    return [...this.learned.values()];
  }

  /** True once BGP has converged after start (End-of-RIB from every peer, or deferral), or BGP does not run. */
  initialSyncDone(): boolean {
    return !this.speaker || this.speaker.initialSyncDone();
  }

  async apply(cache: ResourceCache): Promise<void> {
    if (this.dirty) {
      this.dirty = false;
      this.reconfigure(cache);
    }
    if (this.error) {
      this.health.notReady(`BGP cannot run: ${this.error}`);
    } else if (this.speaker) {
      const r = this.speaker.ready();
      if (r.ready) this.health.ready(r.reason);
      else this.health.notReady(r.reason ?? 'BGP peers not established');
    } else if (!this.live) {
      this.health.ready('dry-run: sessions not opened');
    }
  }

  private reconfigure(cache: ResourceCache): void {
    const nodeName = this.agent.nodeName;
    const cfg = this.calc.computeSpeakerConfig({
      resolveSecret: this.resolveSecret,
      nodeName,
      nodes: cache.list('Node'),
      bgpConfigurations: cache.list('BGPConfiguration'),
      bgpPeers: cache.list('BGPPeer'),
      kubernetesNodes: cache.list('KubernetesNode'),
      ipPools: cache.list('IPPool'),
    });
    if ('error' in cfg) {
      this.error = cfg.error;
      this.health.notReady(`BGP cannot run: ${cfg.error}`);
      this.agent.log.error({ error: cfg.error }, 'BGP cannot run; keeping routes already learned');
      return;
    }
    this.error = undefined;
    this.warnings = cfg.warnings;
    for (const w of cfg.warnings) this.agent.log.warn({ warning: w }, 'BGP configuration');
    const services = computeServiceAdvertisement({
      nodeName,
      bgpConfigurations: cache.list('BGPConfiguration'),
      services: cache.list('Service'),
      endpointSlices: cache.list('EndpointSlice'),
    });
    for (const e of services.errors) this.agent.log.warn({ error: e }, 'service advertisement');
    const exports = this.calc.computeExports({
      nodeName,
      ipPools: cache.list('IPPool'),
      blockAffinities: cache.list('BlockAffinity'),
      kubernetesNodes: cache.list('KubernetesNode'),
      workloadEndpoints: cache.list('WorkloadEndpoint'),
      bgpConfigurations: cache.list('BGPConfiguration'),
      servicePrefixes: services.prefixes,
    });
    this.exports = exports.map((e) => e.prefix);
    const { warnings: _w, ...speakerConfig } = cfg;
    this.lastConfig = speakerConfig;
    if (!this.live) return;

    // The listener's port is fixed for a speaker's life; a change makes a new speaker.
    const key = `${speakerConfig.listenPort}`;
    if (!this.speaker || this.speakerKey !== key) {
      const old = this.speaker;
      this.speaker = undefined;
      void old?.stop({ graceful: false });
      const fc = felixConfig(cache, nodeName);
      const def = cache.list('BGPConfiguration').find((c) => c.metadata.name === 'default')?.spec ?? {};
      const restartTime = (durationMs((def as any).nodeMeshMaxRestartTime) ?? durationMs(fc.bgpRestartTime) ?? 120_000) / 1000;
      const sp = new this.bgpMod.BgpSpeaker({
        routerId: speakerConfig.routerId,
        asNumber: speakerConfig.asNumber,
        listenPort: speakerConfig.listenPort,
        gracefulRestart: { restartTime },
      });
      sp.onBestRoutes((changes) => {
        for (const c of changes) {
          if (c.withdrawn || !c.nextHop) this.learned.delete(c.prefix);
          else this.learned.set(c.prefix, { prefix: c.prefix, nextHop: c.nextHop, peer: c.peer });
        }
        this.agent.kick();
      });
      sp.onInitialSync(() => {
        this.agent.log.info({ routes: this.learned.size }, 'BGP initial sync done; stale kernel routes may now be removed');
        this.agent.kick();
      });
      this.speaker = sp;
      this.speakerKey = key;
      sp.configure(speakerConfig);
      sp.setExports(exports);
      sp.start().catch((err) => {
        this.health.notReady(`BGP listener failed on port ${speakerConfig.listenPort}: ${(err as Error).message}`);
        this.agent.log.error({ err }, 'BGP speaker failed to start');
      });
      return;
    }
    this.speaker.configure(speakerConfig);
    this.speaker.setExports(exports);
  }

  status(): unknown {
    const base = this.speaker?.status() ?? {
      asNumber: (this.lastConfig as any)?.asNumber ?? null,
      routerId: (this.lastConfig as any)?.routerId ?? null,
      peers: ((this.lastConfig as any)?.peers ?? []).map((p: any) => ({
        address: p.address,
        asNumber: p.asNumber,
        type: p.type,
        state: 'Idle',
        since: null,
        info: this.live ? 'not started' : 'dry-run: not connected',
        prefixesReceived: 0,
        prefixesAdvertised: 0,
      })),
    };
    return {
      enabled: true,
      ...base,
      exports: this.exports,
      learnedRoutes: this.learned.size,
      initialSyncDone: this.initialSyncDone(),
      ...(this.error ? { error: this.error } : {}),
      ...(this.warnings.length ? { warnings: this.warnings } : {}),
    };
  }

  async stop(opts: { graceful: boolean }): Promise<void> {
    await this.speaker?.stop(opts);
  }
}

// ---------------------------------------------------------------------------------------
// Routes

const ROUTE_KINDS: ReadonlySet<KindId> = new Set<KindId>([
  'Node',
  'KubernetesNode',
  'IPPool',
  'BlockAffinity',
  'WorkloadEndpoint',
  'FelixConfiguration',
  'BGPConfiguration',
]);

export class RoutesComponent implements AgentComponent {
  readonly name = 'routes';
  private dirty = true;
  private readonly health: HealthReporter;
  private manager?: import('../routes/index.js').RouteManager;
  private interfaces?: import('../routes/index.js').InterfaceManager;
  private vxlan?: import('../routes/index.js').VxlanManager;
  private ipip?: import('../routes/index.js').IpipManager;
  private lastOutput?: import('./calc/routes.js').RouteCalcOutput;
  private lastBgpKey = '';
  /** the last apply gave the manager the full set (not only additions) */
  private lastSynced = false;
  private started?: Promise<void>;
  private hostMtu?: number;

  constructor(
    private readonly agent: Agent,
    private readonly mod: typeof import('../routes/index.js'),
    private readonly calc: typeof import('./calc/routes.js'),
    private readonly opts: ComponentOptions,
    private readonly live: boolean,
    private readonly bgp?: BgpComponent,
  ) {
    this.health = agent.health.register('routes', { reason: 'waiting for datastore in-sync' });
  }

  /**
   * Builds the managers (FelixConfiguration known by now: the first apply follows in-sync), reads
   * the kernel and follows its events. Removes nothing (CONTRACT §4).
   */
  private start(fc: Record<string, any>): Promise<void> {
    this.started ??= (async () => {
      if (!this.live) return;
      const { mod, opts } = this;
      const host = new mod.LocalHost();
      const prefix = typeof fc.interfacePrefix === 'string' && fc.interfacePrefix ? fc.interfacePrefix.split(',')[0] : opts.interfacePrefix;
      this.manager = new mod.RouteManager({
        protocol: opts.routeProtocol,
        interfacePrefix: prefix,
        host,
        resyncIntervalMs: durationMs(fc.routeRefreshInterval) ?? 90_000,
      });
      this.interfaces = new mod.InterfaceManager({ host, routeManager: this.manager, interfacePrefix: prefix });
      this.vxlan = new mod.VxlanManager({ host, routeManager: this.manager });
      this.ipip = new mod.IpipManager({ host });
      await this.manager.start();
      await this.interfaces.start();
      this.hostMtu = mod.detectHostMtu(this.manager.allLinks());
    })();
    return this.started;
  }

  onEvents(events: DatastoreEvent[]): void {
    if (touches(events, ROUTE_KINDS)) this.dirty = true;
  }

  async apply(cache: ResourceCache): Promise<void> {
    const nodeName = this.agent.nodeName;
    const fc = felixConfig(cache, nodeName);
    await this.start(fc);
    const bgpRoutes = this.bgp?.learnedRoutes() ?? [];
    const bgpKey = bgpRoutes.map((r) => `${r.prefix}>${r.nextHop}`).sort().join(',');
    const bgpSynced = this.bgp?.initialSyncDone() ?? true;
    if (!this.dirty && bgpKey === this.lastBgpKey && this.lastOutput && (this.lastSynced || !bgpSynced)) return;
    this.dirty = false;
    this.lastBgpKey = bgpKey;
    const out = this.calc.computeRoutes({
      nodeName,
      nodes: cache.list('Node'),
      kubernetesNodes: cache.list('KubernetesNode'),
      pools: cache.list('IPPool'),
      blockAffinities: cache.list('BlockAffinity'),
      localEndpoints: cache.list('WorkloadEndpoint').filter((w: Resource) => (w.spec as any)?.node === nodeName),
      bgpRoutes,
      bgpEnabled: this.bgp !== undefined,
      felixConfig: fc,
      hostMtu: this.hostMtu,
    });
    this.lastOutput = out;
    for (const e of out.errors) this.agent.log.warn({ error: e }, 'route calculation');
    if (!this.manager) {
      this.health.ready('dry-run: nothing programmed');
      return;
    }
    // Until BGP has re-learned what it knew before a restart, routes are only added: the old
    // kernel routes (graceful restart) stay until our RIB is back in sync.
    if (bgpSynced) {
      await this.manager.setDesired(out.routes);
      this.lastSynced = true;
    } else {
      await this.manager.applyDelta(out.routes, []);
      this.lastSynced = false;
    }
    await this.vxlan!.apply({ v4: out.vxlan, v6: out.vxlanV6 });
    if (out.ipipNeeded) await this.ipip!.apply(out.ipip);
    const ipipReason = out.ipipNeeded ? this.ipip!.healthReason() : undefined;
    if (ipipReason) {
      this.health.notReady(ipipReason);
      this.agent.log.error({ reason: ipipReason }, 'IPIP unavailable; every other route is programmed');
    } else {
      this.health.ready(bgpSynced ? undefined : 'keeping previous routes until BGP has re-synced');
    }
  }

  status(): unknown {
    const o = this.lastOutput;
    return {
      desired: o?.routes.length ?? 0,
      routes: o?.routes.map((r) => this.mod.formatRoute(r)) ?? [],
      podMtu: o?.podMtu,
      vxlan: this.vxlan?.status() ?? (o?.vxlan ? { planned: o.vxlan } : undefined),
      ipip: o?.ipipNeeded ? (this.ipip?.status() ?? { planned: o.ipip }) : undefined,
      errors: o?.errors ?? [],
      kernel: this.manager?.status(),
    };
  }

  async stop(): Promise<void> {
    // Routes stay in the kernel: the next agent takes them over (CONTRACT §4).
    await this.manager?.stop();
    await this.vxlan?.stop();
    this.ipip?.stop();
  }
}

// ---------------------------------------------------------------------------------------
// Policy

export class PolicyComponent implements AgentComponent {
  readonly name = 'policy';
  private readonly calc: import('./calc/policy.js').PolicyCalculator;
  private dataplane?: import('../acl/index.js').IptablesDataplane;
  private readonly health: HealthReporter;
  private changed = true;
  private started?: Promise<void>;

  constructor(
    private readonly agent: Agent,
    calcMod: typeof import('./calc/policy.js'),
    private readonly aclMod: typeof import('../acl/index.js'),
    private readonly opts: ComponentOptions,
    private readonly live: boolean,
  ) {
    this.health = agent.health.register('policy', { reason: 'waiting for datastore in-sync' });
    this.calc = new calcMod.PolicyCalculator({ nodeName: agent.nodeName, prefix: opts.chainPrefix });
  }

  onEvents(events: DatastoreEvent[]): void {
    if (this.calc.onEvents(events)) this.changed = true;
  }

  async apply(): Promise<void> {
    if (!this.live) {
      this.health.ready('dry-run: nothing programmed');
      return;
    }
    // Built at the first apply (after in-sync), when FelixConfiguration's refresh interval
    // and iptables backend are known.
    if (!this.dataplane) {
      const fc = this.calc.felixConfig;
      this.dataplane = new this.aclMod.IptablesDataplane({
        prefix: this.opts.chainPrefix,
        ...(fc.iptablesRefreshIntervalMs !== undefined ? { refreshIntervalMs: fc.iptablesRefreshIntervalMs } : {}),
        ...(fc.iptablesBackend ? { backend: fc.iptablesBackend } : {}),
      });
      this.started = this.dataplane.start();
    }
    await this.started;
    if (!this.changed && this.dataplane.status().applied) return;
    this.changed = false;
    try {
      await this.dataplane.apply(this.calc.desired);
      this.health.ready();
    } catch (err) {
      this.changed = true;
      this.health.notReady(`iptables apply failed: ${(err as Error).message}`);
      throw err;
    }
  }

  status(): unknown {
    const d = this.calc.desired;
    const rules: string[] = [];
    if (!this.live) {
      for (const [k, rs] of [...d.hooks, ...d.chains]) for (const r of rs) rules.push(`${k} ${r}`);
    }
    return {
      ...this.calc.status(),
      desired: d.stats(),
      ...(this.live ? { kernel: this.dataplane?.status() ?? null } : { rules }),
    };
  }

  async stop(): Promise<void> {
    // Rules stay: nothing is flushed on stop or before the next agent is in sync.
    this.dataplane?.stop();
  }
}

/** Which components the agent runs, from its options (CONTRACT §1 --dataplane, --bgp). */
export async function addComponents(agent: Agent, opts: ComponentOptions): Promise<void> {
  const live = agent.opts.dataplane === 'linux';
  const [calcPolicy, acl] = await Promise.all([import('./calc/policy.js'), import('../acl/index.js')]);
  agent.addComponent(new PolicyComponent(agent, calcPolicy, acl, opts, live));
  let bgp: BgpComponent | undefined;
  if (agent.opts.bgp) {
    const [bgpMod, calcBgp] = await Promise.all([import('../bgp/index.js'), import('./calc/bgp.js')]);
    bgp = new BgpComponent(agent, bgpMod, calcBgp, live);
    agent.addComponent(bgp);
  }
  const [routesMod, calcRoutes] = await Promise.all([import('../routes/index.js'), import('./calc/routes.js')]);
  agent.addComponent(new RoutesComponent(agent, routesMod, calcRoutes, opts, live, bgp));
}
