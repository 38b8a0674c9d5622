// Which items (endpoints, network sets) each selector matches, maintained incrementally.
//
// Selectors are indexed by a label restriction they cannot match without (`k == v`,
// `k in {...}`, `has(k)` at the top level or inside a top-level `&&`), items by their labels.
// An item update evaluates only the selectors whose restriction its labels meet (plus the
// unrestricted ones); a selector update evaluates only the items that meet its restriction.
// Every change of membership is reported through `onChange(selectorId, itemId, matched)`.
import type { Labels, Selector, SelectorNode } from './selector.js';

interface Restriction {
  key: string;
  /** undefined: the key must only be present. */
  values?: string[];
}

function restrictionOf(n: SelectorNode): Restriction | undefined {
  switch (n.op) {
    case '==':
    case 'contains':
    case 'starts with':
    case 'ends with':
      return n.op === '==' ? { key: n.key, values: [n.value] } : { key: n.key };
    case 'in':
      return { key: n.key, values: n.values };
    case 'has':
      return { key: n.key };
    case 'and': {
      let best: Restriction | undefined;
      for (const o of n.operands) {
        const r = restrictionOf(o);
        if (r && r.values) return r;
        if (r && !best) best = r;
      }
      return best;
    }
    default:
      return undefined;
  }
}

interface SelEntry {
  sel: Selector;
  restriction?: Restriction;
  members: Set<string>;
  /** the caller's data for the selector, handed back with each change. */
  data: unknown;
}

interface ItemEntry {
  labels: Labels;
  matched: Set<string>;
  /** the caller's data for the item, handed back with each change. */
  data: unknown;
}

/** `selectorData`/`itemData`: what the caller attached in updateSelector/updateItem. */
export type ChangeHandler = (selectorId: string, itemId: string, matched: boolean, selectorData: any, itemData: any) => void;

const NONE: ReadonlySet<string> = new Set();

export class LabelIndex {
  private readonly sels = new Map<string, SelEntry>();
  private readonly items = new Map<string, ItemEntry>();
  // selector side
  private readonly selByKV = new Map<string, Map<string, Set<string>>>();
  private readonly selByKey = new Map<string, Set<string>>();
  private readonly selUnrestricted = new Set<string>();
  // item side
  private readonly itemsByKV = new Map<string, Map<string, Set<string>>>();

  constructor(private readonly onChange: ChangeHandler) {}

  get selectorCount(): number {
    return this.sels.size;
  }
  get itemCount(): number {
    return this.items.size;
  }

  members(selectorId: string): ReadonlySet<string> {
    return this.sels.get(selectorId)?.members ?? NONE;
  }

  /** Calls fn for each item the selector matches, with the item's data. */
  forEachMember(selectorId: string, fn: (itemId: string, itemData: any) => void): void {
    const e = this.sels.get(selectorId);
    if (!e) return;
    for (const itemId of e.members) fn(itemId, this.items.get(itemId)!.data);
  }

  hasSelector(selectorId: string): boolean {
    return this.sels.has(selectorId);
  }

  labelsOf(itemId: string): Labels | undefined {
    return this.items.get(itemId)?.labels;
  }

  /** Adds (or replaces) a selector; reports the items it now matches / no longer matches. */
  updateSelector(id: string, sel: Selector, data?: unknown): void {
    const old = this.sels.get(id);
    if (old && old.sel.toString() === sel.toString()) return;
    if (old) this.unindexSelector(id, old);
    const entry: SelEntry = { sel, restriction: restrictionOf(sel.root), members: old?.members ?? new Set(), data: old ? old.data : data };
    this.sels.set(id, entry);
    this.indexSelector(id, entry);
    if (!old) {
      // A new selector: every match is a change, in candidate order.
      const visit = (itemId: string): void => {
        const it = this.items.get(itemId)!;
        if (!sel.evaluate(it.labels)) return;
        entry.members.add(itemId);
        it.matched.add(id);
        this.onChange(id, itemId, true, entry.data, it.data);
      };
      this.forEachCandidateItem(entry, visit);
      return;
    }
    const now = new Set<string>();
    this.forEachCandidateItem(entry, (itemId) => {
      if (sel.evaluate(this.items.get(itemId)!.labels)) now.add(itemId);
    });
    for (const itemId of [...entry.members]) {
      if (!now.has(itemId)) {
        entry.members.delete(itemId);
        const it = this.items.get(itemId);
        it?.matched.delete(id);
        this.onChange(id, itemId, false, entry.data, it?.data);
      }
    }
    for (const itemId of now) {
      if (!entry.members.has(itemId)) {
        entry.members.add(itemId);
        const it = this.items.get(itemId)!;
        it.matched.add(id);
        this.onChange(id, itemId, true, entry.data, it.data);
      }
    }
  }

