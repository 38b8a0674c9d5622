// Reading and writing the manifest files of the file datastore: multi-document YAML, JSON
// (one object, an array of objects, or a `kind: List`), document addressing for in-place
// rewrites, canonical hashing for resourceVersion.

import { createHash } from 'node:crypto';
import { Document, parseAllDocuments, stringify } from 'yaml';
import type { FieldProblem, Resource } from '../types.js';

export type FileFormat = 'yaml' | 'json';

export const MANIFEST_EXTENSIONS = ['.yaml', '.yml', '.json'];

export function formatOf(file: string): FileFormat | undefined {
  const f = file.toLowerCase();
  if (f.endsWith('.json')) return 'json';
  if (f.endsWith('.yaml') || f.endsWith('.yml')) return 'yaml';
  return undefined;
}

/** Where one object sits in a file: document index, and item index inside a `List`/array. */
export interface DocAddress {
  index: number;
  item?: number;
}

export interface RawDoc extends DocAddress {
  raw: unknown;
}

/** A file that could not be parsed at all (syntax): names the document and position. */
export class SyntaxProblem extends Error {
  constructor(
    readonly index: number | undefined,
    readonly problem: FieldProblem,
  ) {
    super(`${index !== undefined ? `document ${index}: ` : ''}${problem.message}`);
  }
}

function isList(v: unknown): v is { items: unknown[] } {
  return (
    typeof v === 'object' &&
    v !== null &&
    !Array.isArray(v) &&
    typeof (v as any).kind === 'string' &&
    /List$/.test((v as any).kind) &&
    Array.isArray((v as any).items)
  );
}

function expand(value: unknown, index: number, out: RawDoc[]): void {
  if (value === null || value === undefined) return; // empty document
  if (Array.isArray(value)) value.forEach((raw, item) => out.push({ index, item, raw }));
  else if (isList(value)) value.items.forEach((raw, item) => out.push({ index, item, raw }));
  else out.push({ index, raw: value });
}

/** Every object of a manifest file, with its address. Throws SyntaxProblem. */
export function parseManifestText(text: string, format: FileFormat): RawDoc[] {
  const out: RawDoc[] = [];
  if (format === 'json') {
    let v: unknown;
    try {
      v = text.trim() === '' ? null : JSON.parse(text);
    } catch (e) {
      throw new SyntaxProblem(0, { path: '(json)', message: `JSON syntax error: ${(e as Error).message}` });
    }
    expand(v, 0, out);
    return out;
  }
  const docs = parseAllDocuments(text, { prettyErrors: true });
  const list = Array.isArray(docs) ? docs : [];
  list.forEach((doc, index) => {
    const err = doc.errors[0];
    if (err) {
      const pos = err.linePos?.[0];
      throw new SyntaxProblem(index, {
        path: '(yaml)',
        message: `YAML syntax error${pos ? ` at line ${pos.line}, column ${pos.col}` : ''}: ${err.message.split('\n')[0].replace(/ at line \d+, column \d+:?\s*$/, '')}`,
      });
    }
    expand(doc.toJS({ maxAliasCount: 100 }), index, out);
  });
  return out;
}

/** What is stored for a resource: the user's object without server-assigned metadata. */
export function storedForm(r: Resource): Record<string, unknown> {
  const copy = JSON.parse(JSON.stringify(r)) as Record<string, any>;
  if (copy.metadata && typeof copy.metadata === 'object') {
    delete copy.metadata.resourceVersion;
    delete copy.metadata.uid;
    delete copy.metadata.generation;
    delete copy.metadata.managedFields;
    if (Object.keys(copy.metadata.annotations ?? {}).length === 0) delete copy.metadata.annotations;
  }
  return copy;
}

function stableStringify(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableStringify).join(',')}]`;
  if (v && typeof v === 'object') {
    const keys = Object.keys(v as object)
      .filter((k) => (v as any)[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${stableStringify((v as any)[k])}`).join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

/** resourceVersion of the file datastore: a hash of the resource's content. */
export function contentVersion(r: Resource): string {
  const copy = { ...r, metadata: { ...r.metadata } };
  delete copy.metadata.resourceVersion;
  return createHash('sha256').update(stableStringify(copy)).digest('hex').slice(0, 16);
}

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/**
 * The new text of a file with the object at `at` replaced by `value` (or removed when value is
 * undefined). Other documents, with their comments, are kept as they are. Returns '' when
 * nothing is left.
 */
export function rewriteText(text: string, format: FileFormat, at: DocAddress, value: unknown | undefined): string {
  if (format === 'json') {
    let v: any = JSON.parse(text);
    if (at.item !== undefined) {
      const arr: unknown[] = Array.isArray(v) ? v : v.items;
      if (value === undefined) arr.splice(at.item, 1);
      else arr[at.item] = value;
      if (arr.length === 0) return '';
    } else {
      if (value === undefined) return '';
      v = value;
    }
    return `${JSON.stringify(v, null, 2)}\n`;
  }
  const docs = parseAllDocuments(text);
  const list: Document[] = Array.isArray(docs) ? [...(docs as Document[])] : [];
  const doc = list[at.index];
  if (!doc) throw new Error(`document ${at.index} not found`);
  if (at.item !== undefined) {
    const js: any = doc.toJS();
    const arr: unknown[] = Array.isArray(js) ? js : js.items;
    if (value === undefined) arr.splice(at.item, 1);
    else arr[at.item] = value;
    list[at.index] = replacement(doc, js);
  } else if (value === undefined) {
    list.splice(at.index, 1);
  } else {
    list[at.index] = replacement(doc, value);
  }
  const kept = list.filter((d) => d.contents !== null && d.contents !== undefined);
  if (kept.length === 0) return '';
  return joinDocs(list.map((d) => d.toString({ lineWidth: 0 })));
}

/** A new document for `value` that keeps the comments around the old one. */
function replacement(old: Document, value: unknown): Document {
  const nd = new Document(value);
  nd.commentBefore = old.commentBefore;
  nd.comment = old.comment;
  const oc = old.contents as { commentBefore?: string | null } | null;
  const nc = nd.contents as { commentBefore?: string | null } | null;
  if (oc && nc && oc.commentBefore) nc.commentBefore = oc.commentBefore;
  return nd;
}

function joinDocs(parts: string[]): string {
  return parts
    .map((s, i) => {
      let t = s.endsWith('\n') ? s : `${s}\n`;
      if (i > 0 && !t.startsWith('---')) t = `---\n${t}`;
      return t;
    })
    .join('');
}

/** Appends one object as a new YAML document. */
export function appendText(text: string, format: FileFormat, value: unknown): string {
  if (format === 'json') {
    if (text.trim() === '') return `${JSON.stringify(value, null, 2)}\n`;
    const v = JSON.parse(text);
    const arr = Array.isArray(v) ? v : isList(v) ? v.items : [v];
    arr.push(value);
    return `${JSON.stringify(Array.isArray(v) || isList(v) ? v : arr, null, 2)}\n`;
  }
  const body = stringify(value, { lineWidth: 0 });
  if (text.trim() === '') return body;
  return `${text.endsWith('\n') ? text : `${text}\n`}---\n${body}`;
}
