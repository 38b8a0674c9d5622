#!/usr/bin/env node
// petrel-cni: the CNI plugin entry point. Deliberately tiny: it loads only what the verb needs
// (VERSION loads nothing; ADD/DEL/CHECK load the plugin and one datastore client), since a
// container runtime starts a fresh process for every call.
//   petrel-cni            the network plugin (`type: petrel`)
//   petrel-cni ipam       the IPAM plugin (`ipam.type: petrel-ipam`)
//   petrel-cni install    the DaemonSet init container's installer
const SUPPORTED = ['0.3.0', '0.3.1', '0.4.0', '1.0.0'];

function fail(code: number, msg: string, details = '', version = '1.0.0'): never {
  process.stdout.write(JSON.stringify({ cniVersion: version, code, msg, details }) + '\n');
  process.exit(1);
}

/** Reads all of stdin synchronously (no stream machinery to load for a few hundred bytes). */
async function readStdin(): Promise<string> {
  const { readSync } = await import('node:fs');
  const chunks: Buffer[] = [];
  const buf = Buffer.allocUnsafe(65536);
  for (;;) {
    let n: number;
    try {
      n = readSync(0, buf, 0, buf.length, null);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN') {
        await new Promise((r) => setTimeout(r, 1));
        continue;
      }
      if (code === 'EOF') break;
      throw e;
    }
    if (n === 0) break;
    chunks.push(Buffer.from(buf.subarray(0, n)));
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function main(): Promise<void> {
  const arg = process.argv[2];
  if (arg === 'install') {
    const m = await import('./install.js');
    process.exitCode = await m.install(process.env);
    return;
  }
  if (arg === '--help' || arg === '-h') {
    process.stderr.write('petrel-cni: a CNI plugin; run by a container runtime (CNI_COMMAND=ADD|DEL|CHECK|VERSION, config on stdin)\n  petrel-cni install   install into the host CNI directories (docs/cni.md)\n');
    return;
  }
  const role = arg === 'ipam' ? 'ipam' : 'net';
  const cmd = process.env.CNI_COMMAND;
  let stdin: string;
  try {
    stdin = await readStdin();
  } catch (e) {
    fail(5, 'failed to read the network configuration from stdin', String(e));
  }
  if (cmd === 'VERSION') {
    let v = '0.2.0';
    try {
      v = JSON.parse(stdin || '{}').cniVersion ?? '0.2.0';
    } catch {
      /* the reply still names what we support */
    }
    process.stdout.write(JSON.stringify({ cniVersion: v, supportedVersions: SUPPORTED }) + '\n');
    return;
  }
  if (cmd !== 'ADD' && cmd !== 'DEL' && cmd !== 'CHECK') {
    fail(4, cmd ? `unknown CNI_COMMAND ${JSON.stringify(cmd)}` : 'CNI_COMMAND is not set', 'expected ADD, DEL, CHECK or VERSION');
  }
  const m = await import('./plugin.js');
  const code = await m.runPlugin(role, cmd, stdin, process.env);
  // stdout is a pipe (written synchronously on Linux): exit now rather than wait for keep-alive sockets.
  process.exit(code);
}

main().catch((e) => fail(999, 'internal error', e instanceof Error ? e.stack ?? e.message : String(e)));
