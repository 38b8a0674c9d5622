// File-datastore backend of the plugin: IPAM manifests under the datastore directory and the
// WorkloadEndpoint as <dir>/workloadendpoints/<namespace>/<name>.json, all under the directory lock.
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { withDirectoryLock } from '../datastore/file/lock.js';
import { type CniBackend, type EndpointInfo, type PodInfo, workloadEndpointResource } from './backend.js';
import type { NetConf } from './config.js';
import { FileIpamStore, writeAtomic } from './ipam/file.js';

export function wepPath(dir: string, ns: string, name: string): string {
  const safe = (s: string) => s.replace(/[\/\\\0]/g, '_');
  return join(dir, 'workloadendpoints', safe(ns), `${safe(name)}.json`);
}

export function openFileBackend(conf: NetConf): CniBackend {
  const dir = conf.datastorePath;
  const store = new FileIpamStore(dir);
  return {
    store,
    async podInfo(ns: string, pod: string): Promise<PodInfo | undefined> {
      const s = await store.scan();
      const p = s.pods.find((x) => x.metadata?.name === pod && (x.metadata?.namespace ?? 'default') === ns);
      const n = s.namespaces.find((x) => x.metadata?.name === ns);
      if (!p && !n) return undefined;
      return {
        labels: p?.metadata?.labels ?? {},
        annotations: p?.metadata?.annotations ?? {},
        serviceAccount: p?.spec?.serviceAccountName,
        namespaceAnnotations: n?.metadata?.annotations ?? {},
      };
    },
    async writeEndpoint(ep: EndpointInfo) {
      await withDirectoryLock(dir, () => writeAtomic(wepPath(dir, ep.namespace, ep.name), JSON.stringify(workloadEndpointResource(ep), null, 1) + '\n'), { timeoutMs: 60_000 });
    },
    async removeEndpoint(ns: string, name: string, _pod: string | undefined, containerId: string) {
      await withDirectoryLock(
        dir,
        async () => {
          const p = wepPath(dir, ns, name);
          let owner: string | undefined;
          try {
            owner = JSON.parse(await fsp.readFile(p, 'utf8')).spec?.containerID;
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
          }
          if (owner && owner !== containerId) return;
          await fsp.unlink(p).catch(() => undefined);
        },
        { timeoutMs: 60_000 },
      );
    },
    async close() {},
  };
}
