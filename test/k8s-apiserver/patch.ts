// The PATCH flavours of API Concepts "Patch and apply": JSON merge patch (RFC 7386), JSON
// patch (RFC 6902, with `test`), and strategic merge patch (built-in kinds only) with the
// directives kubectl's client-side apply sends.

export class PatchError extends Error {
  constructor(
    message: string,
    readonly code: number,
  ) {
    super(message);
  }
}

const isObj = (v: unknown): v is Record<string, any> => typeof v === 'object' && v !== null && !Array.isArray(v);
const clone = <T>(v: T): T => (v === undefined ? v : JSON.parse(JSON.stringify(v)));

export function mergePatch(target: any, patch: any): any {
  if (!isObj(patch)) return clone(patch);
  const out: Record<string, any> = isObj(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

function unescape(seg: string): string {
  return seg.replace(/~1/g, '/').replace(/~0/g, '~');
}

export function jsonPatch(doc: any, ops: any): any {
  if (!Array.isArray(ops)) throw new PatchError('json patch must be an array of operations', 400);
  let root = clone(doc);
  const resolve = (path: string): { parent: any; key: string } => {
    if (typeof path !== 'string' || !path.startsWith('/')) throw new PatchError(`invalid JSON pointer "${path}"`, 422);
    const segs = path.slice(1).split('/').map(unescape);
    let parent: any = root;
    for (const s of segs.slice(0, -1)) {
      parent = parent?.[Array.isArray(parent) ? Number(s) : s];
      if (parent === undefined) throw new PatchError(`path ${path} does not exist`, 422);
    }
    return { parent, key: segs[segs.length - 1]! };
  };
  const get = (path: string): any => {
    if (path === '') return root;
    const { parent, key } = resolve(path);
    return parent?.[Array.isArray(parent) ? Number(key) : key];
  };
  const put = (path: string, value: any, replace: boolean) => {
    if (path === '') {
      root = clone(value);
      return;
    }
    const { parent, key } = resolve(path);
    if (Array.isArray(parent)) {
      const i = key === '-' ? parent.length : Number(key);
      if (replace) parent[i] = clone(value);
      else parent.splice(i, 0, clone(value));
    } else if (isObj(parent)) {
      if (replace && !(key in parent)) throw new PatchError(`replace operation does not apply: doc is missing key: ${path}`, 422);
      parent[key] = clone(value);
    } else throw new PatchError(`path ${path} has no parent`, 422);
  };
  const remove = (path: string) => {
    const { parent, key } = resolve(path);
    if (Array.isArray(parent)) parent.splice(Number(key), 1);
    else if (isObj(parent) && key in parent) delete parent[key];
    else throw new PatchError(`remove operation does not apply: doc is missing path: ${path}`, 422);
  };
  for (const op of ops) {
    switch (op?.op) {
      case 'add':
        put(op.path, op.value, false);
        break;
      case 'replace':
        put(op.path, op.value, true);
        break;
      case 'remove':
        remove(op.path);
        break;
      case 'move': {
        const v = get(op.from);
        remove(op.from);
        put(op.path, v, false);
        break;
      }
      case 'copy':
        put(op.path, get(op.from), false);
        break;
      case 'test':
        if (JSON.stringify(get(op.path)) !== JSON.stringify(op.value)) {
          throw new PatchError(`the server rejected our request due to an error in our request: test failed at ${op.path}`, 422);
        }
        break;
      default:
        throw new PatchError(`unknown json patch operation ${JSON.stringify(op?.op)}`, 400);
    }
  }
  return root;
}

/** Merge keys of the strategic-merge lists kubectl touches in the kinds we serve. */
const MERGE_KEYS: Record<string, string> = {
  containers: 'name',
  initContainers: 'name',
  ephemeralContainers: 'name',
  volumes: 'name',
  env: 'name',
  volumeMounts: 'mountPath',
  ports: 'containerPort',
  imagePullSecrets: 'name',
  podIPs: 'ip',
  conditions: 'type',
  addresses: 'type',
  taints: 'key',
};

export function strategicMergePatch(target: any, patch: any, field = ''): any {
  if (!isObj(patch)) return clone(patch);
  if (patch.$patch === 'replace') {
    const { $patch: _p, ...rest } = patch;
    return clone(rest);
  }
  if (patch.$patch === 'delete') return undefined;
  const out: Record<string, any> = isObj(target) ? { ...target } : {};
  const retain: string[] | undefined = Array.isArray(patch.$retainKeys) ? patch.$retainKeys : undefined;
  for (const [k, v] of Object.entries(patch)) {
    if (k.startsWith('$setElementOrder/') || k === '$retainKeys' || k === '$patch') continue;
    if (k.startsWith('$deleteFromPrimitiveList/')) {
      const f = k.slice('$deleteFromPrimitiveList/'.length);
      if (Array.isArray(out[f]) && Array.isArray(v)) out[f] = out[f].filter((x: unknown) => !v.includes(x));
      continue;
    }
    if (v === null) {
      delete out[k];
      continue;
    }
    const mk = MERGE_KEYS[k];
    if (Array.isArray(v) && mk && Array.isArray(out[k])) {
      const list: any[] = clone(out[k]);
      for (const el of v) {
        if (!isObj(el) || !(mk in el)) {
          list.push(clone(el));
          continue;
        }
        const i = list.findIndex((x) => isObj(x) && x[mk] === el[mk]);
        if (el.$patch === 'delete') {
          if (i >= 0) list.splice(i, 1);
        } else if (i >= 0) list[i] = strategicMergePatch(list[i], el, k);
        else list.push(strategicMergePatch(undefined, el, k));
      }
      out[k] = list;
    } else {
      const merged = strategicMergePatch(out[k], v, k);
      if (merged === undefined) delete out[k];
      else out[k] = merged;
    }
  }
  if (retain) for (const k of Object.keys(out)) if (!retain.includes(k)) delete out[k];
  void field;
  return out;
}
