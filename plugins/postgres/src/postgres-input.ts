import { setTimeout as delay } from 'node:timers/promises';
import {
  Any,
  defineInput,
  z,
  type JsonValue,
  type Source,
  type StreamRecord,
} from '@codefeedr/core';
import pg, { escapeIdentifier } from 'pg';
import {
  connectError,
  openPostgresPool,
  postgresConnectionSchema,
  type PostgresEndpoint,
} from './connection.js';
import {
  PostgresInputColumnError,
  PostgresOrderValueNullError,
  PostgresPluginError,
  PostgresPositionInvalidError,
  PostgresStatementError,
} from './errors.js';
import { TABLE_NAME_PATTERN, tableName } from './table-name.js';

const POSITION_ALIAS = '__codefeedr_pos_';
const TIMESTAMP_ALIAS = '__codefeedr_ts';

export const postgresInputConfigSchema = postgresConnectionSchema
  .extend({
    table: z
      .string()
      .regex(TABLE_NAME_PATTERN, 'must be `table` or `schema.table`')
      .optional()
      .describe('Table to read (or give `query`).'),
    query: z
      .string()
      .min(1)
      .optional()
      .describe(
        'A SELECT to read instead of a table; it is wrapped as a subquery, so no ORDER BY or LIMIT.',
      ),
    orderBy: z
      .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
      .describe(
        'Increasing, NOT NULL column(s) rows are read in and resumed after, e.g. `id`, or [updated_at, id] (the last one unique).',
      ),
    key: z.string().min(1).optional().describe('Column whose value becomes the record key.'),
    timestampColumn: z
      .string()
      .min(1)
      .optional()
      .describe('timestamp/timestamptz/date column for the event time (default: the time read).'),
    mode: z
      .enum(['bounded', 'follow'])
      .default('bounded')
      .describe(
        'bounded: read the rows there when the stage starts, then end; follow: keep polling for new rows.',
      ),
    pollIntervalMs: z
      .number()
      .int()
      .positive()
      .default(1_000)
      .describe('In follow mode, how long to wait after a poll that found nothing.'),
    batchSize: z.number().int().positive().default(1_000).describe('Most rows one query reads.'),
  })
  .refine((c) => (c.table === undefined) !== (c.query === undefined), {
    message: 'give exactly one of `table` and `query`',
  });

export type PostgresInputConfig = z.output<typeof postgresInputConfigSchema>;

/** The input's position: the `orderBy` values (as text) of the last row returned, or null before the first. */
export interface PostgresInputPosition {
  after: string[] | null;
}

// Values as JSON can carry them: 64-bit integers as numbers when exact, dates and bytea as the server's text.
const TEXT_TYPES = new Set([
  pg.types.builtins.TIMESTAMP,
  pg.types.builtins.TIMESTAMPTZ,
  pg.types.builtins.DATE,
  pg.types.builtins.TIME,
  pg.types.builtins.TIMETZ,
  pg.types.builtins.INTERVAL,
  pg.types.builtins.BYTEA,
]);
const jsonFriendlyTypes: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
    if (TEXT_TYPES.has(oid)) return (text: string) => text;
    if (oid === pg.types.builtins.INT8)
      return (text: string) => {
        const n = Number(text);
        return Number.isSafeInteger(n) ? n : text;
      };
    return pg.types.getTypeParser(oid, format);
  }) as pg.CustomTypesConfig['getTypeParser'],
};

/**
 * Reads a table or query in `orderBy` order, a batch per query, resuming after the last
 * row returned (keyset pagination: `WHERE (a, b) > ($1, $2) ORDER BY a, b LIMIT n`).
 * Bounded mode ends when a query finds nothing new; follow mode keeps polling.
 *
 * Rows committed later with a smaller `orderBy` value than one already read are not seen
 * (as with every incrementing-column reader): order by a value assigned at commit, or let
 * writers commit in order.
 */
