// Resolving BGPPeer.password / BGPConfiguration.nodeMeshPassword `secretKeyRef`s without the
// Kubernetes API: a directory laid out like a mounted Secret volume, `<dir>/<secret name>/<key>`
// (mount each Secret the peers name under one directory, e.g. /etc/petrel/bgp-secrets). The
// file/etcd datastores use this; with the Kubernetes datastore the caller can read the Secret
// through the API instead. A trailing newline in the file is not part of the password.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface SecretRef {
  name: string;
  key: string;
}

const SAFE = /^[A-Za-z0-9._-]{1,253}$/;

export function secretResolverFromDir(dir: string): (ref: SecretRef) => string | undefined {
  return (ref) => {
    if (!SAFE.test(ref.name) || !SAFE.test(ref.key) || ref.name.startsWith('.') || ref.key.startsWith('.')) return undefined;
    try {
      return readFileSync(join(dir, ref.name, ref.key), 'utf8').replace(/\r?\n$/, '');
    } catch {
      return undefined;
    }
  };
}
