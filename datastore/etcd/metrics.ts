// Datastore metrics shared by the etcdv3 and Kubernetes backends (label `datastore`).
import { counter, gauge, histogram } from '../../agent/metrics.js';

export function datastoreMetrics() {
  return {
    watchRestarts: counter<'datastore'>({
      name: 'petrel_datastore_watch_restarts_total',
      help: 'Watches of the datastore that ended unexpectedly and were restarted',
      labelNames: ['datastore'],
    }),
    resyncs: counter<'datastore'>({
      name: 'petrel_datastore_resync_total',
      help: 'Full re-lists of the datastore after a lost or expired watch (the first load not counted)',
      labelNames: ['datastore'],
    }),
    eventLag: histogram<'datastore'>({
      name: 'petrel_datastore_event_lag_seconds',
      help: 'Time from a batch of datastore changes arriving (watch response read) until the agent handled it',
      labelNames: ['datastore'],
      buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    }),
    connected: gauge<'datastore'>({
      name: 'petrel_datastore_connected',
      help: '1 while the datastore watch is connected and in sync, 0 otherwise',
      labelNames: ['datastore'],
    }),
  };
}
