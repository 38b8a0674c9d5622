import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DatastoreEvent } from '../../datastore/types.js';

export function tempDir(prefix = 'petrel-fds-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function ippool(name: string, cidr: string, extra = ''): string {
  return `apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: ${name}
spec:
  cidr: ${cidr}
  natOutgoing: true${extra}
`;
}

/** Records every batch a datastore emits; `until` waits for a condition on all events so far. */
export class Recorder {
  batches: DatastoreEvent[][] = [];
  readonly handler = (b: DatastoreEvent[]) => {
    this.batches.push(b);
  };
  get events(): DatastoreEvent[] {
    return this.batches.flat();
  }
  mark(): number {
    return this.events.length;
  }
  since(mark: number): DatastoreEvent[] {
    return this.events.slice(mark);
  }
  async until(pred: (events: DatastoreEvent[]) => boolean, timeoutMs = 5000, from = 0): Promise<DatastoreEvent[]> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const ev = this.events.slice(from);
      if (pred(ev)) return ev;
      if (Date.now() > end) throw new Error(`timed out; events so far: ${JSON.stringify(ev.map((e) => [e.type, (e as any).key]))}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
