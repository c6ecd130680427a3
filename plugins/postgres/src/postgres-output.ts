import { once } from 'node:events';
import {
  Any,
  defineOutput,
  z,
  type JsonValue,
  type Logger,
  type MessageType,
  type Sink,
  type SinkRecordFailure,
  type SinkWriteResult,
  type StreamRecord,
} from '@codefeedr/core';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import {
  connectError,
  openPostgresPool,
  postgresConnectionSchema,
  type PostgresEndpoint,
} from './connection.js';
import { CopyRowEncoder } from './copy-row-encoder.js';
import {
  PostgresPluginError,
  PostgresRecordKeyMissingError,
  PostgresRecordRejectedError,
  PostgresRecordUnencodableError,
  PostgresStatementError,
  isRecordRejection,
  isTransientPostgresError,
} from './errors.js';
import { PositionsTable, positionCovers } from './positions-table.js';
import { TableLayout, describeSource, planLayout, readSource } from './table-layout.js';
import { TABLE_NAME_PATTERN, tableName } from './table-name.js';

// A type name, optionally with a modifier and array brackets: `text`, `numeric(10,2)`, `text[]`.
const SQL_TYPE = /^[A-Za-z_][A-Za-z0-9_ ]*(\(\s*\d+\s*(,\s*\d+\s*)?\))?(\[\])*$/;
const STAGING_TABLE = 'codefeedr_staging';
const ORDINAL_COLUMN = 'codefeedr_ord';
const TARGET_ALIAS = 'codefeedr_target';

const columnMappingSchema = z.union([
  z.string().min(1),
  z.object({
    from: z
      .string()
      .min(1)
      .describe(
        '$key, $value, $timestamp, $rest (top-level fields no other column takes), or a dot path into the value.',
      ),
    type: z
      .string()
      .regex(SQL_TYPE, 'must be a PostgreSQL type name such as text, bigint, numeric(10,2), text[]')
      .optional()
      .describe(
        'Column type when the output creates the table (default: from the message type, else jsonb).',
      ),
  }),
]);

export const postgresOutputConfigSchema = postgresConnectionSchema.extend({
  table: z
    .string()
    .regex(
      TABLE_NAME_PATTERN,
      'must be `table` or `schema.table` (no quotes, dots or spaces inside a part)',
    )
    .describe('Target table, `name` or `schema.name` (case kept).'),
  mode: z
    .enum(['upsert', 'ignore', 'append'])
    .default('upsert')
    .describe(
      'upsert: INSERT … ON CONFLICT (key) DO UPDATE (replays write nothing twice); ignore: … DO NOTHING (first write wins); append: COPY straight into the table.',
    ),
  key: z
    .string()
    .min(1)
    .default('$key')
    .describe('The upsert key: $key (the record key) or a dot path into the value, e.g. `id`.'),
  keyColumn: z
    .string()
    .min(1)
    .optional()
    .describe(
      'Column holding the key (default: the column mapped from `key`, else `record_key` or the path joined by _).',
    ),
  columns: z
    .record(z.string().min(1), columnMappingSchema)
    .optional()
    .describe(
      'Explicit mapping, column ← source ("repo": "repo.name", or { from, type }). Default: one column per top-level property of the message type, else the key and the whole value as jsonb.',
    ),
  schema: z
    .record(z.string(), z.unknown())
    .optional()
    .describe(
      "JSON Schema of the values (the message type's) to derive columns from; postgresOutputFor(type) fills it in TypeScript.",
    ),
  createTable: z
    .boolean()
    .default(true)
    .describe('Create the table (and the positions table) when missing.'),
  storePositions: z
    .boolean()
    .default(false)
    .describe(
      "Store the stage's input positions in `positionsTable` in each batch's transaction and resume from them: exactly-once even in append mode.",
    ),
  positionsTable: z
    .string()
    .regex(TABLE_NAME_PATTERN)
    .default('codefeedr_sink_positions')
    .describe('Where storePositions keeps them (one row per sink and input channel).'),
  sinkId: z
    .string()
    .min(1)
    .optional()
    .describe("Names this sink's rows in the positions table (default: pipeline/stage)."),
  statementTimeoutMs: z
    .number()
    .int()
    .positive()
    .default(60_000)
    .describe(
      "Server-side statement_timeout of the sink's connection; a timed-out batch is retried.",
    ),
});

export type PostgresOutputConfig = z.output<typeof postgresOutputConfigSchema>;

