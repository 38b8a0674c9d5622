// `petrel-cni install`: what the DaemonSet's init container runs (as Calico's install does):
// puts the plugin into the host's CNI bin directory as `petrel` and `petrel-ipam`, and writes
// the network configuration list into the host's CNI config directory. Environment-driven:
//   CNI_BIN_DIR (/host/opt/cni/bin), CNI_NET_DIR (/host/etc/cni/net.d),
//   CNI_CONF_NAME (10-petrel.conflist), CNI_NETWORK_CONFIG (template; default below),
//   PETREL_INSTALL_DIR (where to copy the package; unset = use it where it is),
//   PETREL_HOST_INSTALL_DIR (that directory as the host sees it; default /opt/petrel),
//   and the template values DATASTORE_TYPE, ETCD_ENDPOINTS, KUBECONFIG, NODENAME, CNI_MTU, LOG_LEVEL.
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const DEFAULT_TEMPLATE = `{
  "name": "k8s-pod-network",
  "cniVersion": "1.0.0",
  "plugins": [
    {
      "type": "petrel",
      "log_level": "__LOG_LEVEL__",
      "datastore_type": "__DATASTORE_TYPE__",
      "etcd_endpoints": "__ETCD_ENDPOINTS__",
      "nodename": "__KUBERNETES_NODE_NAME__",
      "mtu": __CNI_MTU__,
      "ipam": { "type": "petrel-ipam" },
      "policy": { "type": "k8s" },
      "kubernetes": { "kubeconfig": "__KUBECONFIG_FILEPATH__" }
    },
    { "type": "portmap", "snat": true, "capabilities": { "portMappings": true } }
  ]
}`;

function writeAtomic(path: string, text: string, mode = 0o644): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.petrel-tmp`;
  writeFileSync(tmp, text, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, path);
}

/** Fills a CNI_NETWORK_CONFIG template the way Calico's installer does (placeholders __NAME__). */
export function renderTemplate(tpl: string, env: NodeJS.ProcessEnv): string {
  const vals: Record<string, string> = {
    __LOG_LEVEL__: env.LOG_LEVEL ?? 'info',
    __DATASTORE_TYPE__: env.DATASTORE_TYPE ?? 'kubernetes',
    __ETCD_ENDPOINTS__: env.ETCD_ENDPOINTS ?? '',
    __KUBERNETES_NODE_NAME__: env.NODENAME ?? env.KUBERNETES_NODE_NAME ?? '',
    __CNI_MTU__: env.CNI_MTU ?? '1500',
    __KUBECONFIG_FILEPATH__: env.KUBECONFIG_FILEPATH ?? env.KUBECONFIG ?? '/etc/cni/net.d/petrel-kubeconfig',
    __ETCD_CA_CERT_FILE__: env.ETCD_CA_CERT_FILE ?? '',
    __ETCD_CERT_FILE__: env.ETCD_CERT_FILE ?? '',
    __ETCD_KEY_FILE__: env.ETCD_KEY_FILE ?? '',
  };
  return tpl.replace(/__[A-Z_]+__/g, (m) => vals[m] ?? m);
}

export async function install(env: NodeJS.ProcessEnv): Promise<number> {
  try {
    const binDir = env.CNI_BIN_DIR ?? '/host/opt/cni/bin';
    const netDir = env.CNI_NET_DIR ?? '/host/etc/cni/net.d';
    const confName = env.CNI_CONF_NAME ?? '10-petrel.conflist';
    const pkgRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
    let hostRoot = pkgRoot;
    let nodeBin = process.execPath;
    if (env.PETREL_INSTALL_DIR) {
      const dest = env.PETREL_INSTALL_DIR;
      mkdirSync(join(dest, 'bin'), { recursive: true });
      // What the plugin loads: the compiled tree and its one runtime dependency (yaml, for
      // kubeconfigs and file-datastore manifests); not the agent's dependencies.
      for (const d of ['dist', 'package.json', join('node_modules', 'yaml')]) {
        if (existsSync(join(pkgRoot, d))) cpSync(join(pkgRoot, d), join(dest, d), { recursive: true, force: true });
      }
      copyFileSync(process.execPath, join(dest, 'bin', 'node.new'));
      chmodSync(join(dest, 'bin', 'node.new'), 0o755);
      renameSync(join(dest, 'bin', 'node.new'), join(dest, 'bin', 'node'));
      hostRoot = env.PETREL_HOST_INSTALL_DIR ?? '/opt/petrel';
      nodeBin = join(hostRoot, 'bin', 'node');
    }
    const main = join(hostRoot, 'dist', 'cni', 'main.js');
    // The launchers are tiny scripts run by node itself (no shell in between: one exec fewer on
    // every CNI call); valid both as CommonJS and as an ES module.
    const launcher = (role: string) =>
      `#!${nodeBin}\n// installed by petrel-cni install\n${role ? `process.argv.splice(2, 0, ${JSON.stringify(role)});\n` : ''}import(${JSON.stringify(pathToFileURL(main).href)});\n`;
    writeAtomic(join(binDir, 'petrel'), launcher(''), 0o755);
    writeAtomic(join(binDir, 'petrel-ipam'), launcher('ipam'), 0o755);

    const text = renderTemplate(env.CNI_NETWORK_CONFIG ?? DEFAULT_TEMPLATE, env);
    let conf: any;
    try {
      conf = JSON.parse(text);
    } catch (e) {
      process.stderr.write(`petrel-cni install: CNI_NETWORK_CONFIG is not valid JSON after substitution: ${(e as Error).message}\n`);
      return 1;
    }
    // Drop empty optional fields the template could not fill (etcd endpoints on KDD, etc.).
    for (const p of conf.plugins ?? [conf]) {
      for (const k of ['etcd_endpoints', 'nodename', 'etcd_ca_cert_file', 'etcd_cert_file', 'etcd_key_file']) if (p[k] === '') delete p[k];
      if (p.kubernetes?.kubeconfig === '') delete p.kubernetes;
    }
    writeAtomic(join(netDir, confName), JSON.stringify(conf, null, 2) + '\n', 0o644);
    process.stderr.write(`petrel-cni install: wrote ${join(binDir, 'petrel')}, ${join(binDir, 'petrel-ipam')} and ${join(netDir, confName)}\n`);
    if (env.SLEEP === 'true') await new Promise(() => undefined);
    return 0;
  } catch (e) {
    process.stderr.write(`petrel-cni install failed: ${(e as Error).message}\n`);
    return 1;
  }
}
