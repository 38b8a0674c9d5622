// The pod's interface, configured as Calico's CNI plugin does (dataplane_linux.go): a veth pair,
// host side `cali…` with MAC ee:ee:ee:ee:ee:ee and no address, container side CNI_IFNAME with
// the pod's /32 (/128), 169.254.1.1 as link-local gateway (IPv6: the host veth's fe80 address),
// and a host route `<ip>/32 dev cali…` so traffic reaches the pod before the agent reacts.
// Two execs per ADD: one `ip -batch` in the host, one `ip -batch` inside the pod's netns.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { CniError, ErrorCode } from './types.js';

export const HOST_MAC = 'ee:ee:ee:ee:ee:ee';
/** Link-local address the kernel derives (EUI-64) from the host MAC: the pods' IPv6 gateway. */
export const HOST_LINK_LOCAL6 = 'fe80::ecee:eeff:feee:eeee';
export const GATEWAY4 = '169.254.1.1';

export function exec(cmd: string, args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    p.stdin.on('error', () => undefined);
    p.stdin.end(input ?? '');
  });
}

async function batch(lines: string[], netns?: string, pre?: string): Promise<void> {
  const named = netns?.match(/^\/(?:var\/)?run\/netns\/([^/]+)$/)?.[1];
  const r = netns
    ? named && !pre
      ? await exec('ip', ['-n', named, '-batch', '-'], lines.join('\n') + '\n')
      : pre
      ? await exec('nsenter', [`--net=${netns}`, 'sh', '-c', `${pre}; exec ip -batch -`], lines.join('\n') + '\n')
      : await exec('nsenter', [`--net=${netns}`, 'ip', '-batch', '-'], lines.join('\n') + '\n')
    : await exec('ip', ['-batch', '-'], lines.join('\n') + '\n');
  if (r.code !== 0) {
    throw new CniError(ErrorCode.DataplaneFailure, `configuring ${netns ? 'the container' : 'the host'} side failed`, r.stderr.trim() || `ip exited ${r.code}`);
  }
}

export function linkExists(name: string): boolean {
  return existsSync(`/sys/class/net/${name}`);
}

function sysctl(path: string, value: string): void {
  try {
    writeFileSync(`/proc/sys/net/${path}`, value);
  } catch {
    /* absent (e.g. IPv6 disabled on the host): not fatal, as in Calico */
  }
}

