// Calico's label selector language (libcalico-go/lib/selector), parsed once to an AST.
//
// Grammar (precedence low to high):  or := and ('||' and)* ; and := op ('&&' op)* ;
// op := '!'* ( has(k) | all() | global() | '(' or ')' | k ('=='|'!='|contains|starts with|
// ends with) STRING | k ('in'|'not in') '{' [STRING (',' STRING)* [',']] '}' ).
// An empty (or blank) selector is all(). Whitespace is space and tab only, as in Calico.
// Label keys are runs of [a-zA-Z0-9_./-]. Strings are '...' or "..." with no escapes.
//
// Semantics, as Calico's: `k == v`, `k in {}`, `contains`, `starts with`, `ends with` and
// `has(k)` need the label present; `k != v` and `k not in {...}` match when it is absent;
// `global()` is true here (namespaceSelector gives it its "not namespaced" meaning).

/** A selector did not parse; `position` is the 0-based offset in the text where it went wrong. */
export class SelectorSyntaxError extends Error {
  override name = 'SelectorSyntaxError';
  constructor(
    readonly selector: string,
    readonly position: number,
    readonly reason: string,
  ) {
    super(`invalid selector ${JSON.stringify(selector)} at position ${position}: ${reason}`);
  }
}

export type Labels = Record<string, string>;

export type SelectorNode =
  | { op: 'all' }
  | { op: 'global' }
  | { op: 'has'; key: string }
  | { op: '==' | '!=' | 'contains' | 'starts with' | 'ends with'; key: string; value: string }
  | { op: 'in' | 'not in'; key: string; values: string[] }
  | { op: 'not'; operand: SelectorNode }
  | { op: 'and' | 'or'; operands: SelectorNode[] };

function evalNode(n: SelectorNode, labels: Labels): boolean {
  switch (n.op) {
    case 'all':
    case 'global':
      return true;
    case 'has':
      return Object.prototype.hasOwnProperty.call(labels, n.key);
    case '==': {
      const v = get(labels, n.key);
      return v !== undefined && v === n.value;
    }
    case '!=': {
      const v = get(labels, n.key);
      return v === undefined || v !== n.value;
    }
    case 'contains': {
      const v = get(labels, n.key);
      return v !== undefined && v.includes(n.value);
    }
    case 'starts with': {
      const v = get(labels, n.key);
      return v !== undefined && v.startsWith(n.value);
    }
    case 'ends with': {
      const v = get(labels, n.key);
      return v !== undefined && v.endsWith(n.value);
    }
    case 'in': {
      const v = get(labels, n.key);
      return v !== undefined && n.values.includes(v);
    }
    case 'not in': {
      const v = get(labels, n.key);
      return v === undefined || !n.values.includes(v);
    }
    case 'not':
      return !evalNode(n.operand, labels);
    case 'and': {
      const ops = n.operands;
      for (let i = 0; i < ops.length; i++) if (!evalNode(ops[i]!, labels)) return false;
      return true;
    }
    case 'or': {
      const ops = n.operands;
      for (let i = 0; i < ops.length; i++) if (evalNode(ops[i]!, labels)) return true;
      return false;
    }
  }
}

function get(labels: Labels, key: string): string | undefined {
  return Object.prototype.hasOwnProperty.call(labels, key) ? labels[key] : undefined;
}

function quote(s: string): string {
  return s.includes('"') ? `'${s}'` : `"${s}"`;
}

function render(n: SelectorNode): string {
  switch (n.op) {
    case 'all':
      return 'all()';
    case 'global':
      return 'global()';
    case 'has':
      return `has(${n.key})`;
    case '==':
    case '!=':
    case 'contains':
    case 'starts with':
    case 'ends with':
      return `${n.key} ${n.op} ${quote(n.value)}`;
    case 'in':
    case 'not in':
      return `${n.key} ${n.op} {${n.values.map(quote).join(', ')}}`;
    case 'not':
      return `!${render(n.operand)}`;
    case 'and':
      return `(${n.operands.map(render).join(' && ')})`;
    case 'or':
      return `(${n.operands.map(render).join(' || ')})`;
  }
}

