// `petrel ctl <verb>`: the calicoctl analogue (CONTRACT §1). agent/cli.ts mounts `ctlCommand`
// under its global datastore options; `runCtl(argv)` runs it in-process (tests) and returns the
// exit code instead of exiting.

import os from 'node:os';
import yargs, { type Argv, type CommandModule } from 'yargs';
import { CtlExit, EXIT_BAD_INPUT, io, processIO, setIO, type CtlIO } from './io.js';
import { ipamCommand } from './ipam.js';
import { nodeStatusVerb } from './node-status.js';
import { deleteVerb, getVerb, writeVerb } from './resources.js';

export { CtlExit, type CtlIO } from './io.js';
export { renderNodeStatus, formatSince, type AgentStatus } from './node-status.js';
export { redactSecrets, formatTable } from './table.js';

let inProcess = false;
let lastCode = 0;

/** Runs a verb; prints its error; records (and, in the real binary, sets) the exit code. */
function run(fn: (argv: Record<string, unknown>) => Promise<void>) {
  return async (argv: Record<string, unknown>): Promise<void> => {
    let code = 0;
    try {
      if (!inProcess) {
        // stdout is for ctl's output; logs go to stderr, warnings and up unless asked for.
        const explicit = process.env.LOG_LEVEL !== undefined || process.argv.some((a) => a === '--log-level' || a.startsWith('--log-level='));
        const { setLogLevel } = await import('../log.js');
        setLogLevel(explicit ? String(argv.logLevel ?? 'warn') : 'warn', 2);
      }
      await fn(argv);
    } catch (e) {
      const ex = e instanceof CtlExit ? e : new CtlExit(EXIT_BAD_INPUT, e instanceof Error ? e.message : String(e));
      io().err(`${ex.message.replace(/\n?$/, '\n')}`);
      code = ex.code;
    }
    lastCode = code;
    if (!inProcess && code !== 0) process.exitCode = code;
  };
}

const fileOption = (y: Argv, required: boolean) =>
  y
    .option('filename', { alias: 'f', type: 'string', demandOption: required, describe: 'manifest file, directory, or - for stdin (YAML or JSON, multi-document)' })
    .option('namespace', { alias: 'n', type: 'string', describe: 'namespace for namespaced resources that name none' });

const writeCommand = (verb: 'apply' | 'create' | 'replace', describe: string): CommandModule => ({
  command: verb,
  describe,
  builder: (y) => fileOption(y, true),
  handler: run((argv) => writeVerb(verb, argv)),
});

const getCommand: CommandModule = {
  command: 'get <kind> [name..]',
  describe: 'show resources (table, wide, yaml or json)',
  builder: (y) =>
    y
      .positional('kind', { type: 'string', describe: 'kind: singular, plural or short (ippool, ippools, pool...)' })
      .positional('name', { type: 'string', array: true, describe: 'names (default: all)' })
      .option('namespace', { alias: 'n', type: 'string', describe: 'namespace (namespaced kinds; default "default")' })
      .option('all-namespaces', { alias: 'A', type: 'boolean', describe: 'every namespace' })
      .option('output', { alias: 'o', type: 'string', default: 'table', choices: ['table', 'wide', 'yaml', 'json'], describe: 'output format' })
      .option('show-secrets', { type: 'boolean', default: false, describe: 'show BGP passwords and secret references instead of <redacted>' })
      .conflicts('all-namespaces', 'namespace'),
  handler: run(getVerb),
};

const deleteCommand: CommandModule = {
  command: 'delete [kind] [name..]',
  describe: 'delete resources named on the command line or in -f FILE',
  builder: (y) =>
    fileOption(y, false)
      .positional('kind', { type: 'string', describe: 'kind (with NAME)' })
      .positional('name', { type: 'string', array: true, describe: 'names' })
      .option('skip-not-exists', { type: 'boolean', default: false, describe: 'do not fail on resources that do not exist' })
      .check((a) => {
        if (a.filename === undefined && (a.kind === undefined || (a.name as unknown[] | undefined)?.length === 0 || a.name === undefined)) {
          throw new Error('delete needs -f FILE or KIND NAME');
        }
        if (a.filename !== undefined && a.kind !== undefined) throw new Error('delete takes either -f FILE or KIND NAME, not both');
        return true;
      }),
  handler: run(deleteVerb),
};