/** What the sink needs from the stage it runs in. */
export interface PostgresOutputContext {
  readonly stageId: string;
  readonly pipelineName: string;
  readonly logger?: Logger | undefined;
}

/**
 * Writes batches to a PostgreSQL table, one transaction per batch: COPY into a temporary
 * staging table, then INSERT … SELECT … ON CONFLICT (upsert or ignore), or COPY straight
 * into the table (append). Rows the server refuses are found by bisecting the batch
 * under savepoints inside that one transaction, and returned in `failed`; the rest commit.
 *
 * `write` commits before it resolves, so `flush` has nothing left to do. With
 * `storePositions`, `write(batch, positions)` stores the positions in the same transaction
 * and skips a batch whose positions are already stored (a replay), and `positions()`
 * returns them for the runtime to resume from.
 */
export class PostgresOutputSink<T = unknown> implements Sink<T> {
  private readonly staged = new WeakSet<pg.PoolClient>();
  private readonly encoder: CopyRowEncoder;
  private readonly keyIndex: number;
  private readonly copyStatement: string;
  /** INSERT … SELECT from the staging table; undefined in append mode. */
  private readonly mergeStatement: string | undefined;
  private warnedNoPositions = false;

  private constructor(
    private readonly pool: pg.Pool,
    readonly endpoint: PostgresEndpoint,
    readonly layout: TableLayout,
    private readonly config: PostgresOutputConfig,
    private readonly positionsTable: PositionsTable | undefined,
    private readonly logger: Logger | undefined,
  ) {
    this.encoder = new CopyRowEncoder(layout.columns);
    const list = layout.columns.map((c) => c.sql).join(', ');
    if (config.mode === 'append') {
      this.copyStatement = `COPY ${layout.table.sql} (${list}) FROM STDIN`;
    } else {
      this.copyStatement = `COPY ${STAGING_TABLE} (${ORDINAL_COLUMN}, ${list}) FROM STDIN`;
      this.mergeStatement = mergeStatement(layout, config.mode === 'upsert');
    }
    this.keyIndex = layout.keyColumn === undefined ? -1 : layout.columns.indexOf(layout.keyColumn);
  }

  /**
   * Connects (failing fast with host:port on a bad address or login), then checks or
   * creates the table. `jsonSchema` is the message type's, for a table derived from it.
   */
  static async open<T = unknown>(
    config: PostgresOutputConfig,
    ctx: PostgresOutputContext,
    jsonSchema: Record<string, unknown> | undefined = config.schema,
  ): Promise<PostgresOutputSink<T>> {
    const table = tableName(config.table);
    const plan = planLayout(
      {
        mode: config.mode,
        key: config.key,
        keyColumn: config.keyColumn,
        columns: config.columns,
        jsonSchema,
      },
      table.display,
    );
    const { pool, endpoint } = await openPostgresPool(config, {
      max: 1,
      statement_timeout: config.statementTimeoutMs,
    });
    try {
      const client = await pool.connect();
      try {
        const layout = await TableLayout.ensure(client, table, plan, config.createTable);
        let positions: PositionsTable | undefined;
        if (config.storePositions) {
          positions = new PositionsTable(
            tableName(config.positionsTable),
            config.sinkId ?? `${ctx.pipelineName}/${ctx.stageId}`,
          );
          await positions.ensure(client).catch((error: unknown) => {
            throw new PostgresStatementError(
              'creating the positions table',
              config.positionsTable,
              error,
            );
          });
        }
        return new PostgresOutputSink<T>(pool, endpoint, layout, config, positions, ctx.logger);
      } finally {
        client.release();
      }
    } catch (error) {
      await pool.end().catch(() => undefined);
      throw error;
    }
  }