function collectKeys(n: SelectorNode, out: Set<string>): void {
  switch (n.op) {
    case 'all':
    case 'global':
      return;
    case 'not':
      return collectKeys(n.operand, out);
    case 'and':
    case 'or':
      for (const o of n.operands) collectKeys(o, out);
      return;
    default:
      out.add(n.key);
  }
}

function hasGlobal(n: SelectorNode): boolean {
  switch (n.op) {
    case 'global':
      return true;
    case 'not':
      return hasGlobal(n.operand);
    case 'and':
    case 'or':
      return n.operands.some(hasGlobal);
    default:
      return false;
  }
}

/** A parsed selector. Immutable; `toString()` is the canonical form (same for equivalent spellings). */
export class Selector {
  private readonly canonical: string;
  private keys?: ReadonlySet<string>;
  constructor(readonly root: SelectorNode) {
    this.canonical = render(root);
  }
  evaluate(labels: Labels): boolean {
    return evalNode(this.root, labels);
  }
  /** Canonical text, as Calico renders it: `(a == "x" && has(b))`, sorted `in` sets, `all()`. */
  toString(): string {
    return this.canonical;
  }
  /** The label keys this selector reads; a change to any other label cannot change its result. */
  labelKeys(): ReadonlySet<string> {
    if (!this.keys) {
      const s = new Set<string>();
      collectKeys(this.root, s);
      this.keys = s;
    }
    return this.keys;
  }
  /** True for `all()` (and the empty selector). */
  isAll(): boolean {
    return this.root.op === 'all';
  }
  /** True when the selector uses `global()` anywhere. */
  usesGlobal(): boolean {
    return hasGlobal(this.root);
  }
}

// ---------------------------------------------------------------------------------------
// Tokenizer

type TokKind =
  | 'label'
  | 'string'
  | '{'
  | '}'
  | ','
  | '=='
  | '!='
  | 'in'
  | 'not in'
  | '!'
  | 'contains'
  | 'starts with'
  | 'ends with'
  | 'all'
  | 'global'
  | 'has'
  | '('
  | ')'
  | '&&'
  | '||'
  | 'eof';

interface Token {
  kind: TokKind;
  value: string;
  pos: number;
}

const WS = new Set([' ', '\t']);