const nodeCommand: CommandModule = {
  command: 'node <verb>',
  describe: 'inspect this node: node status',
  builder: (y) =>
    y
      .positional('verb', { type: 'string', choices: ['status'] })
      .option('agent', {
        type: 'string',
        default: process.env.PETREL_AGENT_URL ?? 'http://127.0.0.1:9099',
        describe: "the agent's health/status URL [env PETREL_AGENT_URL]",
      })
      .option('all', { type: 'boolean', default: false, describe: "every node's last reported status, from the datastore (etcdv3, kubernetes)" })
      .option('detail', { alias: 'd', type: 'boolean', default: false, describe: 'also show datastore state, resource counts, errors and dataplane' })
      .option('output', { alias: 'o', type: 'string', choices: ['text', 'json'], default: 'text' }),
  handler: run(nodeStatusVerb),
};

function ctlBuilder(y: Argv): Argv {
  return y
    .command(writeCommand('apply', 'create or update resources from a file (all documents validated before any write)'))
    .command(writeCommand('create', 'create resources from a file; fails if any exists'))
    .command(writeCommand('replace', 'replace resources from a file; fails if any is missing or its resourceVersion is stale'))
    .command(deleteCommand)
    .command(getCommand)
    .command(nodeCommand)
    .command(ipamCommand)
    .demandCommand(1, 'name a verb: apply, create, replace, delete, get, node status, ipam');
}

/** `petrel ctl` as a yargs command; the common datastore options come from agent/cli.ts. */
export const ctlCommand: CommandModule = {
  command: 'ctl <verb>',
  describe: 'manage resources in the datastore and inspect a node (calicoctl analogue)',
  builder: ctlBuilder,
  handler: () => undefined,
};

/** The common options of CONTRACT §1 (for `runCtl`; the binary gets them from agent/cli.ts). */
function commonOptions(y: Argv): Argv {
  const env = process.env;
  return y
    .option('datastore-type', { type: 'string', choices: ['file', 'etcdv3', 'kubernetes'], default: env.DATASTORE_TYPE ?? 'file' })
    .option('datastore-path', { type: 'string', default: env.DATASTORE_PATH ?? './examples/quickstart' })
    .option('etcd-endpoints', { type: 'string', default: env.ETCD_ENDPOINTS ?? 'http://127.0.0.1:2379' })
    .option('etcd-ca-cert-file', { type: 'string', default: env.ETCD_CA_CERT_FILE })
    .option('etcd-cert-file', { type: 'string', default: env.ETCD_CERT_FILE })
    .option('etcd-key-file', { type: 'string', default: env.ETCD_KEY_FILE })
    .option('kubeconfig', { type: 'string', default: env.KUBECONFIG })
    .option('nodename', { type: 'string', default: env.NODENAME ?? os.hostname() })
    .option('log-level', { type: 'string', default: env.LOG_LEVEL ?? 'info' });
}

/**
 * Runs `petrel ctl` in-process: `argv` are the words after `ctl` (common options may appear
 * anywhere). Output goes to `ioOverride` (default stdout/stderr). Returns the exit code.
 */
export async function runCtl(argv: string[], ioOverride?: Partial<CtlIO>): Promise<number> {
  const prevIO = setIO({ ...processIO, ...ioOverride });
  const prevInProcess = inProcess;
  inProcess = true;
  lastCode = 0;
  let parseError: string | undefined;
  try {
    await ctlBuilder(commonOptions(yargs(argv)))
      .scriptName('petrel ctl')
      .strict()
      .exitProcess(false)
      .fail((msg, err) => {
        parseError = msg ?? err?.message ?? 'invalid command line';
      })
      .help()
      .version(false)
      .parseAsync();
  } catch (e) {
    parseError ??= e instanceof Error ? e.message : String(e);
  } finally {
    inProcess = prevInProcess;
  }
  try {
    if (parseError !== undefined) {
      io().err(`petrel ctl: ${parseError}\n`);
      return EXIT_BAD_INPUT;
    }
    return lastCode;
  } finally {
    setIO(prevIO);
  }
}
