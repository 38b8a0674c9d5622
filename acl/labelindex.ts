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
  id: string;
  sel: Selector;
  restriction?: Restriction;
  members: Set<ItemEntry>;
  /** the caller's data for the selector, handed back with each change. */
  data: unknown;
}

interface ItemEntry {
  id: string;
  labels: Labels;
  matched: Set<SelEntry>;
  /** the caller's data for the item, handed back with each change. */
  data: unknown;
}

/** `selectorData`/`itemData`: what the caller attached in updateSelector/updateItem. */
export type ChangeHandler = (selectorId: string, itemId: string, matched: boolean, selectorData: any, itemData: any) => void;

export class LabelIndex {
  private readonly sels = new Map<string, SelEntry>();
  private readonly items = new Map<string, ItemEntry>();
  // selector side
  private readonly selByKV = new Map<string, Map<string, Set<SelEntry>>>();
  private readonly selByKey = new Map<string, Set<SelEntry>>();
  private readonly selUnrestricted = new Set<SelEntry>();
  // item side
  private readonly itemsByKV = new Map<string, Map<string, Set<ItemEntry>>>();

  constructor(private readonly onChange: ChangeHandler) {}

  get selectorCount(): number {
    return this.sels.size;
  }
  get itemCount(): number {
    return this.items.size;
  }

  /** The ids of the items the selector matches (a copy). */
  members(selectorId: string): ReadonlySet<string> {
    const out = new Set<string>();
    const e = this.sels.get(selectorId);
    if (e) for (const it of e.members) out.add(it.id);
    return out;
  }

  /** True when the selector matches the item. */
  matches(selectorId: string, itemId: string): boolean {
    const it = this.items.get(itemId);
    const e = this.sels.get(selectorId);
    return !!it && !!e && e.members.has(it);
  }

  /** Calls fn for each item the selector matches, with the item's data. */
  forEachMember(selectorId: string, fn: (itemId: string, itemData: any) => void): void {
    const e = this.sels.get(selectorId);
    if (!e) return;
    for (const it of e.members) fn(it.id, it.data);
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
    if (!old) {
      const entry: SelEntry = { id, sel, restriction: restrictionOf(sel.root), members: new Set(), data };
      this.sels.set(id, entry);
      this.indexSelector(entry);
      // A new selector: every match is a change, in candidate order.
      this.forEachCandidateItem(entry, (it) => {
        if (!sel.evaluate(it.labels)) return;
        entry.members.add(it);
        it.matched.add(entry);
        this.onChange(id, it.id, true, entry.data, it.data);
      });
      return;
    }
    const entry = old;
    this.unindexSelector(entry);
    entry.sel = sel;
    entry.restriction = restrictionOf(sel.root);
    this.indexSelector(entry);
    const now = new Set<ItemEntry>();
    this.forEachCandidateItem(entry, (it) => {
      if (sel.evaluate(it.labels)) now.add(it);
    });
    for (const it of [...entry.members]) {
      if (!now.has(it)) {
        entry.members.delete(it);
        it.matched.delete(entry);
        this.onChange(id, it.id, false, entry.data, it.data);
      }
    }
    for (const it of now) {
      if (!entry.members.has(it)) {
        entry.members.add(it);
        it.matched.add(entry);
        this.onChange(id, it.id, true, entry.data, it.data);
      }
    }
  }

  deleteSelector(id: string): void {
    const entry = this.sels.get(id);
    if (!entry) return;
    this.unindexSelector(entry);
    this.sels.delete(id);
    for (const it of entry.members) {
      it.matched.delete(entry);
      this.onChange(id, it.id, false, entry.data, it.data);
    }
  }

