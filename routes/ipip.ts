// IPIP (`tunl0`): Calico's IPIP pools need the kernel's ipip module. Where it is missing (as on
// this CI kernel) the manager says so clearly — in the log, in status() and as a health reason —
// and everything else keeps working; the tunl0 routes stay in the desired set (waiting for the
// interface), so they appear the moment the module does.
import { logger, type Logger } from '../agent/log.js';
import { NlConn, NlError, errnoName } from './conn.js';
import type { NetHost } from './host.js';
import {
  IFF_UP,
  IFLA_IFNAME,
  IFLA_INFO_KIND,
  IFLA_LINKINFO,
  IFLA_MTU,
  NLM_F_CREATE,
  NLM_F_EXCL,
  NLM_F_REPLACE,
  NLM_F_REQUEST,
  RTM_NEWADDR,
  RTM_NEWLINK,
  decodeLink,
  encodeAddr,
  encodeLinkDump,
  ifinfo,
  type KernelLink,
} from './nl.js';

export interface IpipPlan {
  device: 'tunl0';
  mtu: number;
  /** this node's tunnel address (Node spec.bgp.ipv4IPIPTunnelAddr) */
  tunnelAddr?: string;
  /** the pools that need it */
  pools: string[];
}

export interface IpipStatus {
  needed: boolean;
  available?: boolean;
  /** set when needed and not available, or configuring failed */
  error?: string;
}

/** Whether the kernel can hold an ipip device: tunl0 exists, or one can be made. */
export async function probeIpip(conn: NlConn): Promise<{ available: boolean; reason?: string; link?: KernelLink }> {
  const find = async () =>
    (await conn.dump((w, s) => encodeLinkDump(w, s))).map(decodeLink).find((l) => l?.name === 'tunl0' && (l.kind === 'ipip' || l.kind === undefined));
  const have = await find();
  if (have) return { available: true, link: have };
  try {
    await conn.request((w, seq, ack) => {
      const s = w.begin(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL | ack, seq);
      ifinfo(w, 0, 0, 0);
      w.attrStr(IFLA_IFNAME, 'tunl0');
      const li = w.nestBegin(IFLA_LINKINFO);
      w.attrStr(IFLA_INFO_KIND, 'ipip');
      w.nestEnd(li);
      w.end(s);
    });
  } catch (e) {
    if (!(e instanceof NlError && e.errno === 17)) {
      const why = e instanceof NlError ? `${errnoName(e.errno)} creating an ipip link (kernel module ipip missing)` : String(e);
      return { available: false, reason: why };
    }
  }
  const now = await find();
  return now ? { available: true, link: now } : { available: false, reason: 'tunl0 did not appear' };
}

export class IpipManager {
  private conn?: NlConn;
  private readonly log: Logger;
  private st: IpipStatus = { needed: false };

  constructor(private readonly opts: { host: NetHost; log?: Logger }) {
    this.log = opts.log ?? logger('ipip');
  }

  /** Ensures tunl0 (MTU, up, tunnel address) when a plan is given. Never throws. */
  async apply(plan: IpipPlan | undefined): Promise<IpipStatus> {
    if (!plan) return (this.st = { needed: false });
    try {
      this.conn ??= await NlConn.open(this.opts.host);
      const p = await probeIpip(this.conn);
      if (!p.available) {
        const error = `IPIP pool ${plan.pools.join(', ')} needs the ipip kernel module, not available: ${p.reason}`;
        if (this.st.error !== error) this.log.error(error);
        return (this.st = { needed: true, available: false, error });
      }
      const l = p.link!;
      if (l.mtu !== plan.mtu || (l.flags & IFF_UP) === 0) {
        await this.conn.request((w, seq, ack) => {
          const s = w.begin(RTM_NEWLINK, NLM_F_REQUEST | ack, seq);
          ifinfo(w, l.index, IFF_UP, IFF_UP);
          w.attrU32(IFLA_MTU, plan.mtu);
          w.end(s);
        });
      }
      if (plan.tunnelAddr) {
        await this.conn.request((w, seq, ack) => encodeAddr(w, RTM_NEWADDR, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_REPLACE | ack, seq, l.index, `${plan.tunnelAddr}/32`));
      }
      return (this.st = { needed: true, available: true });
    } catch (e) {
      const error = `IPIP: configuring tunl0 failed: ${(e as Error).message}`;
      this.log.error(error);
      return (this.st = { needed: true, available: this.st.available, error });
    }
  }

  status(): IpipStatus {
    return this.st;
  }

  /** A health reason when IPIP is needed and broken, else undefined. */
  healthReason(): string | undefined {
    return this.st.error;
  }

  stop(): void {
    this.conn?.close();
    this.conn = undefined;
  }
}
