#!/usr/bin/env node
// `petrel` command line (CONTRACT §1): `petrel agent`, `petrel ctl <verb>`, `petrel lab`.
// Every option reads its environment variable; a flag wins over the env, the env over the default.
import os from 'node:os';
import yargs, { type Argv, type CommandModule } from 'yargs';
import { hideBin } from 'yargs/helpers';
import type { DatastoreOptions, DatastoreType } from '../datastore/types.js';

const env = process.env;

/** The common options of CONTRACT §1, shared by `agent` and `ctl`. */
export function withCommonOptions<T>(y: Argv<T>) {
  return y
    .option('datastore-type', {
      type: 'string',
      choices: ['file', 'etcdv3', 'kubernetes'],
      default: env.DATASTORE_TYPE ?? 'file',
      describe: 'datastore backend [env DATASTORE_TYPE]',
    })
    .option('datastore-path', {
      type: 'string',
      default: env.DATASTORE_PATH ?? './examples/quickstart',
      describe: 'directory of YAML/JSON manifests, file datastore [env DATASTORE_PATH]',
    })
    .option('etcd-endpoints', {
      type: 'string',
      default: env.ETCD_ENDPOINTS ?? 'http://127.0.0.1:2379',
      describe: 'comma-separated etcd URLs [env ETCD_ENDPOINTS]',
    })
    .option('etcd-ca-cert-file', { type: 'string', default: env.ETCD_CA_CERT_FILE, describe: 'CA for etcd TLS [env ETCD_CA_CERT_FILE]' })
    .option('etcd-cert-file', { type: 'string', default: env.ETCD_CERT_FILE, describe: 'client cert for etcd [env ETCD_CERT_FILE]' })
    .option('etcd-key-file', { type: 'string', default: env.ETCD_KEY_FILE, describe: 'client key for etcd [env ETCD_KEY_FILE]' })
    .option('kubeconfig', {
      type: 'string',
      default: env.KUBECONFIG,
      describe: 'kubeconfig, kubernetes datastore; default in-cluster, then ~/.kube/config [env KUBECONFIG]',
    })
    .option('nodename', { type: 'string', default: env.NODENAME ?? os.hostname(), describe: 'this Node resource [env NODENAME]' })
    .option('log-level', {
      type: 'string',
      default: env.LOG_LEVEL ?? 'info',
      choices: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'],
      describe: 'log level [env LOG_LEVEL]',
    });
}

/** Resolved datastore options from parsed argv (camelCase keys). */
export function datastoreOptions(argv: Record<string, unknown>): DatastoreOptions {
  return {
    type: argv.datastoreType as DatastoreType,
    path: String(argv.datastorePath),
    etcdEndpoints: String(argv.etcdEndpoints)
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    etcdCaCertFile: argv.etcdCaCertFile as string | undefined,
    etcdCertFile: argv.etcdCertFile as string | undefined,
    etcdKeyFile: argv.etcdKeyFile as string | undefined,
    kubeconfig: argv.kubeconfig as string | undefined,
    nodename: String(argv.nodename),
  };
}

const agentCommand: CommandModule = {
  command: 'agent',
  describe: 'run the per-node daemon (routes, policy, BGP)',
  builder: (y) =>
    y
      .option('health-host', {
        type: 'string',
        default: env.PETREL_HEALTH_HOST ?? '0.0.0.0',
        describe: 'address of the health/metrics HTTP server [env PETREL_HEALTH_HOST]',
      })
      .option('health-port', {
        type: 'number',
        default: env.PETREL_HEALTH_PORT !== undefined ? Number(env.PETREL_HEALTH_PORT) : 9099,
        describe: 'its port [env PETREL_HEALTH_PORT]',
      })
      .option('dataplane', {
        type: 'string',
        choices: ['linux', 'dry-run'],
        default: env.PETREL_DATAPLANE ?? 'linux',
        describe: 'linux programs the kernel; dry-run computes everything and programs nothing [env PETREL_DATAPLANE]',
      })
      .option('route-protocol', {
        type: 'number',
        default: env.PETREL_ROUTE_PROTOCOL !== undefined ? Number(env.PETREL_ROUTE_PROTOCOL) : 80,
        describe: 'protocol number on every route Petrel programs; others are never touched [env PETREL_ROUTE_PROTOCOL]',
      })
      .option('chain-prefix', {
        type: 'string',
        default: env.PETREL_CHAIN_PREFIX ?? 'pet-',
        describe: 'name prefix of every iptables chain and ipset Petrel creates [env PETREL_CHAIN_PREFIX]',
      })
      .option('interface-prefix', {
        type: 'string',
        default: env.PETREL_INTERFACE_PREFIX ?? 'cali',
        describe: 'workload interface name prefix (FelixConfiguration interfacePrefix wins) [env PETREL_INTERFACE_PREFIX]',
      })
      .check((a) => {
        const p = Number(a.routeProtocol);
        if (!Number.isInteger(p) || p < 5 || p > 255) {
          throw new Error(`--route-protocol must be 5..255 (1-4 are the kernel's, boot and static routes), got ${String(a.routeProtocol)}`);
        }
        return true;
      })
      .option('bgp', {
        type: 'string',
        choices: ['enabled', 'disabled'],
        default: env.PETREL_BGP ?? 'enabled',
        describe: 'run the BGP speaker, or policy-only mode [env PETREL_BGP]',
      }),
  handler: async (argv) => {
    const { setLogLevel } = await import('./log.js');
    setLogLevel(String(argv.logLevel));
    const { runAgent } = await import('./run.js');
    await runAgent({
      datastore: datastoreOptions(argv),
      healthHost: String(argv.healthHost),
      healthPort: Number(argv.healthPort),
      dataplane: argv.dataplane as 'linux' | 'dry-run',
      bgp: argv.bgp === 'enabled',
      routeProtocol: Number(argv.routeProtocol),
      chainPrefix: String(argv.chainPrefix),
      interfacePrefix: String(argv.interfacePrefix),
    });
  },
};

async function main(): Promise<void> {
  const verb = process.argv[2];
  let y = withCommonOptions(yargs(hideBin(process.argv)))
    .scriptName('petrel')
    .usage('$0 <command>\n\nPetrel: per-node routing agent for Kubernetes (routes, policy, BGP), Calico-compatible.')
    .command(agentCommand)
    .strict()
    .demandCommand(1, 'name a command: agent, ctl or lab')
    .help()
    .version(false)
    .wrap(Math.min(110, process.stdout.columns ?? 100));
  // Load the heavier command trees only when they are asked for (start-up stays lean).
  if (verb === 'ctl' || verb === undefined || verb === '--help' || verb === 'help') {
    const { ctlCommand } = await import('./ctl/index.js');
    y = y.command(ctlCommand as CommandModule);
  }
  if (verb === 'lab' || verb === undefined || verb === '--help' || verb === 'help') {
    const { labCommand } = await import('./lab/index.js');
    y = y.command(labCommand as CommandModule);
  }
  await y.parseAsync();
}

main().catch((err) => {
  console.error(`petrel: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(typeof err?.exitCode === 'number' ? err.exitCode : 1);
});
