// A small schema language for validating manifests: each checker walks one value, reports
// every problem with its field path (`spec.ingress[0].destination.ports[1]`) and returns the
// normalised value. Nothing throws; the caller turns collected problems into a ValidationError.
import type { FieldProblem } from '../types.js';

export class Ctx {
  readonly errors: FieldProblem[] = [];
  readonly warnings: FieldProblem[] = [];
  /**
   * The input is the caller's to give away (freshly parsed): objects, lists and maps are
   * normalised in place and returned rather than copied. Same checks, same problems, same
   * resulting value.
   */
  constructor(readonly reuse = false) {}
  error(path: string, message: string): void {
    this.errors.push({ path, message });
  }
  warn(path: string, message: string): void {
    this.warnings.push({ path, message });
  }
}

/** Checks `value` found at `path`; returns the normalised value (the input when invalid). */
export type Check = (value: unknown, path: string, ctx: Ctx) => unknown;

export const join = (path: string, key: string): string => (path ? `${path}.${key}` : key);
export const at = (path: string, i: number): string => `${path}[${i}]`;

export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? `${v.slice(0, 57)}...` : v);
  return String(v);
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// ---------------------------------------------------------------------------------------
// Fields of objects

export interface FieldSpec {
  check: Check;
  required?: boolean;
  /**
   * Present in Calico's schema, not implemented by Petrel: accepted, validated, and reported
   * as a warning naming the field (CONTRACT §3). A string adds a note to the warning.
   */
  unimplemented?: boolean | string;
  /** Calico's default for an unimplemented field: setting it to this is not worth a warning. */
  calicoDefault?: unknown;
}

export type Fields = Record<string, Check | FieldSpec>;

const asSpec = (f: Check | FieldSpec): FieldSpec => (typeof f === 'function' ? { check: f } : f);

/** Marks a field required. */
export const required = (check: Check): FieldSpec => ({ check, required: true });
/** Marks a field as Calico's but not Petrel's (warning when set to a non-empty value). */
export const unimplemented = (check: Check, note?: string, calicoDefault?: unknown): FieldSpec => ({ check, unimplemented: note ?? true, calicoDefault });

/** True for values that Go's `omitempty` would drop: a set field Petrel ignores is worth a warning. */
function isSet(v: unknown): boolean {
  if (v === undefined || v === null || v === false || v === '' || v === 0) return false;
  if (Array.isArray(v)) return v.length > 0;
  if (isObject(v)) return Object.keys(v).length > 0;
  return true;
}

function suggestion(key: string, known: string[]): string {
  const lower = key.toLowerCase().replace(/[-_]/g, '');
  const hit = known.find((k) => k.toLowerCase() === lower);
  return hit ? ` (did you mean "${hit}"?)` : '';
}

export interface ObjOptions {
  /** Unknown keys are kept without complaint (Kubernetes kinds whose schema Petrel doesn't hold). */
  open?: boolean;
}

/**
 * An object with known fields. Unknown fields are errors naming the field (typo protection);
 * `null` fields count as absent, as in Calico's Go decoding.
 */
export function obj(fields: Fields, opts: ObjOptions = {}): Check {
  // Precompiled once: a prototype-free field table (so "constructor" & co. are unknown fields,
  // not Object.prototype's), the required fields in declaration order, the names for hints.
  const specs: Record<string, FieldSpec> = Object.create(null);
  for (const k of Object.keys(fields)) specs[k] = asSpec(fields[k]!);
  const names = Object.keys(specs);
  const requiredKeys = names.filter((k) => specs[k]?.required);
  const open = opts.open === true;
  // Field paths of the last parent path, reused while it stays the same (it does: parents hand
  // down their own cached strings), so validating a field builds no path string.
  let lastPath: string | undefined;
  let paths: Record<string, string> = Object.create(null);
  const fieldPath = (path: string, key: string): string => {
    if (path !== lastPath) {
      lastPath = path;
      paths = Object.create(null);
    }
    return (paths[key] ??= join(path, key));
  };
  return (value, path, ctx) => {
    if (!isObject(value)) {
      ctx.error(path, `must be an object, not ${describe(value)}`);
      return value;
    }
    const reuse = ctx.reuse;
    const out: Record<string, unknown> = reuse ? value : {};
    const keys = Object.keys(value);
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      const v = value[key];
      const spec = specs[key];
      if (spec === undefined) {
        if (open) {
          if (!reuse) out[key] = v;
        } else ctx.error(join(path, key), `unknown field "${key}"${suggestion(key, names)}`);
        continue;
      }
      if (v === null || v === undefined) {
        if (reuse) delete out[key];
        continue;
      }
      if (spec.unimplemented && isSet(v)) {
        const atDefault = spec.calicoDefault !== undefined && (v === spec.calicoDefault || (typeof v === 'string' && String(spec.calicoDefault).toLowerCase() === v.toLowerCase()));
        if (!atDefault) {
          const note = typeof spec.unimplemented === 'string' ? `; ${spec.unimplemented}` : '';
          ctx.warn(join(path, key), `Petrel does not implement this field; it is accepted and ignored${note}`);
        }
      }
      const r = spec.check(v, fieldPath(path, key), ctx);
      if (!reuse || r !== v) out[key] = r;
    }
    for (let i = 0; i < requiredKeys.length; i++) {
      const key = requiredKeys[i]!;
      if (value[key] === undefined || value[key] === null) ctx.error(join(path, key), 'is required');
    }
    return out;
  };
}

