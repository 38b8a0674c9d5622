import type { CommandModule } from 'yargs';

export const labCommand: CommandModule = {
  command: 'lab [action]',
  describe: 'build an N-node Petrel cluster from network namespaces on this machine (root)',
  handler: () => {
    console.error('petrel lab: not available yet');
    process.exitCode = 1;
  },
};
