// An in-memory Datastore for agent tests: the test pushes events as a backend would.
import {
  keyOf,
  kindOf,
  NotFoundError,
  ConflictError,
  type Datastore,
  type DatastoreEvent,
  type DatastoreStatus,
  type EventHandler,
  type KindId,
  type Resource,
} from '../datastore/index.js';

export class MemoryDatastore implements Datastore {
  readonly type = 'file' as const;
  private handler?: EventHandler;
  private readonly items = new Map<string, Resource>();
  connected = true;
  inSync = false;

  async watch(handler: EventHandler): Promise<void> {
    this.handler = handler;
  }

  /** Sends events to the agent exactly as given. */
  emit(events: DatastoreEvent[]): void {
    for (const e of events) {
      if (e.type === 'update') this.items.set(e.key, e.resource);
      if (e.type === 'delete') this.items.delete(e.key);
      if (e.type === 'in-sync') this.inSync = true;
      if (e.type === 'status') this.connected = e.state === 'connected';
    }
    this.handler?.(events);
  }

  /** An update event for a resource. */
  static update(r: Resource): DatastoreEvent {
    const k = kindOf(r.apiVersion, r.kind)!;
    return { type: 'update', key: keyOf(r), kind: k.id, resource: r };
  }

  status(): DatastoreStatus {
    return { type: 'file', inSync: this.inSync, connected: this.connected, errors: [] };
  }
  async get(kind: KindId, name: string, namespace?: string): Promise<Resource | undefined> {
    return [...this.items.values()].find(
      (r) => kindOf(r.apiVersion, r.kind)?.id === kind && r.metadata.name === name && (namespace === undefined || r.metadata.namespace === namespace),
    );
  }
  async list(kind: KindId): Promise<Resource[]> {
    return [...this.items.values()].filter((r) => kindOf(r.apiVersion, r.kind)?.id === kind);
  }
  async create(r: Resource): Promise<Resource> {
    if (this.items.has(keyOf(r))) throw new ConflictError(`${keyOf(r)} exists`);
    this.emit([MemoryDatastore.update(r)]);
    return r;
  }
  async replace(r: Resource): Promise<Resource> {
    if (!this.items.has(keyOf(r))) throw new NotFoundError(`${keyOf(r)} not found`);
    this.emit([MemoryDatastore.update(r)]);
    return r;
  }
  async apply(r: Resource): Promise<Resource> {
    this.emit([MemoryDatastore.update(r)]);
    return r;
  }
  async delete(kind: KindId, name: string, namespace?: string): Promise<Resource> {
    const r = await this.get(kind, name, namespace);
    if (!r) throw new NotFoundError(`${kind} ${name} not found`);
    this.emit([{ type: 'delete', key: keyOf(r), kind }]);
    return r;
  }
  async close(): Promise<void> {
    this.handler = undefined;
  }
}