export function randomMac(): string {
  const b = randomBytes(6);
  b[0] = (b[0] & 0xfe) | 0x02; // unicast, locally administered
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

export interface VethSpec {
  hostIf: string;
  contIf: string;
  netns: string;
  mtu: number;
  /** container-side MAC (random when absent) */
  mac?: string;
}

/**
 * Step 1 of ADD, run while IPAM works: the pair exists and is up, the host side carries MAC
 * ee:ee:ee:ee:ee:ee, its sysctls, and (for IPv6 pods) the link-local gateway
 * fe80::ecee:eeff:feee:eeee set without DAD so it answers at once. An old pair is replaced.
 */
export async function prepareVeth(s: VethSpec): Promise<string> {
  const mac = s.mac ?? randomMac();
  if (linkExists(s.hostIf)) await exec('ip', ['link', 'del', s.hostIf]);
  await batch([
    `link add ${s.hostIf} mtu ${s.mtu} address ${HOST_MAC} type veth peer name ${s.contIf} mtu ${s.mtu} address ${mac} netns ${s.netns}`,
    `link set ${s.hostIf} addrgenmode none`,
    `addr add ${HOST_LINK_LOCAL6}/64 dev ${s.hostIf} nodad`,
    `link set ${s.hostIf} up`,
  ]).catch(async (e) => {
    await exec('ip', ['link', 'del', s.hostIf]).catch(() => undefined);
    throw e;
  });
  sysctl(`ipv4/conf/${s.hostIf}/route_localnet`, '1');
  sysctl(`ipv4/conf/${s.hostIf}/proxy_arp`, '1');
  sysctl(`ipv4/neigh/${s.hostIf}/proxy_delay`, '0');
  sysctl(`ipv4/conf/${s.hostIf}/forwarding`, '1');
  sysctl(`ipv6/conf/${s.hostIf}/accept_dad`, '0');
  sysctl(`ipv6/conf/${s.hostIf}/proxy_ndp`, '1');
  sysctl(`ipv6/conf/${s.hostIf}/forwarding`, '1');
  sysctl(`ipv6/conf/${s.hostIf}/accept_ra`, '0');
  return mac;
}

/**
 * Step 2 of ADD, once the addresses are known: the host routes `<ip>/32 dev cali…` and the pod
 * side (addresses, up, 169.254.1.1 / fe80 gateway and default routes), both at once.
 */
export async function configureVeth(s: { hostIf: string; contIf: string; netns: string; ips: string[]; routeProtocol: number }): Promise<void> {
  const v4 = s.ips.filter((ip) => !ip.includes(':'));
  const v6 = s.ips.filter((ip) => ip.includes(':'));
  const cont = [
    ...v4.map((ip) => `addr add ${ip}/32 dev ${s.contIf}`),
    ...v6.map((ip) => `addr add ${ip}/128 dev ${s.contIf} nodad`),
    `link set ${s.contIf} up`,
    ...(v4.length ? [`route add ${GATEWAY4}/32 dev ${s.contIf} scope link`, `route add 0.0.0.0/0 via ${GATEWAY4} dev ${s.contIf}`] : []),
    ...(v6.length ? [`route add ::/0 via ${HOST_LINK_LOCAL6} dev ${s.contIf}`] : []),
  ];
  const pre = v6.length
    ? `for f in all default lo; do echo 0 > /proc/sys/net/ipv6/conf/$f/disable_ipv6; done 2>/dev/null; echo 0 > /proc/sys/net/ipv6/conf/${s.contIf}/accept_dad 2>/dev/null; true`
    : undefined;
  const host = [
    ...v4.map((ip) => `route replace ${ip}/32 dev ${s.hostIf} scope link proto ${s.routeProtocol}`),
    ...v6.map((ip) => `route replace ${ip}/128 dev ${s.hostIf} proto ${s.routeProtocol}`),
  ];
  const [h, c] = await Promise.allSettled([batch(host), batch(cont, s.netns, pre)]);
  if (h.status === 'rejected') throw h.reason;
  if (c.status === 'rejected') throw c.reason;
}

/** Both steps (tests, and callers that already hold the addresses). Undoes itself on failure. */
export async function createVeth(s: VethSpec & { ips: string[]; routeProtocol: number }): Promise<string> {
  const mac = await prepareVeth(s);
  try {
    await configureVeth(s);
    return mac;
  } catch (e) {
    await exec('ip', ['link', 'del', s.hostIf]).catch(() => undefined);
    throw e;
  }
}

/**
 * Removes the pod's interface from inside its namespace (which removes the pair and with it the
 * host route). Never by the host-side name: after a sandbox is re-created the same name belongs
 * to the new sandbox, and a late DEL for the old one must not cut the new one off. A namespace
 * that is gone took the pair with it; no namespace given leaves the host side alone.
 */
export async function deleteVeth(_hostIf: string, contIf: string, netns: string | undefined): Promise<void> {
  if (!netns || !existsSync(netns)) return;
  const named = netns.match(/^\/(?:var\/)?run\/netns\/([^/]+)$/)?.[1];
  const r = named ? await exec('ip', ['-n', named, 'link', 'del', contIf]) : await exec('nsenter', [`--net=${netns}`, 'ip', 'link', 'del', contIf]);
  if (r.code !== 0 && !/Cannot find device|does not exist|No such device/i.test(r.stderr)) {
    throw new CniError(ErrorCode.DataplaneFailure, `deleting ${contIf} in ${netns} failed`, r.stderr.trim());
  }
}

export interface InterfaceState {
  exists: boolean;
  up: boolean;
  mac?: string;
  addrs: string[];
  routes: { dst: string; gateway?: string; dev?: string }[];
}

/** Reads an interface's state in a netns (or the host) in one exec. */
export async function readInterface(ifname: string, netns?: string): Promise<InterfaceState> {
  const script = `ip -j link show dev ${ifname} 2>/dev/null || echo null; echo '#'; ip -j addr show dev ${ifname} 2>/dev/null || echo null; echo '#'; ip -j route show 2>/dev/null; echo '#'; ip -j -6 route show 2>/dev/null`;
  const r = netns ? await exec('nsenter', [`--net=${netns}`, 'sh', '-c', script]) : await exec('sh', ['-c', script]);
  const parts = r.stdout.split('#\n');
  const j = (i: number) => {
    try {
      return JSON.parse(parts[i] ?? 'null');
    } catch {
      return null;
    }
  };
  const link = j(0)?.[0];
  if (!link) return { exists: false, up: false, addrs: [], routes: [] };
  const addrs = (j(1)?.[0]?.addr_info ?? []).filter((a: any) => a.scope !== 'link').map((a: any) => `${a.local}/${a.prefixlen}`);
  const routes = [...(j(2) ?? []), ...(j(3) ?? [])].map((x: any) => ({ dst: x.dst, gateway: x.gateway, dev: x.dev }));
  return { exists: true, up: (link.flags ?? []).includes('UP'), mac: link.address, addrs, routes };
}
