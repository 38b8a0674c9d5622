import { describe, expect, it } from 'vitest';
import { ManifestErrors, parseManifests, validateManifests } from './manifest.js';
import { ValidationError } from './types.js';

const pool = (name: string, cidr: string) => `apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: ${name}
spec:
  cidr: ${cidr}
`;

function thrown(f: () => unknown): ValidationError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ValidationError);
    return e as ValidationError;
  }
  throw new Error('expected a ValidationError');
}

describe('parseManifests', () => {
  it('splits multi-document YAML, skipping empty and comment-only documents', () => {
    const text = `# leading comment\n---\n${pool('a', '10.0.0.0/16')}---\n# nothing here\n---\n${pool('b', '10.1.0.0/16')}---\n`;
    const docs = parseManifests(text, 'pools.yaml');
    expect(docs.map((d) => [d.index, (d.raw as any).metadata.name])).toEqual([
      [0, 'a'], // a comment before the first --- belongs to document 0
      [2, 'b'],
    ]);
  });

  it('expands kind: List (and *List kinds) and JSON arrays, with item positions', () => {
    const list = { apiVersion: 'v1', kind: 'List', items: [{ kind: 'A' }, { kind: 'B' }] };
    expect(parseManifests(JSON.stringify(list), 'l.json')).toEqual([
      { index: 0, item: 0, raw: { kind: 'A' } },
      { index: 0, item: 1, raw: { kind: 'B' } },
    ]);
    expect(parseManifests('kind: IPPoolList\nitems:\n  - kind: A\n', 'l.yaml')).toEqual([{ index: 0, item: 0, raw: { kind: 'A' } }]);
    expect(parseManifests('[{"kind":"A"}]', '-')).toEqual([{ index: 0, item: 0, raw: { kind: 'A' } }]);
    expect(parseManifests('{"kind":"A"}', '-')).toEqual([{ index: 0, raw: { kind: 'A' } }]);
    expect(parseManifests('', 'empty.json')).toEqual([]);
  });

  it('names the file, document and line of a YAML syntax error', () => {
    const e = thrown(() => parseManifests(`${pool('a', '10.0.0.0/16')}---\nkind: IPPool\nmetadata: [\n`, 'bad.yaml'));
    expect(e.source).toMatchObject({ file: 'bad.yaml', index: 1 });
    expect(e.message).toMatch(/^bad\.yaml, document 1: \(yaml\): YAML syntax error at line \d+, column \d+/);
  });

  it('rejects duplicate keys (a silent override would hide a typo)', () => {
    const e = thrown(() => parseManifests('kind: IPPool\nkind: Node\n', 'dup.yaml'));
    expect(e.message).toContain('dup.yaml, document 0');
  });

  it('names the file of a JSON syntax error', () => {
    const e = thrown(() => parseManifests('{"kind": "IPPool",', 'bad.json'));
    expect(e.message).toMatch(/^bad\.json, document 0: \(json\): JSON syntax error/);
  });

  it('a List whose items is not a list is an error', () => {
    const e = thrown(() => parseManifests('kind: List\nitems: 3\n', 'l.yaml'));
    expect(e.problems[0].path).toBe('items');
  });
});

describe('validateManifests', () => {
  it('returns every validated resource with its document index', () => {
    const docs = validateManifests(`${pool('a', '10.0.0.0/16')}---\n${pool('b', 'fd00::/64')}`, 'p.yaml');
    expect(docs.map((d) => [d.index, d.resource.metadata.name, d.resource.spec!.blockSize])).toEqual([
      [0, 'a', 26],
      [1, 'b', 122],
    ]);
  });

  it('one bad document among good ones: throws naming that document, kind/name and field', () => {
    const text = `${pool('a', '10.0.0.0/16')}---\n${pool('b', '10.1.0.1/16')}---\n${pool('c', '10.2.0.0/16')}`;
    const e = thrown(() => validateManifests(text, 'p.yaml'));
    expect(e.message).toBe('p.yaml, document 1, IPPool b: spec.cidr: "10.1.0.1/16" has host bits set beyond the /16 prefix (CIDR must be strictly masked)');
  });

  it('several bad documents: one error listing each of them', () => {
    const text = `${pool('a', 'nope')}---\n${pool('b', '10.1.0.0/16')}---\nkind: IPPool\napiVersion: projectcalico.org/v3\nmetadata: {name: C}\nspec: {cidr: 10.2.0.0/16}\n`;
    const e = thrown(() => validateManifests(text, 'p.yaml'));
    expect(e).toBeInstanceOf(ManifestErrors);
    const m = e as ManifestErrors;
    expect(m.errors.map((x) => x.source.index)).toEqual([0, 2]);
    expect(m.message).toContain('2 invalid documents');
    expect(m.message).toContain('p.yaml, document 0, IPPool a: spec.cidr');
    expect(m.message).toContain('p.yaml, document 2, IPPool C: metadata.name');
    expect(m.problems.map((p) => p.path)).toEqual(['[document 0, IPPool a] spec.cidr', '[document 2, IPPool C] metadata.name']);
  });

  it('names the List item of a bad object', () => {
    const text = JSON.stringify({ kind: 'List', items: [JSON.parse(JSON.stringify({ apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: 'x' }, spec: { cidr: '10.0.0.0/16', blockSize: 8 } }))] });
    const e = thrown(() => validateManifests(text, 'l.json'));
    expect(e.message).toMatch(/^l\.json, document 0, item 0, IPPool x: spec\.blockSize/);
  });
});
