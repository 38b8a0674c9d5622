// The VXLAN devices (Calico's `vxlan.calico` / `vxlan-v6.calico`): device, VTEP address, MTU,
// and per-remote-VTEP static ARP/NDP and FDB entries. The routes through it
// (`<block> via <remote VTEP> dev vxlan.calico onlink`) come from the calculation and are
// programmed by the RouteManager once the device is up.
import { logger, type Logger } from '../agent/log.js';
import { NlConn, NlError, errnoName } from './conn.js';
import type { NetHost } from './host.js';
import type { RouteManager } from './manager.js';
import {
  AF_BRIDGE,
  AF_INET,
  AF_INET6,
  IFF_UP,
  IFLA_ADDRESS,
  IFLA_IFNAME,
  IFLA_INFO_DATA,
  IFLA_INFO_KIND,
  IFLA_LINKINFO,
  IFLA_MTU,
  IFLA_VXLAN_ID,
  IFLA_VXLAN_LEARNING,
  IFLA_VXLAN_LINK,
  IFLA_VXLAN_LOCAL,
  IFLA_VXLAN_LOCAL6,
  IFLA_VXLAN_PORT,
  NLM_F_CREATE,
  NLM_F_EXCL,
  NLM_F_REPLACE,
  NLM_F_REQUEST,
  NTF_SELF,
  NUD_PERMANENT,
  RTM_DELADDR,
  RTM_DELLINK,
  RTM_DELNEIGH,
  RTM_NEWADDR,
  RTM_NEWLINK,
  RTM_NEWNEIGH,
  decodeAddr,
  decodeLink,
  decodeNeigh,
  encodeAddr,
  encodeAddrDump,
  encodeLinkDump,
  encodeNeigh,
  encodeNeighDump,
  ifinfo,
  ipBytes,
  macBytes,
  type KernelAddr,
  type KernelLink,
} from './nl.js';

export interface VxlanPeer {
  node: string;
  /** remote VTEP (tunnel) address */
  vtepIp: string;
  mac: string;
  /** remote node (underlay) address: the FDB destination */
  nodeIp: string;
}

/** What one VXLAN device must look like (computed by agent/calc/routes.ts). */
export interface VxlanPlan {
  device: 'vxlan.calico' | 'vxlan-v6.calico';
  family: 4 | 6;
  vni: number;
  port: number;
  mtu: number;
  /** this node's VTEP address */
  vtepIp: string;
  /** this node's VTEP MAC (Node vxlanTunnelMACAddr); undefined: the kernel picks one */
  mac?: string;
  /** this node's underlay address (the device's local address; its interface is the parent) */
  localIp: string;
  peers: VxlanPeer[];
}

export interface VxlanStatus {
  device: string;
  present: boolean;
  up: boolean;
  mtu?: number;
  vni?: number;
  peers: number;
  error?: string;
}

export interface VxlanManagerOptions {
  host: NetHost;
  log?: Logger;
  /** re-applies when the device disappears or goes down (link events of the route manager) */
  routeManager?: RouteManager;
}

const DEVICES = { 4: 'vxlan.calico', 6: 'vxlan-v6.calico' } as const;

export class VxlanManager {
  private conn?: NlConn;
  private readonly log: Logger;
  private plans: { 4?: VxlanPlan; 6?: VxlanPlan } = {};
  private readonly state = new Map<string, VxlanStatus>();
  private applying?: Promise<void>;
  private again = false;

  constructor(private readonly opts: VxlanManagerOptions) {
    this.log = opts.log ?? logger('vxlan');
    opts.routeManager?.on('link', (l: KernelLink, gone: boolean) => {
      if ((l.name === DEVICES[4] && this.plans[4]) || (l.name === DEVICES[6] && this.plans[6])) {
        if (gone || (l.flags & IFF_UP) === 0) {
          this.log.warn({ device: l.name }, 'VXLAN device vanished or went down; restoring it');
          void this.apply(this.plans).catch(() => undefined);
        }
      }
    });
  }

  /** Makes the devices, addresses, neighbours and FDB entries match the plans (undefined: no device). */
  async apply(plans: { v4?: VxlanPlan; v6?: VxlanPlan } | { 4?: VxlanPlan; 6?: VxlanPlan }): Promise<void> {
    const p = plans as any;
    this.plans = { 4: p.v4 ?? p[4], 6: p.v6 ?? p[6] };
    if (this.applying) {
      this.again = true;
      return this.applying;
    }
    this.applying = (async () => {
      do {
        this.again = false;
        for (const fam of [4, 6] as const) {
          try {
            await this.applyOne(fam, this.plans[fam]);
          } catch (e) {
            const msg = `${DEVICES[fam]}: ${(e as Error).message}`;
            this.log.error(msg);
            this.state.set(DEVICES[fam], { ...(this.state.get(DEVICES[fam]) ?? { device: DEVICES[fam], present: false, up: false, peers: 0 }), error: msg });
          }
        }
      } while (this.again);
    })();
    try {
      await this.applying;
    } finally {
      this.applying = undefined;
    }
  }

