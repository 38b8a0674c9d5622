// The lab's live summary: nodes and readiness, BGP sessions, routes, connectivity matrix.
import { Lab, nodeName } from './lab.js';

function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c])).join('  ').trimEnd()).join('\n');
}

export async function summary(lab: Lab): Promise<string> {
  const out: string[] = [`=== Petrel lab ${new Date().toISOString()}`];
  const nodeRows = [['NODE', 'ADDRESS', 'READY', 'BGP PEERS (Established/all)', 'PETREL ROUTES']];
  const bgpRows = [['NODE', 'PEER', 'TYPE', 'STATE', 'PREFIXES IN/OUT']];
  for (let i = 1; i <= lab.opts.nodes; i++) {
    const ready = await lab.readiness(i);
    let peers: any[] = [];
    try {
      peers = (await lab.agentStatus(i)).bgp?.peers ?? [];
    } catch {
      /* agent down */
    }
    const routes = await lab.routes(i, process.env.PETREL_ROUTE_PROTOCOL ?? '80').catch(() => []);
    nodeRows.push([
      nodeName(i),
      lab.ipOf(i),
      ready.code === 200 ? 'yes' : `no (${ready.code || 'down'})`,
      `${peers.filter((p) => p.state === 'Established').length}/${peers.length}`,
      String(routes.length),
    ]);
    for (const p of peers) {
      bgpRows.push([nodeName(i), p.address, p.type, p.state, `${p.prefixesReceived ?? 0}/${p.prefixesAdvertised ?? 0}`]);
    }
  }
  out.push(table(nodeRows), '', table(bgpRows));
  const pods = lab.state.pods;
  if (pods.length) {
    const m = await lab.matrix();
    const ok = (a: string, b: string) => (a === b ? '-' : m.find((x) => x.from === a && x.to === b)?.ok ? 'ok' : 'XX');
    const rows = [['FROM \\ TO', ...pods.map((p) => p.name)], ...pods.map((a) => [`${a.name} ${a.ip}`, ...pods.map((b) => ok(a.name, b.name))])];
    out.push('', `connectivity (ping): ${m.filter((x) => x.ok).length}/${m.length} pairs`, table(rows));
  }
  return out.join('\n');
}
