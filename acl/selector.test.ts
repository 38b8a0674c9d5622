import { describe, expect, it } from 'vitest';
import { parseSelector, SelectorSyntaxError } from './selector.js';

type L = Record<string, string>;
// [selector, labels, expected]
const cases: [string, L, boolean][] = [];
const yes = (sel: string, ...ls: L[]) => ls.forEach((l) => cases.push([sel, l, true]));
const no = (sel: string, ...ls: L[]) => ls.forEach((l) => cases.push([sel, l, false]));

// Empty, blank and all()
yes('', {}, { a: 'b' });
yes('   ', {}, { a: 'b' });
yes('\t', {});
yes('all()', {}, { a: 'b' });
yes('all( )', {});
yes('global()', {}, { a: 'b' });
no('!all()', {}, { a: 'b' });
// ==
yes("a == 'b'", { a: 'b' }, { a: 'b', c: 'd' });
yes('a == "b"', { a: 'b' });
yes("a=='b'", { a: 'b' });
no("a == 'b'", {}, { a: 'c' }, { a: '' }, { a: 'B' }, { b: 'b' }, { a: 'bb' }, { a: ' b' });
yes("a == ''", { a: '' });
no("a == ''", {}, { a: 'x' });
// != : absent label matches
yes("a != 'b'", {}, { a: 'c' }, { a: '' }, { c: 'b' }, { a: 'B' });
no("a != 'b'", { a: 'b' }, { a: 'b', c: 'd' });
yes("a != ''", {}, { a: 'x' });
no("a != ''", { a: '' });
// has / !has
yes('has(a)', { a: '' }, { a: 'b' }, { a: 'b', c: 'd' });
no('has(a)', {}, { b: 'a' }, { aa: 'x' }, { A: 'x' });
yes('has( a )', { a: 'x' });
yes('!has(a)', {}, { b: 'x' }, { ab: 'x' });
no('!has(a)', { a: '' }, { a: 'x' });
yes('!!has(a)', { a: 'x' });
no('!!has(a)', {});
yes('!!!has(a)', {});
// in / not in
yes("a in {'b', 'c'}", { a: 'b' }, { a: 'c' });
no("a in {'b', 'c'}", {}, { a: 'd' }, { a: '' }, { b: 'b' });
no('a in {}', {}, { a: '' }, { a: 'b' });
yes("a in {''}", { a: '' });
yes("a in {'b',}", { a: 'b' });
yes("a in {'b' , 'c' , }", { a: 'c' });
yes("a in { 'b' }", { a: 'b' });
yes("a in {\"b\", 'c'}", { a: 'b' }, { a: 'c' });
yes("a not in {'b', 'c'}", {}, { a: 'd' }, { a: '' }, { x: 'b' });
no("a not in {'b', 'c'}", { a: 'b' }, { a: 'c' });
yes('a not in {}', {}, { a: 'anything' });
yes("a notin {'b'}", { a: 'c' });
yes("!a in {'b'}", {}, { a: 'c' });
no("!a in {'b'}", { a: 'b' });
no("!a not in {'b'}", {}, { a: 'c' });
yes("!a not in {'b'}", { a: 'b' });
// contains / starts with / ends with: label must be present
yes("a contains 'bc'", { a: 'abcd' }, { a: 'bc' }, { a: 'xbc' });
no("a contains 'bc'", {}, { a: 'b' }, { a: 'cb' }, { b: 'bc' });
yes("a contains ''", { a: '' }, { a: 'x' });
no("a contains ''", {});
yes("a starts with 'ab'", { a: 'ab' }, { a: 'abc' });
no("a starts with 'ab'", {}, { a: 'a' }, { a: 'cab' }, { a: 'Ab' });
yes("a startswith 'ab'", { a: 'abc' });
yes("a starts   with 'ab'", { a: 'abc' });
yes("a ends with 'yz'", { a: 'yz' }, { a: 'xyz' });
no("a ends with 'yz'", {}, { a: 'yza' }, { a: 'z' });
yes("a ends with ''", { a: '' });
yes("!a contains 'x'", {}, { a: 'y' });
no("!a contains 'x'", { a: 'axb' });
yes("!a starts with 'x'", {}, { a: 'yx' });
yes("!a ends with 'x'", {}, { a: 'xy' });
// label keys: '/', '.', '-', '_', digits, projectcalico.org/...
yes("projectcalico.org/namespace == 'default'", { 'projectcalico.org/namespace': 'default' });
no("projectcalico.org/namespace == 'default'", { 'projectcalico.org/namespace': 'kube-system' }, {});
yes("app.kubernetes.io/name == 'web'", { 'app.kubernetes.io/name': 'web' });
yes('has(projectcalico.org/orchestrator)', { 'projectcalico.org/orchestrator': 'k8s' });
yes("pcns.team == 'red'", { 'pcns.team': 'red' });
yes("pcsa.role in {'db'}", { 'pcsa.role': 'db' });
yes("my_label-1 == 'x'", { 'my_label-1': 'x' });
yes("1abc == 'x'", { '1abc': 'x' });
yes("-a == 'x'", { '-a': 'x' });
yes("a/b/c == 'x'", { 'a/b/c': 'x' });
yes("A == 'x'", { A: 'x' });
no("A == 'x'", { a: 'x' });
// keyword-looking labels
yes("all == 'x'", { all: 'x' });
yes("has == 'x'", { has: 'x' });
yes("global != 'x'", {});
yes("in == 'x'", { in: 'x' });
yes("not == 'x'", { not: 'x' });
yes("contains == 'x'", { contains: 'x' });
// values with special characters
yes("a == 'b c'", { a: 'b c' });
yes('a == "it\'s"', { a: "it's" });
yes("a == 'say \"hi\"'", { a: 'say "hi"' });
yes("a == '&& || ()'", { a: '&& || ()' });
yes("a == 'x==y'", { a: 'x==y' });
// && / ||
yes("a == 'b' && c == 'd'", { a: 'b', c: 'd' });
no("a == 'b' && c == 'd'", { a: 'b' }, { c: 'd' }, { a: 'b', c: 'e' }, {});
yes("a == 'b' || c == 'd'", { a: 'b' }, { c: 'd' }, { a: 'b', c: 'd' });
no("a == 'b' || c == 'd'", {}, { a: 'c', c: 'e' });
yes("a == 'b'&&c == 'd'", { a: 'b', c: 'd' });
yes("a == 'b'||c == 'd'", { c: 'd' });
yes('has(a) && has(b) && has(c)', { a: '', b: '', c: '' });
no('has(a) && has(b) && has(c)', { a: '', b: '' });
yes('has(a) || has(b) || has(c)', { c: '' });
no('has(a) || has(b) || has(c)', { d: '' });
// precedence: && binds tighter than ||
yes('has(a) || has(b) && has(c)', { a: '' }, { b: '', c: '' });
no('has(a) || has(b) && has(c)', { b: '' }, { c: '' });
yes('has(a) && has(b) || has(c)', { c: '' }, { a: '', b: '' });
no('has(a) && has(b) || has(c)', { a: '' });
yes('(has(a) || has(b)) && has(c)', { a: '', c: '' });
no('(has(a) || has(b)) && has(c)', { a: '' }, { c: '' });
yes('has(a) && (has(b) || has(c))', { a: '', c: '' });
no('has(a) && (has(b) || has(c))', { b: '' });
yes('((has(a)))', { a: '' });
no('((has(a)))', {});
// negation
yes("!(a == 'b')", {}, { a: 'c' });
no("!(a == 'b')", { a: 'b' });
yes("!a == 'b'", {}, { a: 'c' });
no("!a == 'b'", { a: 'b' });
yes("!a != 'b'", { a: 'b' });
no("!a != 'b'", {}, { a: 'c' });
yes('!(has(a) && has(b))', { a: '' }, {});
no('!(has(a) && has(b))', { a: '', b: '' });
yes('!(has(a) || has(b))', {}, { c: '' });
no('!(has(a) || has(b))', { b: '' });
yes('! has(a)', {});
yes('!has(a) && !has(b)', { c: '' });
no('!has(a) && !has(b)', { b: '' });
yes("!has(a) || a == 'x'", {}, { a: 'x' });
no("!has(a) || a == 'x'", { a: 'y' });
yes('!global()', ...[]);
no('!global()', {});
// combinations like Calico's own examples
yes("role == 'webserver' && environment in {'prod', 'staging'}", { role: 'webserver', environment: 'prod' });
no("role == 'webserver' && environment in {'prod', 'staging'}", { role: 'webserver', environment: 'dev' }, { role: 'webserver' });
yes("k8s-app == 'kube-dns' || has(projectcalico.org/serviceaccount)", { 'k8s-app': 'kube-dns' }, { 'projectcalico.org/serviceaccount': 'x' });
yes("has(a) && a not in {'b'}", { a: 'c' });
no("has(a) && a not in {'b'}", {}, { a: 'b' });
yes("a in {'x'} && a != 'y' && !has(z)", { a: 'x' });
no("a in {'x'} && a != 'y' && !has(z)", { a: 'x', z: '' });
yes("tier starts with 'front' && tier ends with 'end'", { tier: 'frontend' });
no("tier starts with 'front' && tier ends with 'end'", { tier: 'frontline' });
yes("all() && a == 'b'", { a: 'b' });
no("all() && a == 'b'", {});
yes("all() || a == 'b'", {});
yes("global() && a == 'b'", { a: 'b' });
yes(`a == 'b' && (c == "d" || (e in {'f', "g"} && !has(h)))`, { a: 'b', e: 'g' }, { a: 'b', c: 'd', h: '' });
no(`a == 'b' && (c == "d" || (e in {'f', "g"} && !has(h)))`, { a: 'b', e: 'g', h: '' }, { e: 'f' });

