// Label and field selectors as kube-apiserver parses them (API Concepts; Labels and Selectors;
// Field Selectors). A parse error is reported as a message for a 400 BadRequest.

export type LabelReq =
  | { op: 'eq' | 'neq'; key: string; value: string }
  | { op: 'in' | 'notin'; key: string; values: string[] }
  | { op: 'exists' | 'notexists'; key: string };

export class SelectorError extends Error {}

const KEY_RE = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const VAL_RE = /^(([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?)$/;

/** Splits on commas that are not inside parentheses. */
function splitTop(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const c of s) {
    if (c === '(') depth++;
    if (c === ')') depth--;
    if (c === ',' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out;
}

function checkKey(k: string): string {
  if (!KEY_RE.test(k) || k.length > 316) throw new SelectorError(`invalid label key "${k}"`);
  return k;
}
function checkVal(v: string): string {
  if (!VAL_RE.test(v) || v.length > 63) throw new SelectorError(`invalid label value: "${v}"`);
  return v;
}

export function parseLabelSelector(text: string | undefined): LabelReq[] {
  if (!text || !text.trim()) return [];
  const reqs: LabelReq[] = [];
  for (const rawPart of splitTop(text)) {
    const part = rawPart.trim();
    if (!part) throw new SelectorError(`unable to parse requirement: found '', expected: identifier in "${text}"`);
    let m: RegExpMatchArray | null;
    if ((m = part.match(/^(\S+?)\s+(in|notin)\s*\((.*)\)$/))) {
      const values = m[3]!.split(',').map((v) => checkVal(v.trim()));
      reqs.push({ op: m[2] as 'in' | 'notin', key: checkKey(m[1]!), values });
    } else if ((m = part.match(/^!\s*(\S+)$/))) {
      reqs.push({ op: 'notexists', key: checkKey(m[1]!) });
    } else if ((m = part.match(/^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/))) {
      reqs.push({ op: m[2] === '!=' ? 'neq' : 'eq', key: checkKey(m[1]!), value: checkVal(m[3]!) });
    } else if (/^[^=!\s(),]+$/.test(part)) {
      reqs.push({ op: 'exists', key: checkKey(part) });
    } else {
      throw new SelectorError(`unable to parse requirement: "${part}"`);
    }
  }
  return reqs;
}

export function matchLabels(reqs: LabelReq[], labels: Record<string, string> | undefined): boolean {
  const l = labels ?? {};
  for (const r of reqs) {
    const has = Object.prototype.hasOwnProperty.call(l, r.key);
    const v = l[r.key];
    switch (r.op) {
      case 'eq':
        if (!has || v !== r.value) return false;
        break;
      case 'neq':
        if (has && v === r.value) return false;
        break;
      case 'in':
        if (!has || !r.values.includes(v!)) return false;
        break;
      case 'notin':
        if (has && r.values.includes(v!)) return false;
        break;
      case 'exists':
        if (!has) return false;
        break;
      case 'notexists':
        if (has) return false;
        break;
    }
  }
  return true;
}

export interface FieldReq {
  field: string;
  op: 'eq' | 'neq';
  value: string;
}

/** Fields kube-apiserver accepts per resource (Field Selectors page). */
export const POD_FIELDS = [
  'spec.nodeName',
  'spec.restartPolicy',
  'spec.schedulerName',
  'spec.serviceAccountName',
  'spec.hostNetwork',
  'status.phase',
  'status.podIP',
  'status.podIPs',
  'status.nominatedNodeName',
];
const BASE_FIELDS = ['metadata.name', 'metadata.namespace'];

export function parseFieldSelector(text: string | undefined, extraFields: string[]): FieldReq[] {
  if (!text || !text.trim()) return [];
  const allowed = [...BASE_FIELDS, ...extraFields];
  return text.split(',').map((part) => {
    const m = part.trim().match(/^([^=!]+?)\s*(==|=|!=)\s*(.*)$/);
    if (!m) throw new SelectorError(`invalid selector: '${part}'; can't understand '${part}'`);
    const field = m[1]!.trim();
    if (!allowed.includes(field)) {
      throw new SelectorError(`"${field}" is not a known field selector: only ${allowed.map((f) => `"${f}"`).join(', ')}`);
    }
    return { field, op: m[2] === '!=' ? 'neq' : 'eq', value: m[3]!.trim() } as FieldReq;
  });
}

function fieldValue(obj: any, field: string): string {
  if (field === 'status.podIPs') return ((obj?.status?.podIPs ?? []) as { ip: string }[]).map((p) => p.ip).join(',');
  let cur: any = obj;
  for (const p of field.split('.')) cur = cur?.[p];
  if (cur === undefined || cur === null) return '';
  return String(cur);
}

export function matchFields(reqs: FieldReq[], obj: any): boolean {
  for (const r of reqs) {
    const v = fieldValue(obj, r.field);
    if (r.field === 'status.podIPs') {
      const has = v.split(',').includes(r.value);
      if ((r.op === 'eq') !== has) return false;
      continue;
    }
    if (r.op === 'eq' ? v !== r.value : v === r.value) return false;
  }
  return true;
}