  deleteSelector(id: string): void {
    const entry = this.sels.get(id);
    if (!entry) return;
    this.unindexSelector(id, entry);
    this.sels.delete(id);
    for (const itemId of entry.members) {
      const it = this.items.get(itemId);
      it?.matched.delete(id);
      this.onChange(id, itemId, false, entry.data, it?.data);
    }
  }

  /** Adds or updates an item's labels; only selectors that could match are evaluated. */
  updateItem(id: string, labels: Labels, data?: unknown): void {
    const old = this.items.get(id);
    if (old && sameLabels(old.labels, labels)) {
      old.data = data;
      return;
    }
    if (old) this.unindexItem(id, old.labels);
    const entry: ItemEntry = { labels: { ...labels }, matched: old?.matched ?? new Set(), data };
    this.items.set(id, entry);
    this.indexItem(id, entry.labels);
    const now = new Set<string>();
    for (const selId of this.candidateSelectors(entry.labels)) {
      if (this.sels.get(selId)!.sel.evaluate(entry.labels)) now.add(selId);
    }
    if (old) {
      for (const selId of [...entry.matched]) {
        if (!now.has(selId)) {
          entry.matched.delete(selId);
          const se = this.sels.get(selId);
          se?.members.delete(id);
          this.onChange(selId, id, false, se?.data, data);
        }
      }
    }
    for (const selId of now) {
      if (!entry.matched.has(selId)) {
        entry.matched.add(selId);
        const se = this.sels.get(selId)!;
        se.members.add(id);
        this.onChange(selId, id, true, se.data, data);
      }
    }
  }

  deleteItem(id: string): void {
    const entry = this.items.get(id);
    if (!entry) return;
    this.unindexItem(id, entry.labels);
    this.items.delete(id);
    for (const selId of entry.matched) {
      const se = this.sels.get(selId);
      se?.members.delete(id);
      this.onChange(selId, id, false, se?.data, entry.data);
    }
  }

  private forEachCandidateItem(e: SelEntry, fn: (itemId: string) => void): void {
    const r = e.restriction;
    if (!r) {
      for (const k of this.items.keys()) fn(k);
      return;
    }
    const byV = this.itemsByKV.get(r.key);
    if (!byV) return;
    if (r.values) {
      for (const v of r.values) {
        const s = byV.get(v);
        if (s) for (const k of s) fn(k);
      }
    } else {
      for (const s of byV.values()) for (const k of s) fn(k);
    }
  }

  private candidateSelectors(labels: Labels): Set<string> {
    const out = new Set(this.selUnrestricted);
    for (const [k, v] of Object.entries(labels)) {
      for (const s of this.selByKey.get(k) ?? []) out.add(s);
      for (const s of this.selByKV.get(k)?.get(v) ?? []) out.add(s);
    }
    return out;
  }

  private indexSelector(id: string, e: SelEntry): void {
    const r = e.restriction;
    if (!r) this.selUnrestricted.add(id);
    else if (!r.values) addTo(this.selByKey, r.key, id);
    else for (const v of r.values) addTo2(this.selByKV, r.key, v, id);
  }

  private unindexSelector(id: string, e: SelEntry): void {
    const r = e.restriction;
    if (!r) this.selUnrestricted.delete(id);
    else if (!r.values) delFrom(this.selByKey, r.key, id);
    else for (const v of r.values) delFrom2(this.selByKV, r.key, v, id);
  }

  private indexItem(id: string, labels: Labels): void {
    for (const [k, v] of Object.entries(labels)) addTo2(this.itemsByKV, k, v, id);
  }

  private unindexItem(id: string, labels: Labels): void {
    for (const [k, v] of Object.entries(labels)) delFrom2(this.itemsByKV, k, v, id);
  }
}

function sameLabels(a: Labels, b: Labels): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && b[k] === a[k]);
}

function addTo(m: Map<string, Set<string>>, k: string, id: string): void {
  let s = m.get(k);
  if (!s) m.set(k, (s = new Set()));
  s.add(id);
}
function delFrom(m: Map<string, Set<string>>, k: string, id: string): void {
  const s = m.get(k);
  if (!s) return;
  s.delete(id);
  if (s.size === 0) m.delete(k);
}
function addTo2(m: Map<string, Map<string, Set<string>>>, k: string, v: string, id: string): void {
  let mm = m.get(k);
  if (!mm) m.set(k, (mm = new Map()));
  addTo(mm, v, id);
}
function delFrom2(m: Map<string, Map<string, Set<string>>>, k: string, v: string, id: string): void {
  const mm = m.get(k);
  if (!mm) return;
  delFrom(mm, v, id);
  if (mm.size === 0) m.delete(k);
}