  /**
   * Adds or updates an item's labels; only selectors that could match are evaluated. The
   * index keeps `labels` (the caller must not change the object afterwards).
   */
  updateItem(id: string, labels: Labels, data?: unknown): void {
    const old = this.items.get(id);
    if (old && sameLabels(old.labels, labels)) {
      old.data = data;
      return;
    }
    if (!old) {
      const entry: ItemEntry = { id, labels, matched: new Set(), data };
      this.items.set(id, entry);
      this.indexItem(entry);
      // A new item: every match is a change, in candidate order.
      this.forEachCandidateSelector(labels, (se) => {
        if (!se.sel.evaluate(labels)) return;
        entry.matched.add(se);
        se.members.add(entry);
        this.onChange(se.id, id, true, se.data, data);
      });
      return;
    }
    const entry = old;
    this.unindexItem(entry);
    entry.labels = labels;
    entry.data = data;
    this.indexItem(entry);
    const now = new Set<SelEntry>();
    this.forEachCandidateSelector(labels, (se) => {
      if (se.sel.evaluate(labels)) now.add(se);
    });
    for (const se of [...entry.matched]) {
      if (!now.has(se)) {
        entry.matched.delete(se);
        se.members.delete(entry);
        this.onChange(se.id, id, false, se.data, data);
      }
    }
    for (const se of now) {
      if (!entry.matched.has(se)) {
        entry.matched.add(se);
        se.members.add(entry);
        this.onChange(se.id, id, true, se.data, data);
      }
    }
  }

  deleteItem(id: string): void {
    const entry = this.items.get(id);
    if (!entry) return;
    this.unindexItem(entry);
    this.items.delete(id);
    for (const se of entry.matched) {
      se.members.delete(entry);
      this.onChange(se.id, id, false, se.data, entry.data);
    }
  }

  private forEachCandidateItem(e: SelEntry, fn: (it: ItemEntry) => void): void {
    const r = e.restriction;
    if (!r) {
      for (const it of this.items.values()) fn(it);
      return;
    }
    const byV = this.itemsByKV.get(r.key);
    if (!byV) return;
    if (r.values) {
      for (const v of r.values) {
        const s = byV.get(v);
        if (s) for (const it of s) fn(it);
      }
    } else {
      for (const s of byV.values()) for (const it of s) fn(it);
    }
  }

  /**
   * The selectors whose restriction the labels meet, and the unrestricted ones. Each comes
   * once: a selector is indexed under one key (an item has one value for it).
   */
  private forEachCandidateSelector(labels: Labels, fn: (e: SelEntry) => void): void {
    for (const s of this.selUnrestricted) fn(s);
    if (this.sels.size === this.selUnrestricted.size) return;
    for (const k in labels) {
      const byKey = this.selByKey.get(k);
      if (byKey) for (const s of byKey) fn(s);
      const byKV = this.selByKV.get(k)?.get(labels[k]!);
      if (byKV) for (const s of byKV) fn(s);
    }
  }

  private indexSelector(e: SelEntry): void {
    const r = e.restriction;
    if (!r) this.selUnrestricted.add(e);
    else if (!r.values) addTo(this.selByKey, r.key, e);
    else for (const v of r.values) addTo2(this.selByKV, r.key, v, e);
  }

  private unindexSelector(e: SelEntry): void {
    const r = e.restriction;
    if (!r) this.selUnrestricted.delete(e);
    else if (!r.values) delFrom(this.selByKey, r.key, e);
    else for (const v of r.values) delFrom2(this.selByKV, r.key, v, e);
  }

  private indexItem(e: ItemEntry): void {
    const labels = e.labels;
    for (const k in labels) addTo2(this.itemsByKV, k, labels[k]!, e);
  }

  private unindexItem(e: ItemEntry): void {
    const labels = e.labels;
    for (const k in labels) delFrom2(this.itemsByKV, k, labels[k]!, e);
  }
}

function sameLabels(a: Labels, b: Labels): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && b[k] === a[k]);
}

function addTo<T>(m: Map<string, Set<T>>, k: string, x: T): void {
  let s = m.get(k);
  if (!s) m.set(k, (s = new Set()));
  s.add(x);
}
function delFrom<T>(m: Map<string, Set<T>>, k: string, x: T): void {
  const s = m.get(k);
  if (!s) return;
  s.delete(x);
  if (s.size === 0) m.delete(k);
}
function addTo2<T>(m: Map<string, Map<string, Set<T>>>, k: string, v: string, x: T): void {
  let mm = m.get(k);
  if (!mm) m.set(k, (mm = new Map()));
  addTo(mm, v, x);
}
function delFrom2<T>(m: Map<string, Map<string, Set<T>>>, k: string, v: string, x: T): void {
  const mm = m.get(k);
  if (!mm) return;
  delFrom(mm, v, x);
  if (mm.size === 0) m.delete(k);
}
