// Validation of one manifest document: kind, metadata, spec; Calico's rules and defaults.
// Errors name the source (file, document index, kind/name) and every bad field path;
// fields Petrel does not implement come back as warnings (CONTRACT §3).
import { CALICO_API, KINDS, type FieldProblem, type KindId, type KindInfo, type Resource, type SourceRef, ValidationError, kindOf } from './types.js';
import { CALICO_SCHEMAS, type KindSchema } from './validate/calico.js';
import { K8S_SCHEMAS, isStrictK8s } from './validate/k8s.js';
import { type Check, Ctx, any, describe, int, isObject, list, map, obj, string } from './validate/schema.js';
import { annotationValue, labelKeyProblem, labelValue, nameProblem } from './validate/values.js';

export { parseDuration, parseAsn, parsePort, PROTOCOL_NAMES, labelKeyProblem, nameProblem } from './validate/values.js';
export type { ParsedPort } from './validate/values.js';

const stringish: Check = (v, path, ctx) => (typeof v === 'number' ? String(v) : string(v, path, ctx));

const metadataFields = obj({
  name: any, // checked per kind below
  namespace: any,
  labels: map(labelValue, labelKeyProblem),
  annotations: map(annotationValue, (k) => labelKeyProblem(k.toLowerCase())?.replace('label key', 'annotation key')),
  resourceVersion: stringish,
  uid: stringish,
  generation: int(0, Number.MAX_SAFE_INTEGER),
  generateName: string,
  creationTimestamp: any,
  deletionTimestamp: any,
  deletionGracePeriodSeconds: int(0, Number.MAX_SAFE_INTEGER),
  ownerReferences: any,
  finalizers: list(string),
  managedFields: any,
  selfLink: string,
});

const CALICO_TOP = new Set(['apiVersion', 'kind', 'metadata', 'spec', 'status']);

function schemaOf(k: KindInfo): KindSchema & { topLevel?: Record<string, Check>; nameKind?: 'subdomain' | 'label' | 'dns1035' } {
  return (k.apiVersion === CALICO_API ? CALICO_SCHEMAS[k.id] : K8S_SCHEMAS[k.id]) ?? {};
}

/** Calico v3 kinds outside Petrel's model: named as such rather than as unknown. */
const OTHER_CALICO_KINDS = [
  'Tier',
  'BGPFilter',
  'IPReservation',
  'IPAMConfiguration',
  'IPAMConfig',
  'KubeControllersConfiguration',
  'ClusterInformation',
  'CalicoNodeStatus',
  'StagedNetworkPolicy',
  'StagedGlobalNetworkPolicy',
  'StagedKubernetesNetworkPolicy',
];

function knownKinds(): string {
  return [...new Set(KINDS.map((k) => k.kind))].join(', ');
}

/** kindOf's answers for known kinds, by apiVersion then kind (a lookup that allocates nothing). */
const KNOWN = new Map<string, Map<string, KindInfo>>();

/** Works out the kind, or reports why not. */
function resolveKind(raw: Record<string, unknown>, ctx: Ctx): KindInfo | undefined {
  const { apiVersion, kind } = raw;
  if (typeof kind !== 'string' || kind === '') {
    ctx.error('kind', kind === undefined ? 'is required' : `must be a string, not ${describe(kind)}`);
    return undefined;
  }
  if (typeof apiVersion !== 'string' || apiVersion === '') {
    ctx.error('apiVersion', apiVersion === undefined ? 'is required' : `must be a string, not ${describe(apiVersion)}`);
    return undefined;
  }
  const known = KNOWN.get(apiVersion)?.get(kind);
  if (known) return known;
  const k = kindOf(apiVersion, kind);
  if (k) {
    let m = KNOWN.get(apiVersion);
    if (!m) KNOWN.set(apiVersion, (m = new Map()));
    m.set(kind, k);
    return k;
  }
  if ((apiVersion === CALICO_API || apiVersion === 'crd.projectcalico.org/v1') && OTHER_CALICO_KINDS.includes(kind)) {
    ctx.error('kind', `${kind} is a Calico kind that Petrel does not implement (Petrel reads ${KINDS.filter((x) => x.apiVersion === CALICO_API).map((x) => x.kind).join(', ')})`);
    return undefined;
  }
  const sameKind = KINDS.filter((x) => x.kind === kind);
  if (sameKind.length) {
    ctx.error('apiVersion', `${describe(apiVersion)} does not serve kind ${kind} (use ${sameKind.map((x) => x.apiVersion).join(' or ')})`);
  } else {
    const near = KINDS.find((x) => x.kind.toLowerCase() === kind.toLowerCase());
    ctx.error('kind', `unknown kind ${describe(kind)}${near ? ` (did you mean "${near.kind}"?)` : ''}; Petrel knows ${knownKinds()}`);
  }
  return undefined;
}

/** Drops errors reported by later checks on a path an earlier check already flagged. */
function dedupe(errors: FieldProblem[], firstCount: number): FieldProblem[] {
  const early = errors.slice(0, firstCount).map((e) => e.path);
  const late = errors.slice(firstCount).filter((e) => !early.some((p) => e.path === p || e.path.startsWith(`${p}.`) || e.path.startsWith(`${p}[`)));
  return [...errors.slice(0, firstCount), ...late];
}

export interface ValidateOptions {
  /**
   * `raw` is the caller's to give away (e.g. just parsed from JSON and used for nothing else):
   * it is normalised in place and becomes part of the returned resource instead of being
   * copied. The checks, the problems reported and the resulting resource are the same.
   */
  reuseInput?: boolean;
}

/**
 * Validates one manifest document and applies Calico's defaults. Throws `ValidationError`
 * naming the source and every bad field; returns the normalised resource (apiVersion
 * `crd.projectcalico.org/v1` becomes `projectcalico.org/v3`) and warnings.
 */
