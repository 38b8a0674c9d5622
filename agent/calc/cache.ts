// The agent's in-memory view of the datastore: every resource by kind, fed by the one event
// stream. The calculation reads it; nothing else writes it.
import type { DatastoreEvent, KindId, Resource, ResourceKey } from '../../datastore/index.js';

export class ResourceCache {
  private readonly byKind = new Map<KindId, Map<ResourceKey, Resource>>();
  private synced = false;

  /** Applies one batch; returns the kinds it touched (so the calculation redoes only those parts). */
  apply(events: DatastoreEvent[]): Set<KindId> {
    const touched = new Set<KindId>();
    for (const e of events) {
      if (e.type === 'update') {
        this.kindMap(e.kind).set(e.key, e.resource);
        touched.add(e.kind);
      } else if (e.type === 'delete') {
        if (this.byKind.get(e.kind)?.delete(e.key)) touched.add(e.kind);
      } else if (e.type === 'in-sync') {
        this.synced = true;
      }
    }
    return touched;
  }

  get inSync(): boolean {
    return this.synced;
  }

  list(kind: KindId): Resource[] {
    const m = this.byKind.get(kind);
    return m ? [...m.values()] : [];
  }

  get(kind: KindId, key: ResourceKey): Resource | undefined {
    return this.byKind.get(kind)?.get(key);
  }

  count(kind: KindId): number {
    return this.byKind.get(kind)?.size ?? 0;
  }

  counts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, m] of [...this.byKind.entries()].sort(([a], [b]) => a.localeCompare(b))) {
      if (m.size > 0) out[k] = m.size;
    }
    return out;
  }

  private kindMap(kind: KindId): Map<ResourceKey, Resource> {
    let m = this.byKind.get(kind);
    if (!m) this.byKind.set(kind, (m = new Map()));
    return m;
  }
}