export class PostgresInputSource implements Source<Record<string, unknown>> {
  private after: string[] | null = null;
  /** Bounded mode: the last `orderBy` values to read (null: the source was empty at start). */
  private until: string[] | null | undefined;
  private readonly orderBy: readonly string[];
  private readonly sourceName: string;

  private constructor(
    private readonly pool: pg.Pool,
    readonly endpoint: PostgresEndpoint,
    private readonly config: PostgresInputConfig,
  ) {
    this.orderBy = typeof config.orderBy === 'string' ? [config.orderBy] : config.orderBy;
    this.sourceName = config.table ?? 'the `query`';
  }

  /** Connects, failing fast with host:port on a bad address or login. */
  static async open(config: PostgresInputConfig): Promise<PostgresInputSource> {
    const { pool, endpoint } = await openPostgresPool(config, {
      max: 1,
      types: jsonFriendlyTypes,
      // Timestamps as UTC text: values and positions read the same whatever the server's zone.
      options: '-c TimeZone=UTC',
    });
    const source = new PostgresInputSource(pool, endpoint, config);
    try {
      // A wrong table, query or column fails here, at startup, rather than at the first poll.
      const { fields } = await pool.query(`SELECT q.* FROM ${source.from()} AS q LIMIT 0`);
      const names = new Set(fields.map((f) => f.name));
      for (const [setting, column] of [
        ...source.orderBy.map((c) => ['orderBy', c] as const),
        ['key', config.key] as const,
        ['timestampColumn', config.timestampColumn] as const,
      ]) {
        if (column !== undefined && !names.has(column))
          throw new PostgresInputColumnError(source.sourceName, setting, column, [...names]);
      }
      const { text, values } = source.statement(0);
      await pool.query(text, values);
      // Bounded: the rows there now, so a table written to all the time still ends.
      if (config.mode === 'bounded') source.until = await source.head();
    } catch (error) {
      await pool.end().catch(() => undefined);
      throw error instanceof PostgresPluginError
        ? error
        : new PostgresStatementError('reading', source.sourceName, error);
    }
    return source;
  }

  async poll(
    maxRecords: number,
    signal: AbortSignal,
  ): Promise<StreamRecord<Record<string, unknown>>[] | null> {
    if (this.until === null) return null;
    const limit = Math.max(1, Math.min(maxRecords, this.config.batchSize));
    const { text, values } = this.statement(limit);
    let rows: Record<string, unknown>[];
    try {
      rows = (await this.pool.query(text, values)).rows as Record<string, unknown>[];
    } catch (error) {
      if (isConnectFailure(error)) throw connectError(this.endpoint, error);
      throw new PostgresStatementError('reading', this.sourceName, error);
    }
    if (rows.length === 0) {
      if (this.config.mode === 'bounded') return null;
      await delay(this.config.pollIntervalMs, undefined, { signal }).catch(() => undefined);
      return [];
    }
    const now = Date.now();
    const out = new Array<StreamRecord<Record<string, unknown>>>(rows.length);
    let last = this.after;
    for (let r = 0; r < rows.length; r++) {
      const row = rows[r]!;
      const after: string[] = [];
      for (let i = 0; i < this.orderBy.length; i++) {
        const value = row[`${POSITION_ALIAS}${i}`];
        if (value === null || value === undefined)
          throw new PostgresOrderValueNullError(this.sourceName, this.orderBy[i]!);
        after.push(value as string);
        delete row[`${POSITION_ALIAS}${i}`];
      }
      let timestamp = now;
      if (this.config.timestampColumn !== undefined) {
        const ms = row[TIMESTAMP_ALIAS];
        delete row[TIMESTAMP_ALIAS];
        if (typeof ms === 'number' && Number.isFinite(ms)) timestamp = Math.trunc(ms);
      }
      const key = this.config.key === undefined ? undefined : row[this.config.key];
      out[r] = {
        key: key === undefined || key === null ? undefined : String(key),
        value: row,
        timestamp,
      };
      last = after;
    }
    // Only once the whole batch is in hand: a throw above must not move the position.
    this.after = last;
    return out;
  }