export function validateResource(raw: unknown, source: SourceRef = {}, opts: ValidateOptions = {}): { resource: Resource; warnings: FieldProblem[] } {
  const ctx = new Ctx(opts.reuseInput === true);
  if (!isObject(raw)) {
    ctx.error('', `a manifest document must be an object, not ${describe(raw)}`);
    throw new ValidationError({ ...source }, ctx.errors);
  }
  const doc = raw as Record<string, unknown>;
  const k = resolveKind(doc, ctx);
  if (!k) throw new ValidationError({ ...source, ...identOf(doc, source) }, ctx.errors);
  const kind = k;
  const schema = schemaOf(kind);
  const calico = kind.apiVersion === CALICO_API;

  // Top-level fields.
  const out: Resource = { apiVersion: kind.apiVersion, kind: kind.kind, metadata: { name: '' } };
  const docKeys = Object.keys(doc);
  for (let i = 0; i < docKeys.length; i++) {
    const key = docKeys[i]!;
    if (key === 'apiVersion' || key === 'kind' || key === 'metadata' || key === 'spec' || key === 'status') continue;
    const v = doc[key];
    const top = schema.topLevel?.[key];
    if (top) out[key] = top(v, key, ctx);
    else if (calico || isStrictK8s(kind.id)) ctx.error(key, `unknown field "${key}" (a ${kind.kind} has ${[...CALICO_TOP].join(', ')})`);
    else out[key] = v;
  }

  // Metadata.
  if (!isObject(doc.metadata)) {
    ctx.error('metadata', doc.metadata === undefined ? 'is required' : `must be an object, not ${describe(doc.metadata)}`);
  } else {
    out.metadata = metadataFields(doc.metadata, 'metadata', ctx) as Resource['metadata'];
    const nm = doc.metadata.name;
    if (nm === undefined || nm === null || nm === '') ctx.error('metadata.name', 'is required');
    else if (typeof nm !== 'string') ctx.error('metadata.name', `must be a string, not ${describe(nm)}`);
    else {
      const bad = schema.nameRule ? schema.nameRule(nm) : nameProblem(nm, schema.nameKind ?? 'subdomain');
      if (bad) ctx.error('metadata.name', bad);
    }
    const ns = doc.metadata.namespace;
    if (kind.namespaced) {
      if (ns === undefined || ns === null || ns === '') out.metadata.namespace = 'default';
      else if (typeof ns !== 'string') ctx.error('metadata.namespace', `must be a string, not ${describe(ns)}`);
      else {
        const bad = nameProblem(ns, 'label');
        if (bad) ctx.error('metadata.namespace', bad);
        out.metadata.namespace = ns;
      }
    } else if (ns !== undefined && ns !== null && ns !== '') {
      ctx.warn('metadata.namespace', `${kind.kind} is cluster-scoped; the namespace is ignored`);
      delete out.metadata.namespace;
    }
  }

  // Spec and status.
  if (schema.spec) {
    const spec = doc.spec ?? (calico || isStrictK8s(kind.id) ? {} : undefined);
    if (spec !== undefined && spec !== null) out.spec = schema.spec(spec, 'spec', ctx) as Record<string, unknown>;
  } else if (doc.spec !== undefined) {
    if (calico || isStrictK8s(kind.id)) ctx.error('spec', `a ${kind.kind} has no spec`);
    else out.spec = doc.spec as Record<string, unknown>;
  }
  if (doc.status !== undefined && doc.status !== null) {
    if (schema.status) out.status = schema.status(doc.status, 'status', ctx);
    else if (calico) {
      // Status is written by controllers, not users: never fatal, but never silently dropped.
      if (!isObject(doc.status) || Object.keys(doc.status).length > 0) ctx.warn('status', `a ${kind.kind} has no status; it is ignored`);
    }
    else out.status = doc.status;
  }
  if (schema.finalize && isObject(out.spec)) {
    const before = ctx.errors.length;
    schema.finalize(out as any, ctx);
    if (ctx.errors.length > before && before > 0) {
      const kept = dedupe(ctx.errors, before);
      ctx.errors.splice(0, ctx.errors.length, ...kept);
    }
  }

  if (ctx.errors.length) {
    const ident = identOf(doc, source);
    throw new ValidationError({ ...source, ...ident, namespace: out.metadata.namespace ?? ident.namespace }, ctx.errors);
  }
  return { resource: out, warnings: ctx.warnings };
}

/**
 * What an error names the document by: its kind, name and namespace where they are strings, else
 * the source's. (Worked out only on failure; in place validation leaves these fields as they were.)
 */
function identOf(doc: Record<string, unknown>, source: SourceRef): Partial<SourceRef> {
  const meta = isObject(doc.metadata) ? doc.metadata : undefined;
  return {
    kind: typeof doc.kind === 'string' ? doc.kind : source.kind,
    name: typeof meta?.name === 'string' ? meta.name : source.name,
    namespace: typeof meta?.namespace === 'string' ? meta.namespace : source.namespace,
  };
}

/** The validated resource, or undefined; errors/warnings go to the callbacks (for watchers). */
export function tryValidateResource(
  raw: unknown,
  source: SourceRef,
  onError: (e: ValidationError) => void,
): { resource: Resource; warnings: FieldProblem[] } | undefined {
  try {
    return validateResource(raw, source);
  } catch (e) {
    if (e instanceof ValidationError) {
      onError(e);
      return undefined;
    }
    throw e;
  }
}

/** The KindId of a validated resource. */
export function kindIdOf(r: Resource): KindId | undefined {
  return kindOf(r.apiVersion, r.kind)?.id;
}