/** A list of values of one kind. */
export function list(item: Check, opts: { min?: number } = {}): Check {
  // item paths of the last list path, reused as in obj()
  let lastPath: string | undefined;
  let paths: string[] = [];
  return (value, path, ctx) => {
    if (!Array.isArray(value)) {
      ctx.error(path, `must be a list, not ${describe(value)}`);
      return value;
    }
    if (opts.min !== undefined && value.length < opts.min) ctx.error(path, `must have at least ${opts.min} item(s)`);
    if (path !== lastPath) {
      lastPath = path;
      paths = [];
    }
    const out = ctx.reuse ? value : new Array(value.length);
    for (let i = 0; i < value.length; i++) {
      const v = value[i];
      const r = item(v, i < 64 ? (paths[i] ??= at(path, i)) : at(path, i), ctx);
      if (out !== value || r !== v) out[i] = r;
    }
    return out;
  };
}

/**
 * A check that can also say, cheaply and without a field path, that a value is fine as it is:
 * `ok(v)` true means the check would report nothing and return `v` unchanged.
 */
export type FastCheck = Check & { ok?: (value: unknown) => boolean };

/** Attaches a fast acceptance test to a check (see FastCheck). */
export function withOk(check: Check, ok: (value: unknown) => boolean): FastCheck {
  return Object.assign(check, { ok });
}

/** A string → value map (labels, annotations, attributes). */
export function map(valueCheck: FastCheck, keyCheck?: (key: string) => string | undefined): Check {
  // Key checks are pure: keys seen to be fine (label keys repeat across every resource) are
  // remembered, up to a bound, so they are not re-checked.
  const goodKeys = new Set<string>();
  const ok = valueCheck.ok;
  return (value, path, ctx) => {
    if (!isObject(value)) {
      ctx.error(path, `must be a map, not ${describe(value)}`);
      return value;
    }
    const reuse = ctx.reuse;
    const out: Record<string, unknown> = reuse ? value : {};
    const keys = Object.keys(value);
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]!;
      const v = value[k];
      let p: string | undefined;
      if (keyCheck && !goodKeys.has(k)) {
        const bad = keyCheck(k);
        if (bad) ctx.error((p = `${path}[${JSON.stringify(k)}]`), bad);
        else if (k.length <= 256) {
          if (goodKeys.size >= 4096) goodKeys.clear();
          goodKeys.add(k);
        }
      }
      if (ok !== undefined && ok(v)) {
        if (!reuse) out[k] = v;
      } else {
        const r = valueCheck(v, p ?? `${path}[${JSON.stringify(k)}]`, ctx);
        if (!reuse || r !== v) out[k] = r;
      }
    }
    return out;
  };
}

/** Anything at all (kept as is). */
export const any: Check = (v) => v;

// ---------------------------------------------------------------------------------------
// Scalars

export function str(opts: { pattern?: RegExp; patternText?: string; max?: number; nonEmpty?: boolean } = {}): Check {
  return (value, path, ctx) => {
    if (typeof value !== 'string') {
      ctx.error(path, `must be a string, not ${describe(value)}`);
      return value;
    }
    if (opts.nonEmpty && value === '') ctx.error(path, 'must not be empty');
    else if (opts.max !== undefined && value.length > opts.max) ctx.error(path, `must be at most ${opts.max} characters`);
    else if (opts.pattern && value !== '' && !opts.pattern.test(value)) {
      ctx.error(path, `${describe(value)} is not valid${opts.patternText ? `: ${opts.patternText}` : ''}`);
    }
    return value;
  };
}

export const string: FastCheck = withOk(str(), (v) => typeof v === 'string');

export const bool: Check = (value, path, ctx) => {
  if (typeof value === 'boolean') return value;
  // Calico's v1 CRDs spell some booleans as strings ("true"/"false").
  if (value === 'true' || value === 'false') return value === 'true';
  ctx.error(path, `must be true or false, not ${describe(value)}`);
  return value;
};

export function int(min: number, max: number): Check {
  return (value, path, ctx) => {
    const n = typeof value === 'string' && /^-?\d+$/.test(value) ? Number(value) : value;
    if (typeof n !== 'number' || !Number.isInteger(n)) {
      ctx.error(path, `must be an integer, not ${describe(value)}`);
      return value;
    }
    if (n < min || n > max) ctx.error(path, `${n} is out of range (${min}-${max})`);
    return n;
  };
}

export const number: Check = (value, path, ctx) => {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    ctx.error(path, `must be a number, not ${describe(value)}`);
    return value;
  }
  return value;
};

export function oneOf(values: readonly (string | number)[], opts: { caseInsensitive?: boolean } = {}): Check {
  return (value, path, ctx) => {
    const hit = values.find(
      (v) => v === value || (opts.caseInsensitive && typeof v === 'string' && typeof value === 'string' && v.toLowerCase() === value.toLowerCase()),
    );
    if (hit === undefined) {
      ctx.error(path, `${describe(value)} is not one of ${values.map((v) => String(v)).join(', ')}`);
      return value;
    }
    return hit;
  };
}

/** Runs `check` and then `also` on the normalised value when `check` found nothing wrong. */
export function refine(check: Check, also: (value: any, path: string, ctx: Ctx) => unknown): Check {
  return (value, path, ctx) => {
    const before = ctx.errors.length;
    const v = check(value, path, ctx);
    if (ctx.errors.length !== before) return v;
    const r = also(v, path, ctx);
    return r === undefined ? v : r;
  };
}
