// `petrel ctl ipam show|check|release` — owned by the CNI/IPAM work (cni/ipam). Placeholder
// until that lands, so that `petrel ctl` can mount the command now.
import type { CommandModule } from 'yargs';

export const ipamCommand: CommandModule = {
  command: 'ipam <verb>',
  describe: 'IP address management: show, check, release',
  handler: () => {
    console.error('petrel ctl ipam: not available in this build yet');
    process.exitCode = 1;
  },
};