  status(): VxlanStatus[] {
    return [...this.state.values()];
  }

  async stop(): Promise<void> {
    await this.applying?.catch(() => undefined);
    this.conn?.close();
    this.conn = undefined;
  }

  private async c(): Promise<NlConn> {
    this.conn ??= await NlConn.open(this.opts.host);
    return this.conn;
  }

  private async links(): Promise<KernelLink[]> {
    const conn = await this.c();
    return (await conn.dump((w, s) => encodeLinkDump(w, s))).map(decodeLink).filter((l): l is KernelLink => !!l);
  }

  private async addrs(family: number): Promise<KernelAddr[]> {
    const conn = await this.c();
    return (await conn.dump((w, s) => encodeAddrDump(w, s, family))).map(decodeAddr).filter((a): a is KernelAddr => !!a);
  }

  private async applyOne(fam: 4 | 6, plan: VxlanPlan | undefined): Promise<void> {
    const name = DEVICES[fam];
    const conn = await this.c();
    let links = await this.links();
    let dev = links.find((l) => l.name === name);
    if (!plan) {
      if (dev) {
        this.log.info({ device: name }, 'VXLAN no longer needed; removing the device');
        await conn.request((w, seq, ack) => {
          const s = w.begin(RTM_DELLINK, NLM_F_REQUEST | ack, seq);
          ifinfo(w, dev!.index, 0, 0);
          w.end(s);
        });
      }
      this.state.delete(name);
      return;
    }
    const family = fam === 4 ? AF_INET : AF_INET6;
    const addrs = await this.addrs(family);
    const parent = addrs.find((a) => a.address === plan.localIp);
    const parentLink = parent ? links.find((l) => l.index === parent.index) : undefined;
    let error: string | undefined;
    if (!parent) error = `no interface holds this node's address ${plan.localIp}; device created without a parent`;

    // wrong kind or parameters: recreate (as Felix does)
    if (
      dev &&
      (dev.kind !== 'vxlan' ||
        dev.vxlan?.vni !== plan.vni ||
        dev.vxlan?.port !== plan.port ||
        dev.vxlan?.local !== plan.localIp ||
        (parent && dev.vxlan?.link !== parent.index))
    ) {
      this.log.info({ device: name, have: dev.vxlan, kind: dev.kind }, 'VXLAN device parameters differ; recreating it');
      await conn.request((w, seq, ack) => {
        const s = w.begin(RTM_DELLINK, NLM_F_REQUEST | ack, seq);
        ifinfo(w, dev!.index, 0, 0);
        w.end(s);
      });
      dev = undefined;
    }
    if (!dev) {
      await conn.request((w, seq, ack) => {
        const s = w.begin(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL | ack, seq);
        ifinfo(w, 0, 0, 0);
        w.attrStr(IFLA_IFNAME, name);
        w.attrU32(IFLA_MTU, plan.mtu);
        if (plan.mac) w.attr(IFLA_ADDRESS, macBytes(plan.mac));
        const li = w.nestBegin(IFLA_LINKINFO);
        w.attrStr(IFLA_INFO_KIND, 'vxlan');
        const d = w.nestBegin(IFLA_INFO_DATA);
        w.attrU32(IFLA_VXLAN_ID, plan.vni);
        w.attr(fam === 4 ? IFLA_VXLAN_LOCAL : IFLA_VXLAN_LOCAL6, ipBytes(plan.localIp));
        if (parent) w.attrU32(IFLA_VXLAN_LINK, parent.index);
        w.attr(IFLA_VXLAN_PORT, [(plan.port >> 8) & 255, plan.port & 255]);
        w.attrU8(IFLA_VXLAN_LEARNING, 0);
        w.nestEnd(d);
        w.nestEnd(li);
        w.end(s);
      });
      this.log.info({ device: name, vni: plan.vni, port: plan.port, mtu: plan.mtu, parent: parentLink?.name }, 'VXLAN device created');
      links = await this.links();
      dev = links.find((l) => l.name === name);
      if (!dev) throw new Error('device not found after creating it');
    }
    // MTU, MAC, up
    const needMtu = dev.mtu !== plan.mtu;
    const needMac = !!plan.mac && dev.mac !== plan.mac.toLowerCase();
    const needUp = (dev.flags & IFF_UP) === 0;
    if (needMtu || needMac || needUp) {
      await conn.request((w, seq, ack) => {
        const s = w.begin(RTM_NEWLINK, NLM_F_REQUEST | ack, seq);
        ifinfo(w, dev!.index, IFF_UP, IFF_UP);
        if (needMtu) w.attrU32(IFLA_MTU, plan.mtu);
        if (needMac) w.attr(IFLA_ADDRESS, macBytes(plan.mac!));
        w.end(s);
      });
    }
    // the VTEP address, and no other address of the family
    const plen = fam === 4 ? 32 : 128;
    const mine = (await this.addrs(family)).filter((a) => a.index === dev!.index && !a.address.startsWith('fe80:'));
    for (const a of mine) {
      if (a.address === plan.vtepIp && a.prefixLen === plen) continue;
      await conn.request((w, seq, ack) => encodeAddr(w, RTM_DELADDR, NLM_F_REQUEST | ack, seq, dev!.index, `${a.address}/${a.prefixLen}`));
    }
    if (!mine.some((a) => a.address === plan.vtepIp && a.prefixLen === plen)) {
      await conn.request((w, seq, ack) => encodeAddr(w, RTM_NEWADDR, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_REPLACE | ack, seq, dev!.index, `${plan.vtepIp}/${plen}`));
    }
    // neighbours (VTEP IP → MAC) and FDB (MAC → node IP)
    const neigh = (await conn.dump((w, s) => encodeNeighDump(w, s, family))).map(decodeNeigh).filter((n) => n && n.index === dev!.index);
    const fdb = (await conn.dump((w, s) => encodeNeighDump(w, s, AF_BRIDGE))).map(decodeNeigh).filter((n) => n && n.index === dev!.index);
    const wantNeigh = new Map(plan.peers.map((p) => [p.vtepIp, p.mac.toLowerCase()]));
    const wantFdb = new Map(plan.peers.map((p) => [p.mac.toLowerCase(), p.nodeIp]));
    for (const n of neigh) {
      if (n!.dst && wantNeigh.get(n!.dst) !== n!.lladdr && (n!.state & NUD_PERMANENT)) {
        await conn
          .request((w, seq, ack) => encodeNeigh(w, RTM_DELNEIGH, NLM_F_REQUEST | ack, seq, { family, index: dev!.index, dst: n!.dst!, lladdr: n!.lladdr ?? '00:00:00:00:00:00', state: 0, flags: 0 }))
          .catch(ignoreGone);
      }
    }
    for (const f of fdb) {
      if (f!.lladdr && f!.dst && wantFdb.get(f!.lladdr) !== f!.dst) {
        await conn
          .request((w, seq, ack) => encodeNeigh(w, RTM_DELNEIGH, NLM_F_REQUEST | ack, seq, { family: AF_BRIDGE, index: dev!.index, dst: f!.dst!, lladdr: f!.lladdr!, state: 0, flags: NTF_SELF }))
          .catch(ignoreGone);
      }
    }
    const haveNeigh = new Map(neigh.filter((n) => n!.state & NUD_PERMANENT).map((n) => [n!.dst, n!.lladdr]));
    const haveFdb = new Map(fdb.map((f) => [f!.lladdr, f!.dst]));
    for (const p of plan.peers) {
      try {
        if (haveNeigh.get(p.vtepIp) !== p.mac.toLowerCase()) {
          await conn.request((w, seq, ack) =>
            encodeNeigh(w, RTM_NEWNEIGH, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_REPLACE | ack, seq, { family, index: dev!.index, dst: p.vtepIp, lladdr: p.mac, state: NUD_PERMANENT, flags: 0 }),
          );
        }
        if (haveFdb.get(p.mac.toLowerCase()) !== p.nodeIp) {
          await conn.request((w, seq, ack) =>
            encodeNeigh(w, RTM_NEWNEIGH, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_REPLACE | ack, seq, { family: AF_BRIDGE, index: dev!.index, dst: p.nodeIp, lladdr: p.mac, state: NUD_PERMANENT, flags: NTF_SELF }),
          );
        }
      } catch (e) {
        error = `peer ${p.node} (${p.vtepIp} ${p.mac} at ${p.nodeIp}): ${(e as Error).message}`;
        this.log.error(error);
      }
    }
    this.state.set(name, { device: name, present: true, up: true, mtu: plan.mtu, vni: plan.vni, peers: plan.peers.length, ...(error ? { error } : {}) });
  }
}

function ignoreGone(e: unknown): void {
  if (e instanceof NlError && (e.errno === 2 || e.errno === 3)) return;
  throw new Error(e instanceof NlError ? errnoName(e.errno) : String(e));
}
