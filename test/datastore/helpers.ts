// Shared helpers of the datastore tests: an event recorder with waits.
import type { DatastoreEvent, EventHandler, Resource } from '../../datastore/types.js';

export class Recorder {
  batches: DatastoreEvent[][] = [];
  /** the handler's view: resource key → resource */
  view = new Map<string, Resource>();
  readonly handler: EventHandler = (evs) => {
    this.batches.push(structuredClone(evs));
    for (const e of evs) {
      if (e.type === 'update') this.view.set(e.key, e.resource);
      else if (e.type === 'delete') this.view.delete(e.key);
    }
  };
  get events(): DatastoreEvent[] {
    return this.batches.flat();
  }
  /** events after index `from` */
  since(from: number): DatastoreEvent[] {
    return this.events.slice(from);
  }
  count(pred: (e: DatastoreEvent) => boolean): number {
    return this.events.filter(pred).length;
  }
  async waitFor(pred: (r: Recorder) => boolean, what: string, timeoutMs = 15_000): Promise<void> {
    const t0 = Date.now();
    while (!pred(this)) {
      if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}; last events: ${JSON.stringify(this.events.slice(-8))}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  inSyncCount(): number {
    return this.count((e) => e.type === 'in-sync');
  }
}

/** Strips what differs between backends (versions, server-set metadata) for comparisons. */
export function normalise(r: Resource): Resource {
  const c = structuredClone(r);
  for (const f of ['resourceVersion', 'uid', 'creationTimestamp', 'generation', 'managedFields', 'annotations', 'selfLink']) delete c.metadata[f];
  if (c.metadata.annotations && !Object.keys(c.metadata.annotations).length) delete c.metadata.annotations;
  if (c.status && typeof c.status === 'object' && !Object.keys(c.status).length) delete c.status;
  return c;
}
