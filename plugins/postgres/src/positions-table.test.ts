import { afterAll, describe, expect, it } from 'vitest';
import { PositionsTable, positionCovers } from './positions-table.js';
import { dropTables, uniqueTable, withClient } from './postgres-test-support.js';
import { tableName } from './table-name.js';

const name = uniqueTable('positions');

afterAll(async () => {
  await dropTables(name);
});

describe('positionCovers', () => {
  it('compares offsets as numbers, whether numbers or digit strings', () => {
    expect(positionCovers('100', '99')).toBe(true);
    expect(positionCovers('100', '100')).toBe(true);
    expect(positionCovers('99', '100')).toBe(false);
    expect(positionCovers(9, '10')).toBe(false); // not as text: "9" > "10"
    expect(positionCovers('18446744073709551615', '18446744073709551614')).toBe(true);
    expect(positionCovers(undefined, '1')).toBe(false);
  });

  it('compares any other position by equality only', () => {
    expect(positionCovers({ after: ['a'] }, { after: ['a'] })).toBe(true);
    expect(positionCovers({ after: ['b'] }, { after: ['a'] })).toBe(false);
  });
});

describe('PositionsTable', () => {
  it('keeps one row per sink and channel, updated in the caller’s transaction', async () => {
    const a = new PositionsTable(tableName(name), 'pipeline/a');
    const b = new PositionsTable(tableName(name), 'pipeline/b');
    await withClient(async (client) => {
      await a.ensure(client);
      await a.ensure(client); // idempotent
      await a.store(client, { 't/0': '5', 't/1': '7' });
      await b.store(client, { 't/0': '1' });
      await client.query('BEGIN');
      await a.store(client, { 't/0': '9' });
      await client.query('ROLLBACK');
      expect(await a.load(client)).toEqual({ 't/0': '5', 't/1': '7' });
      await a.store(client, { 't/0': '9', source: { after: ['x'] } });
      expect(await a.load(client)).toEqual({ 't/0': '9', 't/1': '7', source: { after: ['x'] } });
      expect(await b.load(client)).toEqual({ 't/0': '1' });
      expect(Object.fromEntries(await a.lock(client, ['t/1', 'nope']))).toEqual({ 't/1': '7' });
    });
  });
});