const errors: [string, number][] = [
  ["a = 'b'", 2],
  ["a === 'b'", 4],
  ["a == b", 5],
  ['a ==', 4],
  ["a == 'b", 5],
  ['a == "b', 5],
  ["'b' == a", 0],
  ['a', 1],
  ["a 'b'", 2],
  ["a & b == 'c'", 2],
  ["a == 'b' | c == 'd'", 9],
  ["a == 'b' &&", 11],
  ["a == 'b' ||", 11],
  ["&& a == 'b'", 0],
  ["(a == 'b'", 9],
  ["a == 'b')", 8],
  ["a == 'b' c == 'd'", 9],
  ['has(a', 5],
  ['has()', 4],
  ['has(a b)', 6],
  ['all(x)', 4],
  ['global(a)', 7],
  ["a in {'b'", 9],
  ["a in 'b'", 5],
  ["a in {b}", 6],
  ["a in {,}", 6],
  ["a in {'b' 'c'}", 10],
  ["a not {'b'}", 6],
  ["a starts 'b'", 9],
  ["a ends 'b'", 7],
  ["a contain 'b'", 2],
  ['()', 1],
  ['!', 1],
  ["a == 'b' !", 9],
  ["a == 'b'\n", 8],
  ["a\n== 'b'", 1],
  ["a == @", 5],
  ['has (a)', 4],
  ['all', 3],
  ["a == 'b' && && c == 'd'", 12],
  ["a != != 'b'", 5],
];

