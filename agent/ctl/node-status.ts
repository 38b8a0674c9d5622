// `petrel ctl node status`: what `calicoctl node status` prints, from the agent's GET /status
// (CONTRACT §2) instead of BIRD's control socket.

import { CtlExit, EXIT_BAD_INPUT, EXIT_UNREACHABLE, io } from './io.js';
import { boxTable } from './table.js';

export interface StatusPeer {
  address: string;
  asNumber?: number | string;
  type?: string;
  state?: string;
  since?: string | number;
  info?: string;
  prefixesReceived?: number;
  prefixesAdvertised?: number;
}

export interface AgentStatus {
  node?: string;
  datastore?: { type?: string; inSync?: boolean; resources?: Record<string, number>; errors?: { source: string; message: string }[] };
  bgp?: { asNumber?: number | string; routerId?: string; enabled?: boolean; peers?: StatusPeer[] };
  dataplane?: Record<string, unknown>;
  [k: string]: unknown;
}

const PEER_TYPES: Record<string, string> = {
  'node-mesh': 'node-to-node mesh',
  global: 'global',
  'node-specific': 'node specific',
  'rr-client': 'rr client',
};

function pad2(n: number): string {
  return String(n).padStart(2, '0');
}

/** calicoctl shows BIRD's "since": the time of day when today, else the date. */
export function formatSince(since: string | number | undefined, now = new Date()): string {
  if (since === undefined || since === null || since === '') return '';
  const d = new Date(typeof since === 'number' && since < 1e12 ? since * 1000 : since);
  if (Number.isNaN(d.getTime())) return String(since);
  if (now.getTime() - d.getTime() < 24 * 3600 * 1000 && d.toDateString() === now.toDateString()) {
    return `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
  }
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())}`;
}

function isV6(addr: string): boolean {
  return addr.includes(':');
}

function peerTable(peers: StatusPeer[], family: 'IPv4' | 'IPv6'): string {
  const mine = peers.filter((p) => (family === 'IPv6') === isV6(String(p.address ?? '')));
  let out = `${family} BGP status\n`;
  if (mine.length === 0) return `${out}No ${family} peers found.\n`;
  const rows = mine
    .slice()
    .sort((a, b) => String(a.address).localeCompare(String(b.address), 'en', { numeric: true }))
    .map((p) => {
      const established = p.state === 'Established';
      const info = p.info && p.info !== p.state ? `${p.state ?? ''} ${p.info}`.trim() : (p.state ?? '');
      return [
        String(p.address),
        PEER_TYPES[p.type ?? ''] ?? p.type ?? '',
        established ? 'up' : p.state === 'Idle' && /disabled|admin/i.test(p.info ?? '') ? 'down' : 'start',
        formatSince(p.since),
        info,
        p.prefixesReceived === undefined ? '' : String(p.prefixesReceived),
        p.prefixesAdvertised === undefined ? '' : String(p.prefixesAdvertised),
      ];
    });
  out += boxTable(['PEER ADDRESS', 'PEER TYPE', 'STATE', 'SINCE', 'INFO', 'PREFIXES IN', 'PREFIXES OUT'], rows);
  return out;
}

/** The text `node status` prints for a /status document. */
export function renderNodeStatus(st: AgentStatus, opts: { detail?: boolean; header?: string } = {}): string {
  let out = opts.header ?? 'Petrel process is running.\n\n';
  const peers = st.bgp?.peers ?? [];
  if (st.bgp?.enabled === false) out += 'BGP is disabled on this node (policy-only mode).\n';
  else {
    out += `${peerTable(peers, 'IPv4')}\n`;
    out += peerTable(peers, 'IPv6');
  }
  if (opts.detail) {
    out += '\n';
    out += `Node: ${st.node ?? '?'}\n`;
    if (st.bgp) out += `BGP: AS ${st.bgp.asNumber ?? '?'}, router ID ${st.bgp.routerId ?? '?'}\n`;
    const ds = st.datastore;
    if (ds) {
      out += `Datastore: ${ds.type ?? '?'}, ${ds.inSync ? 'in sync' : 'NOT in sync'}\n`;
      const counts = Object.entries(ds.resources ?? {}).sort(([a], [b]) => a.localeCompare(b));
      if (counts.length) out += boxTable(['KIND', 'COUNT'], counts.map(([k, n]) => [k, String(n)]));
      for (const e of ds.errors ?? []) out += `  error: ${e.source}: ${e.message}\n`;
    }
    if (st.dataplane) out += `Dataplane: ${JSON.stringify(st.dataplane)}\n`;
  }
  return out;
}

export async function fetchStatus(agentUrl: string, timeoutMs = 5000): Promise<AgentStatus> {
  const url = `${agentUrl.replace(/\/+$/, '')}/status`;
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  } catch (e) {
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    throw new CtlExit(
      EXIT_UNREACHABLE,
      `Petrel process is not running (cannot reach the agent at ${url}: ${cause?.code ?? cause?.message ?? (e as Error).message}).`,
    );
  }
  if (!res.ok) throw new CtlExit(EXIT_UNREACHABLE, `the agent at ${url} answered ${res.status} ${res.statusText}`);
  try {
    return (await res.json()) as AgentStatus;
  } catch (e) {
    throw new CtlExit(EXIT_BAD_INPUT, `the agent at ${url} sent invalid JSON: ${(e as Error).message}`);
  }
}

/** `node status --all`: every node's last report, from the datastore (etcd: a key under a lease; Kubernetes: a ConfigMap per node). */
async function allNodes(argv: Record<string, unknown>): Promise<void> {
  const { withDatastore } = await import('./resources.js');
  const records = await withDatastore(argv, 'node status --all', async (ds) => {
    if (!ds.listNodeStatuses) {
      throw new CtlExit(
        EXIT_BAD_INPUT,
        `node status --all: the ${ds.type} datastore does not hold node statuses (agents report them to etcdv3 and kubernetes); run node status on each node`,
      );
    }
    return await ds.listNodeStatuses();
  });
  if (argv.output === 'json') {
    io().out(`${JSON.stringify(records, null, 2)}\n`);
    return;
  }
  if (records.length === 0) {
    io().out('No node has reported its status (agents report every few seconds while running).\n');
    return;
  }
  let out = '';
  for (const r of records) {
    const st = (r.status ?? {}) as AgentStatus & { ready?: boolean };
    const ready = st.ready === undefined ? '' : st.ready ? ', ready' : ', NOT ready';
    out += renderNodeStatus(st, { detail: Boolean(argv.detail), header: `Node ${r.node} (reported ${r.reportedAt ?? '?'}${ready})\n\n` });
    out += '\n';
  }
  io().out(out);
}

export async function nodeStatusVerb(argv: Record<string, unknown>): Promise<void> {
  if (argv.all) return await allNodes(argv);
  const st = await fetchStatus(String(argv.agent ?? 'http://127.0.0.1:9099'));
  if (argv.output === 'json') io().out(`${JSON.stringify(st, null, 2)}\n`);
  else io().out(renderNodeStatus(st, { detail: Boolean(argv.detail) }));
}