  /**
   * Writes `batch` in one transaction. `positions` (channel → position just after this
   * batch) are stored in it when `storePositions` is on; a batch whose every position is
   * already stored was committed before (a replay) and is skipped.
   */
  async write(
    batch: readonly StreamRecord<T>[],
    positions?: Readonly<Record<string, JsonValue>>,
  ): Promise<void | SinkWriteResult<T>> {
    const failed: SinkRecordFailure<T>[] = [];
    const lines: string[] = new Array<string>(batch.length);
    const accepted: number[] = [];
    const staging = this.config.mode !== 'append';
    for (let i = 0; i < batch.length; i++) {
      const record = batch[i]!;
      if (this.keyIndex >= 0) {
        const key = readSource(record, this.layout.keyColumn!.source);
        if (key === undefined || key === null || key === '') {
          failed.push({
            record,
            error: new PostgresRecordKeyMissingError(
              this.layout.table.display,
              describeSource(this.layout.keyColumn!.source),
            ),
          });
          continue;
        }
      }
      try {
        lines[i] = this.encoder.encode(record, staging ? i : undefined);
        accepted.push(i);
      } catch (error) {
        // A value JSON cannot hold (a BigInt, a cycle): this record only.
        failed.push({
          record,
          error: new PostgresRecordUnencodableError(this.layout.table.display, error),
        });
      }
    }
    const storing = this.positionsTable !== undefined && positions !== undefined;
    if (this.positionsTable !== undefined && positions === undefined && !this.warnedNoPositions) {
      this.warnedNoPositions = true;
      this.logger?.warn(
        'storePositions is on but the runtime passes no positions to write(); rows are written without them (upsert stays idempotent by key, append may duplicate on replay)',
        { table: this.layout.table.display },
      );
    }
    if (accepted.length === 0 && !storing) return failed.length > 0 ? { failed } : undefined;

    const client = await this.connect();
    let discard = false;
    try {
      if (staging) await this.ensureStaging(client);
      await client.query('BEGIN');
      // A violation found at COMMIT could not be pinned on one row: check each statement.
      if (this.layout.deferrable) await client.query('SET CONSTRAINTS ALL IMMEDIATE');
      if (storing) {
        const channels = Object.keys(positions!);
        const stored = await this.positionsTable!.lock(client, channels);
        if (
          channels.length > 0 &&
          channels.every((c) => positionCovers(stored.get(c), positions![c]!))
        ) {
          await client.query('ROLLBACK');
          return undefined; // committed by an earlier run, dead letters included
        }
      }
      await this.attempt(client, batch, lines, accepted, failed);
      if (storing) await this.positionsTable!.store(client, positions!);
      await client.query('COMMIT');
    } catch (error) {
      // A connection that failed mid-statement (or cannot even roll back) is not reused.
      discard = isTransientPostgresError(error);
      await client.query('ROLLBACK').catch(() => {
        discard = true;
      });
      throw error instanceof PostgresPluginError
        ? error
        : new PostgresStatementError(
            'write',
            this.layout.table.display,
            error,
            'Nothing of the batch was committed.',
          );
    } finally {
      client.release(discard); // true: destroyed, the pool opens a new one
    }
    return failed.length > 0 ? { failed } : undefined;
  }

  /** `write` commits before it resolves: nothing is pending here. */
  async flush(): Promise<void> {}

