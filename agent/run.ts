// Process wiring for `petrel agent`: build the agent with its components, handle signals.
import { Agent, type AgentOptions } from './daemon.js';
import { addComponents } from './components.js';

export async function runAgent(opts: AgentOptions): Promise<void> {
  const agent = new Agent(opts);
  await addComponents(agent, {
    routeProtocol: opts.routeProtocol ?? 80,
    chainPrefix: opts.chainPrefix,
    interfacePrefix: opts.interfacePrefix ?? 'cali',
  });
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    agent.log.info({ signal }, 'shutting down');
    // A stop is a restart as far as peers and the kernel are concerned: routes and rules stay,
    // BGP closes without a Cease so graceful-restart helpers keep our routes.
    const force = setTimeout(() => {
      agent.log.warn('shutdown took more than 5 s; exiting');
      process.exit(0);
    }, 4500);
    force.unref();
    agent.stop({ graceful: true }).finally(() => process.exit(0));
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  try {
    await agent.start();
  } catch (err) {
    agent.log.fatal({ err }, 'agent failed to start');
    await agent.stop({ graceful: true }).catch(() => undefined);
    const e = new Error(`agent failed to start: ${(err as Error).message}`) as Error & { exitCode: number };
    e.exitCode = 2;
    throw e;
  }
}
