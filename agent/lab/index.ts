// `petrel lab [up|down|status]`: an N-node cluster on this machine from network namespaces
// (root). `up` builds it, prints a live summary, and tears it down on Ctrl-C.
import type { CommandModule } from 'yargs';

interface LabArgs {
  action: string;
  nodes: number;
  pods: number;
  vxlan: string;
  subnets: number;
  rr?: number;
  interval: number;
}

export const labCommand: CommandModule<object, LabArgs> = {
  command: 'lab [action]',
  describe: 'build an N-node Petrel cluster from network namespaces on this machine (root): up | status | down',
  builder: (y) =>
    y
      .positional('action', { type: 'string', choices: ['up', 'status', 'down'], default: 'up' })
      .option('nodes', { type: 'number', default: 3, describe: 'number of nodes' })
      .option('pods', { type: 'number', default: 2, describe: 'pods per node' })
      .option('subnets', { type: 'number', default: 1, describe: 'spread the nodes over this many underlay subnets' })
      .option('vxlan', { type: 'string', choices: ['Never', 'Always', 'CrossSubnet'], default: 'Never', describe: 'the pool vxlanMode' })
      .option('rr', { type: 'number', describe: 'make this node (1-based) a route reflector and turn the mesh off' })
      .option('interval', { type: 'number', default: 5, describe: 'seconds between summaries' }) as never,
  handler: async (argv) => {
    if (process.getuid?.() !== 0) {
      console.error('petrel lab needs root (it creates network namespaces)');
      process.exitCode = 1;
      return;
    }
    const { Lab } = await import('../../test/lab/lab.js');
    const { summary } = await import('../../test/lab/summary.js');
    if (argv.action === 'down') {
      await Lab.down();
      console.log('lab: torn down');
      return;
    }
    const subnets = Array.from({ length: argv.nodes }, (_, k) => 1 + Math.floor((k * argv.subnets) / argv.nodes));
    const lab = new Lab({ nodes: argv.nodes, podsPerNode: argv.pods, subnets, vxlanMode: argv.vxlan as never, routeReflector: argv.rr });
    if (argv.action === 'status') {
      const running = Lab.load();
      if (!running) {
        console.error('lab: no lab is up (no .lab/state.json)');
        process.exitCode = 1;
        return;
      }
      console.log(await summary(running));
      return;
    }
    let stopping = false;
    const teardown = async () => {
      if (stopping) return;
      stopping = true;
      console.log('\nlab: tearing down');
      await lab.down();
      process.exit(0);
    };
    process.on('SIGINT', () => void teardown());
    process.on('SIGTERM', () => void teardown());
    try {
      await lab.up((s) => console.log(`lab: ${s}`));
    } catch (err) {
      console.error(`lab: ${(err as Error).message}\nlogs are in ${lab.dir}`);
      await lab.down();
      process.exitCode = 1;
      return;
    }
    console.log(`lab: up. Logs in ${lab.dir}. Ctrl-C (or \`petrel lab down\`) tears it down.\n`);
    for (;;) {
      if (stopping) return;
      console.log(await summary(lab));
      await new Promise((r) => setTimeout(r, argv.interval * 1000));
    }
  },
};
