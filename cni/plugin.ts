// ADD / DEL / CHECK of the `petrel` network plugin and the `petrel-ipam` IPAM plugin.
// Any failure midway through ADD undoes what that ADD created (addresses, veth, endpoint).
import { existsSync, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { type CniBackend, type PodInfo, openBackend } from './backend.js';
import { type CniEnv, type NetConf, parseEnv, parseNetConf } from './config.js';
import { GATEWAY4, HOST_LINK_LOCAL6, configureVeth, prepareVeth, randomMac, deleteVeth, exec, linkExists, readInterface } from './dataplane.js';
import { Ipam, IpamError } from './ipam/ipam.js';
import { handleIdFor, hostVethName, workloadEndpointName } from './names.js';
import { CniError, type CniResult, ErrorCode, convertResult, parseResult } from './types.js';

const IN_PROCESS_IPAM = new Set(['petrel-ipam', 'calico-ipam']);

function print(obj: unknown): void {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

const TRACE = !!process.env.PETREL_CNI_TRACE;
/** PETREL_CNI_TRACE=1: phase timings (ms since process start) on stderr. */
export function trace(what: string): void {
  if (TRACE) process.stderr.write(`petrel-cni trace ${performance.now().toFixed(1)} ${what}\n`);
}

function log(conf: NetConf | undefined, msg: string): void {
  const lvl = (conf?.raw.log_level ?? process.env.LOG_LEVEL ?? 'warn').toString().toLowerCase();
  if (lvl === 'debug' || lvl === 'info') process.stderr.write(`petrel-cni: ${msg}\n`);
}

/** Maps a thrown error to the spec's error JSON. */
function toCniError(e: unknown): CniError {
  if (e instanceof CniError) return e;
  const err = e as Error;
  if (err?.name === 'EtcdUnavailable' || err?.name === 'DatastoreUnavailableError' || err?.name === 'K8sUnavailable') {
    return new CniError(ErrorCode.TryAgainLater, 'the datastore is unreachable; try again later', err.message);
  }
  if (err instanceof IpamError) return new CniError(ErrorCode.IpamFailure, `IPAM: ${err.message}`);
  if (err?.name === 'ValidationError') return new CniError(ErrorCode.InvalidConfig, err.message);
  return new CniError(ErrorCode.DatastoreFailure, err?.message ?? String(e), err?.stack ?? '');
}

export async function runPlugin(role: 'net' | 'ipam', cmd: 'ADD' | 'DEL' | 'CHECK', stdin: string, env: NodeJS.ProcessEnv): Promise<number> {
  let version = '1.0.0';
  let conf: NetConf | undefined;
  try {
    try {
      const v = JSON.parse(stdin)?.cniVersion;
      if (typeof v === 'string') version = v;
    } catch {
      /* reported by parseNetConf */
    }
    conf = parseNetConf(stdin, env);
    const e = parseEnv({ ...env, CNI_COMMAND: cmd });
    if (role === 'ipam') {
      const r = await ipamPlugin(conf, e);
      if (r) print(convertResult(r, conf.cniVersion));
      return 0;
    }
    if (cmd === 'ADD') print(convertResult(await cmdAdd(conf, e), conf.cniVersion));
    else if (cmd === 'DEL') await cmdDel(conf, e);
    else await cmdCheck(conf, e);
    return 0;
  } catch (err) {
    const ce = toCniError(err);
    log(conf, `${cmd} failed: ${ce.message} ${ce.details}`);
    print({ cniVersion: version, code: ce.code, msg: ce.message, details: ce.details });
    return 1;
  }
}

interface PodContext {
  k8s: boolean;
  namespace: string;
  pod?: string;
  wepName: string;
  hostIf: string;
  handleId: string;
}

function podContext(conf: NetConf, e: CniEnv): PodContext {
  const k8s = !!(e.podNamespace && e.podName);
  return {
    k8s,
    namespace: e.podNamespace ?? 'default',
    pod: e.podName,
    wepName: workloadEndpointName(conf.nodename, k8s ? 'k8s' : 'cni', k8s ? e.podName! : e.containerId, e.ifname),
    hostIf: hostVethName(conf.interfacePrefix, e.podNamespace, e.podName, e.containerId),
    handleId: handleIdFor(conf.name, e.containerId),
  };
}

function jsonList(text: string | undefined, what: string): string[] | undefined {
  if (text === undefined) return undefined;
  try {
    const v = JSON.parse(text);
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v;
  } catch {
    /* below */
  }
  throw new CniError(ErrorCode.InvalidConfig, `annotation ${what} must be a JSON list of strings, got ${JSON.stringify(text)}`);
}

/** Requested pools and fixed addresses: pod annotations over namespace annotations over the config. */
function ipamRequest(conf: NetConf, pod: PodInfo | undefined) {
  const ann = (k: string) => pod?.annotations[`cni.projectcalico.org/${k}`] ?? pod?.namespaceAnnotations[`cni.projectcalico.org/${k}`];
  const pools4 = jsonList(ann('ipv4pools'), 'cni.projectcalico.org/ipv4pools') ?? conf.ipam.ipv4Pools;
  const pools6 = jsonList(ann('ipv6pools'), 'cni.projectcalico.org/ipv6pools') ?? conf.ipam.ipv6Pools;
  const ipAddrs = jsonList(pod?.annotations['cni.projectcalico.org/ipAddrs'], 'cni.projectcalico.org/ipAddrs');
  if (ipAddrs) {
    if (ipAddrs.filter((a) => !a.includes(':')).length > 1 || ipAddrs.filter((a) => a.includes(':')).length > 1) {
      throw new CniError(ErrorCode.InvalidConfig, 'annotation cni.projectcalico.org/ipAddrs may hold at most one IPv4 and one IPv6 address');
    }
  }
  return { pools4, pools6, ipAddrs };
}

function ipamResult(ips: string[]): CniResult {
  return {
    cniVersion: '1.0.0',
    ips: ips.map((ip) => ({ address: `${ip}/${ip.includes(':') ? 128 : 32}` })),
    routes: [...(ips.some((ip) => !ip.includes(':')) ? [{ dst: '0.0.0.0/0' }] : []), ...(ips.some((ip) => ip.includes(':')) ? [{ dst: '::/0' }] : [])],
  };
}

/** Finds a delegated plugin binary on CNI_PATH. */
function findPlugin(type: string, path: string[]): string {
  if (!/^[A-Za-z0-9._-]+$/.test(type)) throw new CniError(ErrorCode.InvalidConfig, `invalid plugin type ${JSON.stringify(type)}`);
  for (const dir of path) {
    const p = join(dir, type);
    try {
      if (statSync(p).isFile()) return p;
    } catch {
      /* next */
    }
  }
  throw new CniError(ErrorCode.InvalidConfig, `failed to find plugin ${JSON.stringify(type)} in CNI_PATH ${JSON.stringify(path.join(delimiter))}`);
}

/** Runs the configured IPAM plugin as a delegate (same stdin and env, CNI_COMMAND overridden). */
async function delegateIpam(conf: NetConf, e: CniEnv, cmd: 'ADD' | 'DEL' | 'CHECK'): Promise<CniResult | undefined> {
  const bin = findPlugin(conf.ipam.type, e.path);
  const { spawn } = await import('node:child_process');
  const r = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve, reject) => {
    const p = spawn(bin, [], { env: { ...process.env, CNI_COMMAND: cmd }, stdio: ['pipe', 'pipe', 'inherit'] });
    let stdout = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr: '' }));
    p.stdin.end(JSON.stringify(conf.raw));
  });
  if (r.code !== 0) {
    let err: any;
    try {
      err = JSON.parse(r.stdout);
    } catch {
      err = { code: ErrorCode.IpamFailure, msg: `IPAM plugin ${conf.ipam.type} failed`, details: r.stdout };
    }
    throw new CniError(err.code ?? ErrorCode.IpamFailure, `IPAM plugin ${conf.ipam.type}: ${err.msg ?? 'failed'}`, err.details ?? '');
  }
  if (cmd !== 'ADD') return undefined;
  try {
    return parseResult(JSON.parse(r.stdout));
  } catch {
    throw new CniError(ErrorCode.DecodingFailure, `IPAM plugin ${conf.ipam.type} printed no valid result`, r.stdout.slice(0, 500));
  }
}

