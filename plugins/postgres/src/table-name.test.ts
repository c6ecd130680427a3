import { describe, expect, it } from 'vitest';
import { TABLE_NAME_PATTERN, tableName } from './table-name.js';

describe('tableName', () => {
  it('quotes each part, keeping case', () => {
    expect(tableName('Events')).toMatchObject({
      sql: '"Events"',
      schema: undefined,
      name: 'Events',
    });
    expect(tableName('analytics.events')).toMatchObject({
      sql: '"analytics"."events"',
      schema: 'analytics',
    });
  });

  it('accepts one optional schema and nothing that needs quoting inside a part', () => {
    for (const ok of ['events', 'a.b', 'with-dash', 'ünïcode'])
      expect(TABLE_NAME_PATTERN.test(ok), ok).toBe(true);
    for (const bad of ['a.b.c', 'has space', 'quo"te', '.x', 'x.', ''])
      expect(TABLE_NAME_PATTERN.test(bad), bad).toBe(false);
  });
});
