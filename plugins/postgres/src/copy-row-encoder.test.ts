import { describe, expect, it } from 'vitest';
import { CopyRowEncoder, escapeCopyText } from './copy-row-encoder.js';
import type { TableColumn, ValueSource } from './table-layout.js';

function column(name: string, source: ValueSource, kind: Partial<TableColumn> = {}): TableColumn {
  return {
    name,
    source,
    type: 'text',
    sql: `"${name}"`,
    sqlType: 'text',
    json: false,
    array: false,
    temporal: false,
    ...kind,
  };
}

describe('CopyRowEncoder', () => {
  it('escapes what COPY text format gives a meaning to, and nothing else', () => {
    expect(escapeCopyText('plain')).toBe('plain');
    expect(escapeCopyText('a\\b\tc\nd\re')).toBe('a\\\\b\\tc\\nd\\re');
    expect(escapeCopyText('nul\u0000kept')).toBe('nul\u0000kept'); // the server refuses it: a dead letter, not a silent change
  });

  it('writes JSON for json columns (strings quoted), array literals, epoch ms as ISO, NULL as \\N', () => {
    const encoder = new CopyRowEncoder([
      column('doc', { kind: 'value' }, { json: true }),
      column('name', { kind: 'field', path: ['name'] }, { json: true }),
      column('tags', { kind: 'field', path: ['tags'] }, { array: true }),
      column('at', { kind: 'timestamp' }, { temporal: true }),
      column('missing', { kind: 'field', path: ['nope', 'deeper'] }),
      column('n', { kind: 'field', path: ['n'] }),
      column('k', { kind: 'key' }),
      column('rest', { kind: 'rest', taken: new Set(['name', 'tags', 'n']) }, { json: true }),
    ]);
    const line = encoder.encode(
      {
        key: 'k1',
        value: { name: 'x\ty', tags: ['a', 'b"c', null], n: 5, other: 1 },
        timestamp: 0,
      },
      7,
    );
    expect(line).toBe(
      `7\t{"name":"x\\\\ty","tags":["a","b\\\\"c",null],"n":5,"other":1}\t"x\\\\ty"\t{"a","b\\\\"c",NULL}\t1970-01-01T00:00:00.000Z\t\\N\t5\tk1\t{"other":1}\n`,
    );
  });
});