  position(): JsonValue {
    return { after: this.after };
  }

  restore(position: JsonValue): void {
    const after = (position as { after?: unknown } | null)?.after;
    if (
      after === null ||
      (Array.isArray(after) &&
        after.length === this.orderBy.length &&
        after.every((v) => typeof v === 'string'))
    ) {
      this.after = after as string[] | null;
      return;
    }
    throw new PostgresPositionInvalidError(this.orderBy.length, position);
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  private statement(limit: number): { text: string; values: unknown[] } {
    const from = this.from();
    const order = this.orderBy.map((c) => `q.${escapeIdentifier(c)}`);
    const extra = order.map((c, i) => `${c}::text AS "${POSITION_ALIAS}${i}"`);
    if (this.config.timestampColumn !== undefined)
      extra.push(
        `(extract(epoch FROM q.${escapeIdentifier(this.config.timestampColumn)}) * 1000)::float8 AS "${TIMESTAMP_ALIAS}"`,
      );
    const values: unknown[] = [];
    const conditions: string[] = [];
    // (a, b) > ($1, $2): a row comparison, so ties in `a` resume on `b`.
    const compare = (operator: string, bound: readonly string[]) => {
      const params = bound.map((v) => {
        values.push(v);
        return `$${values.length}`;
      });
      conditions.push(
        order.length === 1
          ? `${order[0]} ${operator} ${params[0]}`
          : `(${order.join(', ')}) ${operator} (${params.join(', ')})`,
      );
    };
    if (this.after !== null) compare('>', this.after);
    if (this.until !== undefined && this.until !== null) compare('<=', this.until);
    values.push(limit);
    const where = conditions.length === 0 ? '' : `WHERE ${conditions.join(' AND ')}`;
    return {
      text: `SELECT q.*, ${extra.join(', ')} FROM ${from} AS q ${where} ORDER BY ${order.join(', ')} LIMIT $${values.length}`,
      values,
    };
  }

  /** The table, or the query as a subquery (without a trailing semicolon, which it cannot hold). */
  private from(): string {
    return this.config.table !== undefined
      ? tableName(this.config.table).sql
      : `(${(this.config.query ?? '').trim().replace(/;+$/, '')})`;
  }

  /** The greatest `orderBy` values now: where a bounded read ends (null: nothing to read). */
  private async head(): Promise<string[] | null> {
    const from = this.from();
    const order = this.orderBy.map((c) => `q.${escapeIdentifier(c)}`);
    const { rows } = await this.pool.query(
      `SELECT ${order.map((c, i) => `${c}::text AS "${POSITION_ALIAS}${i}"`).join(', ')} FROM ${from} AS q ORDER BY ${order.map((c) => `${c} DESC`).join(', ')} LIMIT 1`,
    );
    const row = rows[0] as Record<string, string | null> | undefined;
    if (row === undefined) return null;
    return this.orderBy.map((column, i) => {
      const value = row[`${POSITION_ALIAS}${i}`];
      if (value === null || value === undefined)
        throw new PostgresOrderValueNullError(this.sourceName, column);
      return value;
    });
  }
}

/** pg's errors when it could not get a connection at all (the pool's connect, not a statement). */
function isConnectFailure(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return (
    code === 'ECONNREFUSED' ||
    code === 'ETIMEDOUT' ||
    code === 'ENOTFOUND' ||
    code === 'EHOSTUNREACH'
  );
}

export const postgresInput = Object.assign(
  defineInput({
    name: 'input',
    description:
      "Reads a PostgreSQL table or query in an increasing column's order, resumable from its checkpointed position; bounded or follow mode.",
    configSchema: postgresInputConfigSchema,
    outputType: Any,
    createSource: (config) => PostgresInputSource.open(config),
  }),
  { guarantees: ['at-least-once'] as const },
);