async function withBackend<T>(conf: NetConf, fn: (b: CniBackend) => Promise<T>): Promise<T> {
  const b = await openBackend(conf);
  try {
    return await fn(b);
  } finally {
    await b.close().catch(() => undefined);
  }
}

async function assignInProcess(conf: NetConf, e: CniEnv, b: CniBackend, ctx: PodContext, pod: PodInfo | undefined): Promise<{ ips: string[]; fresh: string[] }> {
  const ipam = new Ipam(b.store);
  const req = ipamRequest(conf, pod);
  const ips = await ipam.assign({
    handleId: ctx.handleId,
    host: conf.nodename,
    attrs: {
      node: conf.nodename,
      ...(ctx.k8s ? { namespace: ctx.namespace, pod: ctx.pod! } : {}),
      timestamp: new Date().toISOString(),
    },
    num4: conf.ipam.assignIpv4 ? 1 : 0,
    num6: conf.ipam.assignIpv6 ? 1 : 0,
    pools4: req.pools4,
    pools6: req.pools6,
    ips: req.ipAddrs,
  });
  return { ips, fresh: ipam.lastAssigned };
}

/** The `petrel-ipam` plugin on its own (another main plugin delegating to it). */
async function ipamPlugin(conf: NetConf, e: CniEnv): Promise<CniResult | undefined> {
  const ctx = podContext(conf, e);
  return withBackend(conf, async (b) => {
    if (e.command === 'ADD') {
      const pod = ctx.k8s ? await b.podInfo(ctx.namespace, ctx.pod!) : undefined;
      const { ips } = await assignInProcess(conf, e, b, ctx, pod);
      return ipamResult(ips);
    }
    if (e.command === 'DEL') {
      await new Ipam(b.store).releaseByHandle(ctx.handleId, { emptyBlockGraceMs: conf.ipam.emptyBlockGraceSeconds * 1000 });
      if (ctx.k8s) await new Ipam(b.store).releaseByHandle(`${ctx.namespace}.${ctx.pod}`);
      return undefined;
    }
    const have = await new Ipam(b.store).ipsOfHandle(ctx.handleId);
    if (have.length === 0) throw new CniError(ErrorCode.CheckFailed, `no addresses are assigned to ${ctx.handleId}`);
    return undefined;
  });
}

