// Manifest text → documents → validated resources. Multi-document YAML and JSON, including
// `kind: List` (and `*List` kinds such as IPPoolList) and plain JSON arrays of objects.
// Used by `petrel ctl` (all-or-nothing apply) and anywhere else text turns into resources.
import { parseAllDocuments } from 'yaml';
import { type FieldProblem, type Resource, type SourceRef, ValidationError } from './types.js';
import { validateResource } from './validate.js';

export interface ManifestDoc {
  /** 0-based index of the YAML document (JSON text is document 0). */
  index: number;
  /** Position inside a `List` / array document. */
  item?: number;
  raw: unknown;
}

function isList(v: unknown): v is { items: unknown } {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && typeof (v as any).kind === 'string' && /List$/.test((v as any).kind);
}

function expand(value: unknown, index: number, file: string, out: ManifestDoc[]): void {
  if (value === null || value === undefined) return; // empty or comment-only document
  if (Array.isArray(value)) {
    value.forEach((raw, item) => out.push({ index, item, raw }));
  } else if (isList(value)) {
    if (!Array.isArray(value.items)) {
      throw new ValidationError({ file, index, kind: (value as any).kind }, [{ path: 'items', message: 'a List must have an items list' }]);
    }
    value.items.forEach((raw, item) => out.push({ index, item, raw }));
  } else {
    out.push({ index, raw: value });
  }
}

/** `.json` files are parsed as strict JSON; everything else (stdin included) as YAML 1.2, a JSON superset. */
function isJsonFile(file: string): boolean {
  return /\.json$/i.test(file);
}

/**
 * Splits manifest text into documents. Throws ValidationError naming the file, the document
 * and the line/column of a syntax error.
 */
export function parseManifests(text: string, file: string): ManifestDoc[] {
  const out: ManifestDoc[] = [];
  if (isJsonFile(file)) {
    if (text.trim() === '') return out;
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch (e) {
      throw new ValidationError({ file, index: 0 }, [{ path: '(json)', message: `JSON syntax error: ${(e as Error).message}` }]);
    }
    expand(v, 0, file, out);
    return out;
  }
  const docs = parseAllDocuments(text, { prettyErrors: true, uniqueKeys: true });
  const list = Array.isArray(docs) ? docs : [];
  list.forEach((doc, index) => {
    const err = doc.errors[0];
    if (err) {
      const pos = err.linePos?.[0];
      throw new ValidationError({ file, index }, [
        { path: '(yaml)', message: `YAML syntax error${pos ? ` at line ${pos.line}, column ${pos.col}` : ''}: ${err.message.split('\n')[0]}` },
      ]);
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (e) {
      throw new ValidationError({ file, index }, [{ path: '(yaml)', message: (e as Error).message }]);
    }
    expand(value, index, file, out);
  });
  return out;
}

export interface ValidatedDoc {
  index: number;
  item?: number;
  resource: Resource;
  warnings: FieldProblem[];
}

/**
 * Parses and validates every document; returns them all, or throws one ValidationError that
 * lists every bad document (each problem's path is prefixed with its document), so that an
 * all-or-nothing caller (`ctl apply`) writes nothing and shows everything to fix at once.
 */
export function validateManifests(text: string, file: string): ValidatedDoc[] {
  const docs = parseManifests(text, file);
  const good: ValidatedDoc[] = [];
  const bad: ValidationError[] = [];
  for (const d of docs) {
    const source: SourceRef = { file, index: d.index, ...(d.item !== undefined ? { item: d.item } : {}) };
    try {
      const { resource, warnings } = validateResource(d.raw, source);
      good.push({ index: d.index, item: d.item, resource, warnings });
    } catch (e) {
      if (!(e instanceof ValidationError)) throw e;
      bad.push(e);
    }
  }
  if (bad.length === 1) throw bad[0];
  if (bad.length > 1) throw new ManifestErrors(file, bad);
  return good;
}

/** Several bad documents of one file; `errors` holds each document's own ValidationError. */
export class ManifestErrors extends ValidationError {
  constructor(
    file: string,
    readonly errors: ValidationError[],
  ) {
    super(
      { file },
      errors.flatMap((e) => e.problems.map((p) => ({ path: `[${describeDoc(e.source)}] ${p.path}`, message: p.message }))),
    );
    this.message = `${file}: ${errors.length} invalid documents:\n${errors.map((e) => `  ${e.message}`).join('\n')}`;
  }
}

function describeDoc(s: SourceRef): string {
  const parts = [`document ${s.index ?? '?'}`];
  if (s.item !== undefined) parts.push(`item ${s.item}`);
  if (s.kind || s.name) parts.push(`${s.kind ?? '?'} ${s.namespace ? `${s.namespace}/` : ''}${s.name ?? '?'}`);
  return parts.join(', ');
}
