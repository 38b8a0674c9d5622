// Workload host-side interfaces (found by name prefix, default `cali`) configured the way Felix
// does it: proxy ARP with no delay (the pod's 169.254.1.1 gateway is answered by the host),
// forwarding, loose rp_filter, route_localnet; IPv6 proxy_ndp and forwarding; accept_ra=0.
import { logger, type Logger } from '../agent/log.js';
import type { NetHost } from './host.js';
import type { RouteManager } from './manager.js';
import { IFF_UP, type KernelLink } from './nl.js';

export interface InterfaceManagerOptions {
  host: NetHost;
  routeManager: RouteManager;
  /** workload interface name prefix(es): `cali`, or Calico's comma-separated list (`cali,tap`) */
  interfacePrefix?: string | string[];
  /** also configure IPv6 (default true) */
  ipv6?: boolean;
  log?: Logger;
}

export interface InterfaceStatus {
  configured: number;
  errors: { iface: string; error: string }[];
}

/** The sysctls Felix writes for one workload interface, as [path, value]. */
export function workloadSysctls(iface: string, ipv6 = true): [string, string][] {
  const n = iface.replace(/\./g, '/');
  const out: [string, string][] = [
    [`net/ipv4/conf/${n}/route_localnet`, '1'],
    [`net/ipv4/neigh/${n}/proxy_delay`, '0'],
    [`net/ipv4/conf/${n}/proxy_arp`, '1'],
    [`net/ipv4/conf/${n}/forwarding`, '1'],
    [`net/ipv4/conf/${n}/rp_filter`, '2'],
  ];
  if (ipv6) {
    out.push([`net/ipv6/conf/${n}/accept_ra`, '0'], [`net/ipv6/conf/${n}/proxy_ndp`, '1'], [`net/ipv6/conf/${n}/forwarding`, '1']);
  }
  return out;
}

export class InterfaceManager {
  private readonly log: Logger;
  private readonly prefixes: string[];
  private readonly done = new Map<string, number>(); // name → ifindex configured
  private readonly errors = new Map<string, string>();
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly opts: InterfaceManagerOptions) {
    this.log = opts.log ?? logger('interfaces');
    const p = opts.interfacePrefix ?? opts.routeManager.interfacePrefix;
    this.prefixes = (Array.isArray(p) ? p : p.split(',')).map((x) => x.trim()).filter(Boolean);
    opts.routeManager.on('link', (l: KernelLink, gone: boolean) => {
      if (!this.isWorkload(l.name)) return;
      if (gone) {
        this.done.delete(l.name);
        this.errors.delete(l.name);
        return;
      }
      this.enqueue(l);
    });
  }

  /** Global forwarding, then every existing workload interface. Call after routeManager.start(). */
  async start(): Promise<void> {
    const ipv6 = this.opts.ipv6 !== false;
    for (const [p, v] of [['net/ipv4/ip_forward', '1'], ...(ipv6 ? [['net/ipv6/conf/all/forwarding', '1']] : [])] as [string, string][]) {
      await this.opts.host.writeSysctl(p, v).catch((e) => this.log.error({ err: (e as Error).message }, `cannot set ${p}`));
    }
    for (const l of this.opts.routeManager.allLinks()) if (this.isWorkload(l.name)) this.enqueue(l);
    await this.settled();
  }

  settled(): Promise<void> {
    return this.chain;
  }

  status(): InterfaceStatus {
    return { configured: this.done.size, errors: [...this.errors].map(([iface, error]) => ({ iface, error })) };
  }

  /** True when `name` is a workload interface (matches one of the prefixes). */
  isWorkload(name: string): boolean {
    return this.prefixes.some((p) => name.startsWith(p));
  }

  private enqueue(l: KernelLink): void {
    if (this.done.get(l.name) === l.index) return;
    this.chain = this.chain
      .then(() => this.configure(l))
      .catch((e) => {
        this.errors.set(l.name, (e as Error).message);
        this.log.error({ iface: l.name, err: (e as Error).message }, 'configuring a workload interface failed');
      });
  }

  private async configure(l: KernelLink): Promise<void> {
    if (this.done.get(l.name) === l.index) return;
    const ipv6 = this.opts.ipv6 !== false && (await this.opts.host.readSysctl(`net/ipv6/conf/${l.name}/forwarding`)) !== undefined;
    const failed: string[] = [];
    for (const [p, v] of workloadSysctls(l.name, ipv6)) {
      try {
        await this.opts.host.writeSysctl(p, v);
      } catch (e) {
        failed.push(`${p}: ${(e as Error).message}`);
      }
    }
    if (failed.length) {
      // the interface may have gone meanwhile; its next appearance retries
      this.errors.set(l.name, failed.join('; '));
      this.log.warn({ iface: l.name, failed }, 'workload interface not fully configured');
      return;
    }
    this.errors.delete(l.name);
    this.done.set(l.name, l.index);
    this.log.debug({ iface: l.name, up: (l.flags & IFF_UP) !== 0 }, 'workload interface configured');
  }
}