async function cmdAdd(conf: NetConf, e: CniEnv): Promise<CniResult> {
  if (!existsSync(e.netns)) throw new CniError(ErrorCode.UnknownContainer, `network namespace ${e.netns} does not exist`);
  const ctx = podContext(conf, e);
  const inProcess = IN_PROCESS_IPAM.has(conf.ipam.type);
  trace('ADD start');
  // The pair is created while the datastore client loads and IPAM works (a separate process:
  // real overlap); every failure below removes it again.
  // When the pod already has an interface (a repeated ADD, a new sandbox of the same pod), it is
  // replaced only after IPAM has succeeded, so a failing ADD leaves it as it was.
  const mac = randomMac();
  const replacing = linkExists(ctx.hostIf);
  let startPrep: () => void = () => undefined;
  const gate = replacing ? new Promise<void>((r) => (startPrep = r)) : Promise.resolve();
  const prep = gate.then(() => prepareVeth({ hostIf: ctx.hostIf, contIf: e.ifname, netns: e.netns, mtu: conf.mtu, mac })).then(() => trace('veth prepared'));
  prep.catch(() => undefined);
  let started = !replacing;
  const dropVeth = async () => {
    if (!started) return;
    if (await prep.then(() => true, () => false)) await deleteVeth(ctx.hostIf, e.ifname, e.netns).catch(() => undefined);
  };
  try {
  return await withBackend(conf, async (b) => {
    let pod: PodInfo | undefined;
    try {
      pod = ctx.k8s ? await b.podInfo(ctx.namespace, ctx.pod!) : undefined;
      if (ctx.k8s && conf.datastoreType === 'kubernetes' && !pod) {
        throw new CniError(ErrorCode.UnknownContainer, `pod ${ctx.namespace}/${ctx.pod} does not exist`);
      }
    } catch (err) {
      await dropVeth();
      throw err;
    }
    trace('pod info');
    let ips: string[] = [];
    let fresh: string[] = [];
    const assign = (async () => {
      if (inProcess) {
        ({ ips, fresh } = await assignInProcess(conf, e, b, ctx, pod));
      } else {
        const r = await delegateIpam(conf, e, 'ADD');
        ips = (r?.ips ?? []).map((x) => x.address.split('/')[0]);
        fresh = ips;
        if (!ips.length) throw new CniError(ErrorCode.IpamFailure, `IPAM plugin ${conf.ipam.type} returned no addresses`);
      }
    })();
    const undoIpam = async () => {
      if (inProcess) {
        if (fresh.length) await new Ipam(b.store).releaseIps(fresh).catch(() => undefined);
      } else await delegateIpam(conf, e, 'DEL').catch(() => undefined);
    };
    if (replacing) {
      if (await assign.then(() => true, () => false)) {
        started = true;
        startPrep();
      }
    }
    const [p1, a1] = await Promise.allSettled([started ? prep : Promise.resolve(), assign]);
    trace('ipam assigned');
    if (p1.status === 'rejected' || a1.status === 'rejected') {
      if (p1.status === 'fulfilled' && started) await deleteVeth(ctx.hostIf, e.ifname, e.netns).catch(() => undefined);
      if (a1.status === 'fulfilled') await undoIpam();
      throw a1.status === 'rejected' ? a1.reason : (p1 as PromiseRejectedResult).reason;
    }
    // The interface and the endpoint do not depend on each other: both at once, both undone on failure.
    const [veth, wep] = await Promise.allSettled([
      configureVeth({ hostIf: ctx.hostIf, contIf: e.ifname, netns: e.netns, ips, routeProtocol: conf.routeProtocol }),
      b.writeEndpoint({
        node: conf.nodename,
        namespace: ctx.namespace,
        name: ctx.wepName,
        pod: ctx.pod,
        containerId: e.containerId,
        ifname: e.ifname,
        hostIf: ctx.hostIf,
        ips,
        mac,
        pod_: pod,
      }),
    ]);
    if (veth.status === 'rejected' || wep.status === 'rejected') {
      await deleteVeth(ctx.hostIf, e.ifname, e.netns).catch(() => undefined);
      if (wep.status === 'fulfilled') await b.removeEndpoint(ctx.namespace, ctx.wepName, ctx.pod, e.containerId).catch(() => undefined);
      await undoIpam();
      throw veth.status === 'rejected' ? veth.reason : (wep as PromiseRejectedResult).reason;
    }
    trace('endpoint written');
    log(conf, `ADD ${e.containerId}: ${ctx.hostIf} ${ips.join(',')}`);
    const prev = conf.prevResult;
    const base = prev?.interfaces?.length ?? 0;
    const result: CniResult = {
      cniVersion: '1.0.0',
      interfaces: [...(prev?.interfaces ?? []), { name: ctx.hostIf, mac: 'ee:ee:ee:ee:ee:ee' }, { name: e.ifname, mac, sandbox: e.netns }],
      ips: [...(prev?.ips ?? []), ...ips.map((ip) => ({ address: `${ip}/${ip.includes(':') ? 128 : 32}`, interface: base + 1 }))],
      routes: [
        ...(prev?.routes ?? []),
        ...(ips.some((ip) => !ip.includes(':')) ? [{ dst: '0.0.0.0/0', gw: GATEWAY4 }] : []),
        ...(ips.some((ip) => ip.includes(':')) ? [{ dst: '::/0', gw: HOST_LINK_LOCAL6 }] : []),
      ],
      dns: prev?.dns ?? {},
    };
    return result;
  });
  } catch (err) {
    await dropVeth();
    throw err;
  }
}

