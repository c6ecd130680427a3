import { describe, expect, it } from 'vitest';
import { PostgresTableLayoutError } from './errors.js';
import { planLayout, sqlTypeOfJsonSchema } from './table-layout.js';

describe('planLayout', () => {
  it('maps JSON Schema scalars to typed columns and everything else to jsonb', () => {
    expect(sqlTypeOfJsonSchema({ type: 'string' })).toBe('text');
    expect(sqlTypeOfJsonSchema({ type: 'string', format: 'date-time' })).toBe('timestamptz');
    expect(sqlTypeOfJsonSchema({ type: 'string', format: 'date' })).toBe('date');
    expect(sqlTypeOfJsonSchema({ type: 'integer' })).toBe('bigint');
    expect(sqlTypeOfJsonSchema({ type: 'number' })).toBe('double precision');
    expect(sqlTypeOfJsonSchema({ type: 'boolean' })).toBe('boolean');
    expect(sqlTypeOfJsonSchema({ anyOf: [{ type: 'integer' }, { type: 'null' }] })).toBe('bigint');
    expect(sqlTypeOfJsonSchema({ type: ['string', 'null'] })).toBe('text');
    expect(sqlTypeOfJsonSchema({ enum: ['a', 'b'] })).toBe('text');
    expect(sqlTypeOfJsonSchema({ anyOf: [{ type: 'integer' }, { type: 'string' }] })).toBe('jsonb');
    expect(sqlTypeOfJsonSchema({ type: 'array', items: { type: 'string' } })).toBe('jsonb');
    expect(sqlTypeOfJsonSchema({})).toBe('jsonb');
  });

  it('without a schema or mapping: the record key and the whole value', () => {
    expect(planLayout({ mode: 'upsert', key: '$key' }, 't')).toEqual({
      columns: [
        { name: 'record_key', source: { kind: 'key' }, type: 'text' },
        { name: 'value', source: { kind: 'value' }, type: 'jsonb' },
      ],
      keyColumn: 'record_key',
    });
    expect(planLayout({ mode: 'upsert', key: 'repo.id' }, 't').columns[0]).toEqual({
      name: 'repo_id',
      source: { kind: 'field', path: ['repo', 'id'] },
      type: 'text',
    });
  });

  it('keeps fields a loose schema allows in an `extra` column, and adds none for a closed one', () => {
    const properties = { id: { type: 'string' }, extra: { type: 'string' } };
    const loose = planLayout(
      { mode: 'append', key: '$key', jsonSchema: { type: 'object', properties } },
      't',
    );
    const rest = loose.columns.find((c) => c.source.kind === 'rest')!;
    expect(rest.name).toBe('codefeedr_extra'); // `extra` is a property already
    expect(rest.source).toEqual({ kind: 'rest', taken: new Set(['id', 'extra']) });
    const closed = planLayout(
      {
        mode: 'append',
        key: '$key',
        jsonSchema: { type: 'object', properties, additionalProperties: false },
      },
      't',
    );
    expect(closed.columns.map((c) => c.name)).toEqual(['id', 'extra']);
  });

  it('uses the schema column a field-path key names, and adds none in append mode', () => {
    const jsonSchema = {
      additionalProperties: false,
      type: 'object',
      properties: { id: { type: 'integer' }, name: { type: 'string' } },
    };
    expect(planLayout({ mode: 'upsert', key: 'id', jsonSchema }, 't')).toEqual({
      columns: [
        { name: 'id', source: { kind: 'field', path: ['id'] }, type: 'bigint' },
        { name: 'name', source: { kind: 'field', path: ['name'] }, type: 'text' },
      ],
      keyColumn: 'id',
    });
    expect(
      planLayout({ mode: 'append', key: '$key', jsonSchema }, 't').columns.map((c) => c.name),
    ).toEqual(['id', 'name']);
  });

  it('types explicitly mapped columns from `type`, else from the schema, else jsonb', () => {
    const jsonSchema = {
      type: 'object',
      properties: { repo: { type: 'object', properties: { name: { type: 'string' } } } },
    };
    const plan = planLayout(
      {
        mode: 'upsert',
        key: '$key',
        keyColumn: 'k',
        columns: {
          k: '$key',
          repo: 'repo.name',
          n: { from: 'n', type: 'numeric(10,2)' },
          other: 'x.y',
          at: '$timestamp',
        },
        jsonSchema,
      },
      't',
    );
    expect(Object.fromEntries(plan.columns.map((c) => [c.name, c.type]))).toEqual({
      k: 'text',
      repo: 'text',
      n: 'numeric(10,2)',
      other: 'jsonb',
      at: 'timestamptz',
    });
  });

  it('refuses a column name PostgreSQL would truncate', () => {
    expect(() =>
      planLayout({ mode: 'append', key: '$key', columns: { ['x'.repeat(64)]: 'a' } }, 't'),
    ).toThrow(PostgresTableLayoutError);
  });
});
