import type { JsonValue } from '@codefeedr/core';
import type { ClientBase } from 'pg';
import { codeOf } from './errors.js';
import type { TableName } from './table-name.js';

/**
 * The consuming stage's positions, stored in the same database and the same transaction as
 * the rows they cover (the exactly-once pattern of sinks that own their offsets, as Kafka
 * Connect sinks writing to a database do): after a crash, the rows and the positions agree,
 * and the stage resumes from them, so nothing is written twice, even in append mode.
 *
 * One row per (sink, channel): a channel is what the runtime keeps a position for (a
 * buffer partition, `topic/partition`, or a source stage), the position its JSON.
 */
export class PositionsTable {
  constructor(
    readonly table: TableName,
    readonly sinkId: string,
  ) {}

  async ensure(client: ClientBase): Promise<void> {
    try {
      await client.query(
        `CREATE TABLE IF NOT EXISTS ${this.table.sql} (
           sink text NOT NULL,
           channel text NOT NULL,
           position jsonb NOT NULL,
           updated_at timestamptz NOT NULL DEFAULT now(),
           PRIMARY KEY (sink, channel))`,
      );
    } catch (error) {
      // Another sink created it at the same moment.
      const code = codeOf(error);
      if (code !== '42P07' && code !== '23505') throw error;
    }
  }

  /** Every stored position of this sink: channel → position. */
  async load(client: ClientBase): Promise<Record<string, JsonValue>> {
    const { rows } = await client.query<{ channel: string; position: JsonValue }>(
      `SELECT channel, position FROM ${this.table.sql} WHERE sink = $1`,
      [this.sinkId],
    );
    return Object.fromEntries(rows.map((r) => [r.channel, r.position]));
  }

  /** The stored positions of `channels`, locked until the transaction ends (one writer per channel). */
  async lock(client: ClientBase, channels: readonly string[]): Promise<Map<string, JsonValue>> {
    const { rows } = await client.query<{ channel: string; position: JsonValue }>(
      `SELECT channel, position FROM ${this.table.sql} WHERE sink = $1 AND channel = ANY($2) FOR UPDATE`,
      [this.sinkId, channels],
    );
    return new Map(rows.map((r) => [r.channel, r.position]));
  }

  /** Stores `positions` (inside the caller's transaction). */
  async store(client: ClientBase, positions: Readonly<Record<string, JsonValue>>): Promise<void> {
    await client.query(
      `INSERT INTO ${this.table.sql} (sink, channel, position)
       SELECT $1, p.key, p.value FROM jsonb_each($2::jsonb) AS p
       ON CONFLICT (sink, channel) DO UPDATE SET position = EXCLUDED.position, updated_at = now()`,
      [this.sinkId, JSON.stringify(positions)],
    );
  }
}

function asOffset(position: JsonValue | undefined): bigint | undefined {
  if (typeof position === 'number' && Number.isSafeInteger(position)) return BigInt(position);
  if (typeof position === 'string' && /^-?\d+$/.test(position)) return BigInt(position);
  return undefined;
}

/**
 * Whether a batch ending at `next` was already written by a transaction that stored
 * `stored`: offsets (numbers or digit strings, as buffers report them) compare as numbers;
 * any other position only when it is the same JSON.
 */
export function positionCovers(stored: JsonValue | undefined, next: JsonValue): boolean {
  if (stored === undefined) return false;
  const a = asOffset(stored);
  const b = asOffset(next);
  if (a !== undefined && b !== undefined) return a >= b;
  return JSON.stringify(stored) === JSON.stringify(next);
}