  /** The positions stored with the rows (channel → position), or undefined without storePositions. */
  async positions(): Promise<Record<string, JsonValue> | undefined> {
    if (this.positionsTable === undefined) return undefined;
    const client = await this.connect();
    try {
      return await this.positionsTable.load(client);
    } catch (error) {
      throw new PostgresStatementError(
        'reading positions',
        this.positionsTable.table.display,
        error,
      );
    } finally {
      client.release();
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  private async connect(): Promise<pg.PoolClient> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (error) {
      throw connectError(this.endpoint, error);
    }
    return client;
  }

  /** The session's staging table, made once per connection; ON COMMIT DELETE ROWS empties it. */
  private async ensureStaging(client: pg.PoolClient): Promise<void> {
    if (this.staged.has(client)) return;
    const columns = this.layout.columns.map((c) => `${c.sql} ${c.sqlType}`).join(', ');
    await client.query(
      `CREATE TEMP TABLE IF NOT EXISTS ${STAGING_TABLE} (${ORDINAL_COLUMN} integer, ${columns}) ON COMMIT DELETE ROWS`,
    );
    this.staged.add(client);
  }

  /**
   * Writes the records at `indices` under a savepoint; when the server refuses the data,
   * rolls back to it and tries each half, down to the single records it refuses.
   */
  private async attempt(
    client: pg.PoolClient,
    batch: readonly StreamRecord<T>[],
    lines: readonly string[],
    indices: readonly number[],
    failed: SinkRecordFailure<T>[],
    tx: { staged: boolean } = { staged: false },
  ): Promise<void> {
    if (indices.length === 0) return;
    await client.query('SAVEPOINT codefeedr_rows');
    try {
      await this.writeRows(client, lines, indices, tx);
      await client.query('RELEASE SAVEPOINT codefeedr_rows');
    } catch (error) {
      if (!isRecordRejection(error)) throw error;
      await client.query('ROLLBACK TO SAVEPOINT codefeedr_rows');
      await client.query('RELEASE SAVEPOINT codefeedr_rows');
      if (indices.length === 1) {
        failed.push({
          record: batch[indices[0]!]!,
          error: new PostgresRecordRejectedError(this.layout.table.display, error),
        });
        return;
      }
      const middle = indices.length >>> 1;
      // Left half first: with duplicate keys, the later record still wins.
      await this.attempt(client, batch, lines, indices.slice(0, middle), failed, tx);
      await this.attempt(client, batch, lines, indices.slice(middle), failed, tx);
    }
  }

  /**
   * COPY, then merge from the staging table. ON COMMIT DELETE ROWS empties it at commit, so
   * it is truncated only when an earlier attempt of this transaction left rows in it
   * (bisecting): a TRUNCATE per batch would cost as much as a third of a small batch.
   */
  private async writeRows(
    client: pg.PoolClient,
    lines: readonly string[],
    indices: readonly number[],
    tx: { staged: boolean },
  ): Promise<void> {
    let text = '';
    for (const i of indices) text += lines[i]!;
    if (this.mergeStatement === undefined) {
      await copy(client, this.copyStatement, text); // append: straight into the table
      return;
    }
    if (tx.staged) await client.query(`TRUNCATE ${STAGING_TABLE}`);
    await copy(client, this.copyStatement, text);
    await client.query(this.mergeStatement);
    tx.staged = true;
  }
}

/**
 * INSERT … SELECT from the staging table. Upsert keeps the batch's last record per key
 * (DISTINCT ON … ORDER BY ordinal DESC), since ON CONFLICT DO UPDATE cannot touch one row
 * twice, and leaves rows that would not change alone (a replay writes no new row versions).
 */
function mergeStatement(layout: TableLayout, update: boolean): string {
  const { table, columns } = layout;
  const key = layout.keyColumn!;
  const list = columns.map((c) => c.sql).join(', ');
  const others = columns.filter((c) => c !== key);
  if (!update || others.length === 0)
    return `INSERT INTO ${table.sql} (${list}) SELECT ${list} FROM ${STAGING_TABLE} ORDER BY ${ORDINAL_COLUMN} ON CONFLICT (${key.sql}) DO NOTHING`;
  const changed = layout.comparable
    ? ` WHERE (${others.map((c) => `${TARGET_ALIAS}.${c.sql}`).join(', ')}) IS DISTINCT FROM (${others.map((c) => `EXCLUDED.${c.sql}`).join(', ')})`
    : '';
  return `INSERT INTO ${table.sql} AS ${TARGET_ALIAS} (${list}) SELECT DISTINCT ON (${key.sql}) ${list} FROM ${STAGING_TABLE} ORDER BY ${key.sql}, ${ORDINAL_COLUMN} DESC ON CONFLICT (${key.sql}) DO UPDATE SET ${others
    .map((c) => `${c.sql} = EXCLUDED.${c.sql}`)
    .join(', ')}${changed}`;
}

/** Streams `text` (COPY text format) through pg-copy-streams; rejects with the server's error. */
async function copy(client: pg.PoolClient, statement: string, text: string): Promise<void> {
  const stream = client.query(copyFrom(statement));
  const done = once(stream, 'finish');
  stream.end(text);
  await done; // `once` rejects on 'error'
}

/**
 * The output typed for one message type: the pipeline checks the edge, and a table the
 * output creates gets typed columns from the type's JSON Schema.
 */
export function postgresOutputFor<T>(inputType: MessageType<T>) {
  return Object.assign(
    defineOutput({
      name: 'output',
      description:
        'Writes records to a PostgreSQL table: COPY then upsert (default), ignore or append, one transaction per batch; rejected rows are dead-lettered; optional exactly-once with stored positions.',
      configSchema: postgresOutputConfigSchema,
      inputTypes: [inputType] as const,
      createSink: (config, ctx) =>
        PostgresOutputSink.open<T>(
          config,
          ctx,
          config.schema ?? (inputType.id === Any.id ? undefined : inputType.jsonSchema()),
        ),
    }),
    // Upsert by key is exactly-once on replays; storePositions makes append exactly-once too.
    { guarantees: ['at-least-once', 'exactly-once'] as const },
  );
}

/** The PostgreSQL output for any message type (`@codefeedr/plugin-postgres:output`). */
export const postgresOutput = postgresOutputFor(Any);
