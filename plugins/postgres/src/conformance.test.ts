import type { JsonValue } from '@codefeedr/core';
import {
  sinkConformanceSuite,
  sourceConformanceSuite,
  type SinkTarget,
  type SourceTarget,
} from '@codefeedr/testkit';
import { escapeIdentifier } from 'pg';
import { postgresUrl, withClient } from './postgres-test-support.js';

const index = new URL('./index.ts', import.meta.url);

/** A document-layout table (record_key + value jsonb) in `mode`; `stored` counts rows per key. */
function sinkTable(mode: 'upsert' | 'append') {
  return async (testName: string): Promise<SinkTarget> => {
    const table = `cf_sink_${testName}`;
    return {
      config: { url: postgresUrl(), table, mode },
      stored: () =>
        withClient(async (client) => {
          const { rows } = await client.query<{ record_key: string; n: string }>(
            `SELECT record_key, count(*) AS n FROM ${escapeIdentifier(table)} GROUP BY record_key`,
          );
          return new Map(rows.map((r) => [r.record_key, Number(r.n)]));
        }),
      drop: async () => {
        await withClient((client) =>
          client.query(`DROP TABLE IF EXISTS ${escapeIdentifier(table)}`),
        );
      },
    };
  };
}

// jsonb cannot hold a NUL character: the server refuses the row for what it is.
const rejectedValue = (id: string): JsonValue => ({
  id,
  key: 'rejected',
  seq: 0,
  note: 'nul \u0000 inside',
});

sinkConformanceSuite({
  name: 'postgres',
  output: { module: index, export: 'postgresOutput' },
  // Upsert by the record key (the default).
  target: sinkTable('upsert'),
  idempotent: true,
  rejectedValue,
});

sinkConformanceSuite({
  name: 'postgres (append mode)',
  output: { module: index, export: 'postgresOutput' },
  target: sinkTable('append'),
  // Without storePositions append is at-least-once (runtime-positions.test.ts covers it with).
  idempotent: false,
  rejectedValue,
});

/** A table of the appended values, read in insertion order (`n`); `extra` goes into the input's config. */
function sourceTable(extra: Record<string, JsonValue>) {
  return async (testName: string): Promise<SourceTarget> => {
    const table = `cf_source_${testName}`;
    await withClient((client) =>
      client.query(
        `CREATE TABLE ${escapeIdentifier(table)} (n bigserial PRIMARY KEY, id text NOT NULL, key text NOT NULL, seq integer NOT NULL)`,
      ),
    );
    return {
      config: { url: postgresUrl(), table, orderBy: 'n', key: 'key', ...extra },
      append: (values) =>
        withClient(async (client) => {
          // One statement, rows in the given order: n increases with it.
          await client.query(
            `INSERT INTO ${escapeIdentifier(table)} (id, key, seq)
             SELECT v.id, v.key, v.seq FROM unnest($1::text[], $2::text[], $3::int[]) WITH ORDINALITY AS v(id, key, seq, o)
             ORDER BY v.o`,
            [values.map((v) => v.id), values.map((v) => v.key), values.map((v) => v.seq)],
          );
        }),
      drop: async () => {
        await withClient((client) =>
          client.query(`DROP TABLE IF EXISTS ${escapeIdentifier(table)}`),
        );
      },
    };
  };
}

sourceConformanceSuite({
  name: 'postgres',
  input: { module: index, export: 'postgresInput' },
  target: sourceTable({}),
  bounded: true,
  idOf: (value) => (value as { id: string }).id,
});

sourceConformanceSuite({
  name: 'postgres (follow mode)',
  input: { module: index, export: 'postgresInput' },
  target: sourceTable({ mode: 'follow', pollIntervalMs: 50 }),
  bounded: false,
  idOf: (value) => (value as { id: string }).id,
});