function isKeyChar(c: string): boolean {
  return (
    (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c === '_' || c === '.' || c === '/' || c === '-'
  );
}

function tokenize(text: string): Token[] {
  const toks: Token[] = [];
  let i = 0;
  const n = text.length;
  const fail = (pos: number, reason: string): never => {
    throw new SelectorSyntaxError(text, pos, reason);
  };
  const skipWs = (j: number): number => {
    while (j < n && WS.has(text[j]!)) j++;
    return j;
  };
  const readKey = (j: number): string => {
    let k = j;
    while (k < n && isKeyChar(text[k]!)) k++;
    return text.slice(j, k);
  };
  for (;;) {
    i = skipWs(i);
    if (i >= n) {
      toks.push({ kind: 'eof', value: '', pos: n });
      return toks;
    }
    const c = text[i]!;
    const last = toks.length ? toks[toks.length - 1]!.kind : undefined;
    const start = i;
    switch (c) {
      case '(':
      case ')':
      case '{':
      case '}':
      case ',':
        toks.push({ kind: c, value: c, pos: i });
        i++;
        continue;
      case '"':
      case "'": {
        const end = text.indexOf(c, i + 1);
        if (end < 0) fail(i, 'unterminated string');
        toks.push({ kind: 'string', value: text.slice(i + 1, end), pos: i });
        i = end + 1;
        continue;
      }
      case '=':
        if (text[i + 1] === '=') {
          toks.push({ kind: '==', value: '==', pos: i });
          i += 2;
          continue;
        }
        return fail(i, "expected '=='");
      case '!':
        if (text[i + 1] === '=') {
          toks.push({ kind: '!=', value: '!=', pos: i });
          i += 2;
        } else {
          toks.push({ kind: '!', value: '!', pos: i });
          i++;
        }
        continue;
      case '&':
        if (text[i + 1] === '&') {
          toks.push({ kind: '&&', value: '&&', pos: i });
          i += 2;
          continue;
        }
        return fail(i, "expected '&&'");
      case '|':
        if (text[i + 1] === '|') {
          toks.push({ kind: '||', value: '||', pos: i });
          i += 2;
          continue;
        }
        return fail(i, "expected '||'");
    }
    if (last === 'label') {
      // After a label only an operator word may follow.
      const rest = text.slice(i);
      const twoWord = (first: string, second: string, kind: TokKind): boolean => {
        if (!rest.startsWith(first)) return false;
        const j = skipWs(i + first.length);
        if (!text.startsWith(second, j)) fail(j, `expected '${first} ${second}'`);
        toks.push({ kind, value: kind, pos: start });
        i = j + second.length;
        return true;
      };
      if (rest.startsWith('contains')) {
        toks.push({ kind: 'contains', value: 'contains', pos: i });
        i += 'contains'.length;
      } else if (twoWord('starts', 'with', 'starts with')) {
        /* pushed */
      } else if (twoWord('ends', 'with', 'ends with')) {
        /* pushed */
      } else if (twoWord('not', 'in', 'not in')) {
        /* pushed */
      } else if (rest.startsWith('in')) {
        toks.push({ kind: 'in', value: 'in', pos: i });
        i += 2;
      } else {
        fail(i, `expected an operator after label '${toks[toks.length - 1]!.value}'`);
      }
      continue;
    }
    if (text.startsWith('has(', i)) {
      let j = skipWs(i + 4);
      const key = readKey(j);
      if (!key) fail(j, 'expected a label name in has()');
      j = skipWs(j + key.length);
      if (text[j] !== ')') fail(j, "expected ')' after has(label");
      toks.push({ kind: 'has', value: key, pos: start });
      i = j + 1;
      continue;
    }
    if (text.startsWith('all(', i) || text.startsWith('global(', i)) {
      const word = text.startsWith('all(', i) ? 'all' : 'global';
      const j = skipWs(i + word.length + 1);
      if (text[j] !== ')') fail(j, `expected ')' after ${word}(`);
      toks.push({ kind: word, value: word, pos: start });
      i = j + 1;
      continue;
    }
    const key = readKey(i);
    if (key) {
      toks.push({ kind: 'label', value: key, pos: i });
      i += key.length;
      continue;
    }
    fail(i, `unexpected character ${JSON.stringify(c)}`);
  }
}

// ---------------------------------------------------------------------------------------
// Parser

class Parser {
  private i = 0;
  constructor(
    private readonly text: string,
    private readonly toks: Token[],
  ) {}
  private peek(): Token {
    return this.toks[this.i]!;
  }
  private fail(t: Token, reason: string): never {
    throw new SelectorSyntaxError(this.text, t.pos, reason);
  }
  parseRoot(): SelectorNode {
    if (this.peek().kind === 'eof') return { op: 'all' };
    const n = this.parseOr();
    const t = this.peek();
    if (t.kind !== 'eof') this.fail(t, `unexpected ${describe(t)} after a complete expression`);
    return n;
  }
  private parseOr(): SelectorNode {
    const ops = [this.parseAnd()];
    while (this.peek().kind === '||') {
      this.i++;
      ops.push(this.parseAnd());
    }
    return ops.length === 1 ? ops[0]! : { op: 'or', operands: ops };
  }
  private parseAnd(): SelectorNode {
    const ops = [this.parseOp()];
    while (this.peek().kind === '&&') {
      this.i++;
      ops.push(this.parseOp());
    }
    return ops.length === 1 ? ops[0]! : { op: 'and', operands: ops };
  }
  private parseOp(): SelectorNode {
    let negated = false;
    while (this.peek().kind === '!') {
      negated = !negated;
      this.i++;
    }
    const t = this.peek();
    let node: SelectorNode;
    switch (t.kind) {
      case 'has':
        this.i++;
        node = { op: 'has', key: t.value };
        break;
      case 'all':
        this.i++;
        node = { op: 'all' };
        break;
      case 'global':
        this.i++;
        node = { op: 'global' };
        break;
      case '(': {
        this.i++;
        node = this.parseOr();
        const r = this.peek();
        if (r.kind !== ')') this.fail(r, `expected ')' but found ${describe(r)}`);
        this.i++;
        break;
      }
      case 'label': {
        this.i++;
        const op = this.peek();
        switch (op.kind) {
          case '==':
          case '!=':
          case 'contains':
          case 'starts with':
          case 'ends with': {
            this.i++;
            const v = this.peek();
            if (v.kind !== 'string') this.fail(v, `expected a quoted string after '${op.kind}' but found ${describe(v)}`);
            this.i++;
            node = { op: op.kind, key: t.value, value: v.value };
            break;
          }
          case 'in':
          case 'not in': {
            this.i++;
            const lb = this.peek();
            if (lb.kind !== '{') this.fail(lb, `expected '{' after '${op.kind}' but found ${describe(lb)}`);
            this.i++;
            const values: string[] = [];
            while (this.peek().kind === 'string') {
              values.push(this.peek().value);
              this.i++;
              if (this.peek().kind === ',') this.i++;
              else break;
            }
            const rb = this.peek();
            if (rb.kind !== '}') this.fail(rb, `expected a quoted string or '}' but found ${describe(rb)}`);
            this.i++;
            node = { op: op.kind, key: t.value, values: [...new Set(values)].sort(cmp) };
            break;
          }
          default:
            return this.fail(op, `expected an operator after label '${t.value}' but found ${describe(op)}`);
        }
        break;
      }
      default:
        return this.fail(t, `expected an expression but found ${describe(t)}`);
    }
    return negated ? { op: 'not', operand: node } : node;
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function describe(t: Token): string {
  switch (t.kind) {
    case 'eof':
      return 'end of selector';
    case 'label':
      return `label '${t.value}'`;
    case 'string':
      return `string ${quote(t.value)}`;
    case 'has':
      return `has(${t.value})`;
    case 'all':
    case 'global':
      return `${t.kind}()`;
    default:
      return `'${t.kind}'`;
  }
}

const cache = new Map<string, Selector>();
const CACHE_MAX = 10_000;

/**
 * Parses Calico selector text. Throws `SelectorSyntaxError` (with `.position`) on bad input.
 * Parsed selectors are cached by text (they are immutable).
 */
export function parseSelector(text: string): Selector {
  if (typeof text !== 'string') throw new SelectorSyntaxError(String(text), 0, 'selector must be a string');
  const hit = cache.get(text);
  if (hit) return hit;
  const sel = new Selector(new Parser(text, tokenize(text)).parseRoot());
  if (cache.size >= CACHE_MAX) cache.clear();
  cache.set(text, sel);
  return sel;
}

/** Validates without throwing: undefined when fine, else the error. */
export function selectorError(text: string): SelectorSyntaxError | undefined {
  try {
    parseSelector(text);
    return undefined;
  } catch (e) {
    if (e instanceof SelectorSyntaxError) return e;
    throw e;
  }
}

/** The always-true selector. */
export const ALL: Selector = new Selector({ op: 'all' });

// ---------------------------------------------------------------------------------------
// Building selectors (policy conversion)

/** `a && b && ...` (all() operands dropped; all() when nothing is left). */
export function andSelectors(...sels: Selector[]): Selector {
  const ops: SelectorNode[] = [];
  for (const s of sels) {
    if (s.root.op === 'all') continue;
    if (s.root.op === 'and') ops.push(...s.root.operands);
    else ops.push(s.root);
  }
  if (ops.length === 0) return ALL;
  if (ops.length === 1) return new Selector(ops[0]!);
  return new Selector({ op: 'and', operands: ops });
}

/** Rewrites every node of the tree bottom-up with `fn`. */
export function mapSelector(sel: Selector, fn: (n: SelectorNode) => SelectorNode): Selector {
  const walk = (n: SelectorNode): SelectorNode => {
    switch (n.op) {
      case 'not':
        return fn({ op: 'not', operand: walk(n.operand) });
      case 'and':
      case 'or':
        return fn({ op: n.op, operands: n.operands.map(walk) });
      default:
        return fn(n);
    }
  };
  return new Selector(walk(sel.root));
}

/** Prefixes every label key (`k == 'v'` → `pcns.k == 'v'`), as Calico does for namespace/SA selectors. */
export function prefixSelectorKeys(sel: Selector, prefix: string): Selector {
  return mapSelector(sel, (n) => ('key' in n ? { ...n, key: prefix + n.key } : n));
}

/** A selector node from parts (no parsing): equality. */
export function eqSelector(key: string, value: string): Selector {
  return new Selector({ op: '==', key, value });
}
export function inSelector(key: string, values: string[]): Selector {
  return new Selector({ op: 'in', key, values: [...new Set(values)].sort(cmp) });
}