describe('parseSelector: Calico semantics', () => {
  it('has enough cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(150);
    expect(errors.length).toBeGreaterThanOrEqual(25);
  });
  it.each(cases)('%s on %j → %s', (sel, labels, want) => {
    expect(parseSelector(sel).evaluate(labels)).toBe(want);
  });
});

describe('parseSelector: syntax errors', () => {
  it.each(errors)('rejects %j at position %i', (sel, pos) => {
    let err: unknown;
    try {
      parseSelector(sel);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SelectorSyntaxError);
    expect((err as SelectorSyntaxError).position).toBe(pos);
    expect((err as SelectorSyntaxError).message).toContain('position');
  });
});

describe('Selector.toString: canonical form', () => {
  it.each([
    ['', 'all()'],
    ['all()', 'all()'],
    ["a=='b'", 'a == "b"'],
    ['a == "b"', 'a == "b"'],
    ["a == 'say \"x\"'", `a == 'say "x"'`],
    ["a != 'b'", 'a != "b"'],
    ["a in {'c','b','c'}", 'a in {"b", "c"}'],
    ["a not in {'b',}", 'a not in {"b"}'],
    ['has( a )', 'has(a)'],
    ['!!has(a)', 'has(a)'],
    ['!has(a)', '!has(a)'],
    ["a == 'b' && c == 'd' || e == 'f'", '((a == "b" && c == "d") || e == "f")'],
    ["(a == 'b')", 'a == "b"'],
    ["a starts  with 'x'", 'a starts with "x"'],
    ["a endswith 'x'", 'a ends with "x"'],
    ["a contains 'x'", 'a contains "x"'],
    ['global()', 'global()'],
  ])('%j → %s', (text, canon) => {
    expect(parseSelector(text).toString()).toBe(canon);
    // The canonical form parses back to itself.
    expect(parseSelector(canon).toString()).toBe(canon);
  });
  it('equivalent spellings share one canonical form', () => {
    expect(parseSelector("a in {'x', 'y'}").toString()).toBe(parseSelector('a in { "y" , "x" }').toString());
  });
  it('reports the label keys it reads', () => {
    expect([...parseSelector("a == 'b' && (has(c) || !d in {'x'})").labelKeys()].sort()).toEqual(['a', 'c', 'd']);
  });
});

describe('labels named like what every object inherits', () => {
  it('are absent unless the endpoint has them', () => {
    for (const key of ['toString', 'constructor', '__proto__', 'hasOwnProperty', 'valueOf']) {
      const none: Record<string, string> = {};
      expect(parseSelector(`has(${key})`).evaluate(none)).toBe(false);
      expect(parseSelector(`${key} == "x"`).evaluate(none)).toBe(false);
      expect(parseSelector(`${key} != "x"`).evaluate(none)).toBe(true);
      expect(parseSelector(`!has(${key})`).evaluate(none)).toBe(true);
      const own = JSON.parse(`{"${key}": "x"}`) as Record<string, string>;
      expect(parseSelector(`has(${key})`).evaluate(own)).toBe(true);
      expect(parseSelector(`${key} == "x"`).evaluate(own)).toBe(true);
    }
    // An empty value still counts as present.
    expect(parseSelector('has(a)').evaluate({ a: '' })).toBe(true);
  });
});