async function cmdDel(conf: NetConf, e: CniEnv): Promise<void> {
  const ctx = podContext(conf, e);
  trace('DEL start');
  // The kernel side and the datastore side are independent: remove both at once.
  const dp = deleteVeth(ctx.hostIf, e.ifname, e.netns || undefined).then(() => trace('veth deleted'));
  const ds = withBackend(conf, async (b) => {
    const wep = b.removeEndpoint(ctx.namespace, ctx.wepName, ctx.pod, e.containerId).then(() => trace('endpoint removed'));
    const ipam = IN_PROCESS_IPAM.has(conf.ipam.type)
      ? new Ipam(b.store).releaseByHandle(ctx.handleId, { emptyBlockGraceMs: conf.ipam.emptyBlockGraceSeconds * 1000 })
      : delegateIpam(conf, e, 'DEL');
    const [w, i] = await Promise.allSettled([wep, ipam.then(() => trace('ipam released'))]);
    if (w.status === 'rejected') throw w.reason;
    if (i.status === 'rejected') throw i.reason;
  });
  const [r1, r2] = await Promise.allSettled([dp, ds]);
  if (r2.status === 'rejected') throw r2.reason;
  if (r1.status === 'rejected') throw r1.reason;
}

async function cmdCheck(conf: NetConf, e: CniEnv): Promise<void> {
  const ctx = podContext(conf, e);
  if (!existsSync(e.netns)) throw new CniError(ErrorCode.UnknownContainer, `network namespace ${e.netns} does not exist`);
  if (!linkExists(ctx.hostIf)) throw new CniError(ErrorCode.CheckFailed, `host interface ${ctx.hostIf} is missing`);
  const st = await readInterface(e.ifname, e.netns);
  if (!st.exists) throw new CniError(ErrorCode.CheckFailed, `interface ${e.ifname} is missing in ${e.netns}`);
  if (!st.up) throw new CniError(ErrorCode.CheckFailed, `interface ${e.ifname} in ${e.netns} is down`);
  let want = (conf.prevResult?.ips ?? []).map((ip) => ip.address);
  if (!want.length && IN_PROCESS_IPAM.has(conf.ipam.type)) {
    want = (await withBackend(conf, (b) => new Ipam(b.store).ipsOfHandle(ctx.handleId))).map((ip) => `${ip}/${ip.includes(':') ? 128 : 32}`);
  }
  if (!want.length) throw new CniError(ErrorCode.CheckFailed, `no addresses known for ${e.containerId}`);
  for (const a of want) {
    if (!st.addrs.includes(a)) throw new CniError(ErrorCode.CheckFailed, `interface ${e.ifname} lacks address ${a}`, `has: ${st.addrs.join(', ')}`);
  }
  const v4 = want.some((a) => !a.includes(':'));
  const v6 = want.some((a) => a.includes(':'));
  if (v4 && !st.routes.some((r) => r.dst === 'default' && r.gateway === GATEWAY4)) throw new CniError(ErrorCode.CheckFailed, `default route via ${GATEWAY4} is missing in the container`);
  if (v6 && !st.routes.some((r) => r.dst === 'default' && r.gateway === HOST_LINK_LOCAL6)) throw new CniError(ErrorCode.CheckFailed, `IPv6 default route via ${HOST_LINK_LOCAL6} is missing in the container`);
  const host = await exec('ip', ['-j', 'route', 'show', 'dev', ctx.hostIf]);
  const hostRoutes: string[] = (() => {
    try {
      return JSON.parse(host.stdout).map((r: any) => r.dst);
    } catch {
      return [];
    }
  })();
  const host6 = v6 ? await exec('ip', ['-j', '-6', 'route', 'show', 'dev', ctx.hostIf]) : undefined;
  if (host6) {
    try {
      hostRoutes.push(...JSON.parse(host6.stdout).map((r: any) => r.dst));
    } catch {
      /* none */
    }
  }
  for (const a of want) {
    const [ip] = a.split('/');
    if (!hostRoutes.includes(ip) && !hostRoutes.includes(a)) throw new CniError(ErrorCode.CheckFailed, `host route to ${a} via ${ctx.hostIf} is missing`);
  }
}
