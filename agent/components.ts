// Which components the agent runs, from its options. Each dataplane owns one kernel concern.
import type { Agent } from './daemon.js';

export async function addComponents(agent: Agent): Promise<void> {
  void agent;
}
