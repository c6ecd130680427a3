import type { StreamRecord } from '@codefeedr/core';
import { escapeIdentifier, type ClientBase } from 'pg';
import { PostgresStatementError, PostgresTableLayoutError, codeOf } from './errors.js';
import type { TableName } from './table-name.js';

/** Where a column's value comes from: the record key, the whole value, its event time, or a field. */
export type ValueSource =
  | { readonly kind: 'key' }
  | { readonly kind: 'value' }
  | { readonly kind: 'timestamp' }
  /** The value's top-level fields no other column takes whole (null when there are none). */
  | { readonly kind: 'rest'; readonly taken: ReadonlySet<string> }
  | { readonly kind: 'field'; readonly path: readonly string[] };

export type OutputMode = 'upsert' | 'ignore' | 'append';

/** A column as planned from the config and the message type, before the table is looked at. */
export interface PlannedColumn {
  readonly name: string;
  readonly source: ValueSource;
  /** The type used when the sink creates the table. */
  readonly type: string;
}

/** A column as it exists in the table. */
export interface TableColumn extends PlannedColumn {
  /** Quoted for SQL. */
  readonly sql: string;
  /** The column's real type (format_type), which the staging table copies. */
  readonly sqlType: string;
  /** json/jsonb: values are written as JSON text, strings included. */
  readonly json: boolean;
  /** An array type: JavaScript arrays are written as array literals. */
  readonly array: boolean;
  /** A date/time type: numbers are epoch milliseconds. */
  readonly temporal: boolean;
}

export interface LayoutPlan {
  readonly columns: readonly PlannedColumn[];
  /** The ON CONFLICT column; undefined in append mode. */
  readonly keyColumn: string | undefined;
}

/** A column in the explicit mapping: a source (`$key`, `$value`, `$timestamp`, a dot path) and a type. */
export type ColumnMapping = string | { readonly from: string; readonly type?: string | undefined };

export interface LayoutOptions {
  readonly mode: OutputMode;
  /** `$key` or a dot path into the value. */
  readonly key: string;
  readonly keyColumn?: string | undefined;
  readonly columns?: Readonly<Record<string, ColumnMapping>> | undefined;
  /** The stage's message type as JSON Schema, when known. */
  readonly jsonSchema?: Readonly<Record<string, unknown>> | undefined;
}

/** PostgreSQL truncates longer identifiers silently, which would break the catalog lookups. */
const MAX_IDENTIFIER_BYTES = 63;

export function parseValueSource(text: string): ValueSource {
  if (text === '$key') return { kind: 'key' };
  if (text === '$value') return { kind: 'value' };
  if (text === '$timestamp') return { kind: 'timestamp' };
  if (text === '$rest') return { kind: 'rest', taken: new Set() };
  return { kind: 'field', path: text.split('.') };
}

export function describeSource(source: ValueSource): string {
  return source.kind === 'field' ? source.path.join('.') : `$${source.kind}`;
}

function sameSource(a: ValueSource, b: ValueSource): boolean {
  return describeSource(a) === describeSource(b);
}

/** The value `source` picks out of `record` (undefined when a field is absent). */
export function readSource(record: StreamRecord<unknown>, source: ValueSource): unknown {
  switch (source.kind) {
    case 'key':
      return record.key;
    case 'value':
      return record.value;
    case 'timestamp':
      return record.timestamp;
    case 'rest': {
      const value = record.value;
      if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
      let rest: Record<string, unknown> | undefined;
      for (const [name, field] of Object.entries(value))
        if (!source.taken.has(name) && field !== undefined) (rest ??= {})[name] = field;
      return rest;
    }
    case 'field': {
      let current: unknown = record.value;
      for (const part of source.path) {
        if (current === null || typeof current !== 'object' || Array.isArray(current))
          return undefined;
        current = (current as Record<string, unknown>)[part];
      }
      return current;
    }
  }
}

/**
 * The SQL type of a JSON Schema: top-level scalars get typed columns, everything else
 * (objects, arrays, unions of several types) jsonb, which holds any JSON losslessly.
 */
export function sqlTypeOfJsonSchema(schema: unknown): string {
  if (schema === null || typeof schema !== 'object') return 'jsonb';
  const s = schema as Record<string, unknown>;
  const alternatives = (s['anyOf'] ?? s['oneOf']) as unknown[] | undefined;
  if (Array.isArray(alternatives)) {
    const nonNull = alternatives.filter(
      (a) =>
        !(typeof a === 'object' && a !== null && (a as Record<string, unknown>)['type'] === 'null'),
    );
    return nonNull.length === 1 ? sqlTypeOfJsonSchema(nonNull[0]) : 'jsonb';
  }
  let type = s['type'];
  if (Array.isArray(type)) {
    const nonNull = type.filter((t) => t !== 'null');
    type = nonNull.length === 1 ? nonNull[0] : undefined;
  }
  if (
    type === undefined &&
    Array.isArray(s['enum']) &&
    s['enum'].every((v) => typeof v === 'string')
  )
    type = 'string';
  switch (type) {
    case 'string':
      if (s['format'] === 'date-time') return 'timestamptz';
      if (s['format'] === 'date') return 'date';
      return 'text';
    case 'integer':
      return 'bigint';
    case 'number':
      return 'double precision';
    case 'boolean':
      return 'boolean';
    default:
      return 'jsonb';
  }
}

function propertiesOf(schema: unknown): Record<string, unknown> | undefined {
  if (schema === null || typeof schema !== 'object') return undefined;
  const properties = (schema as Record<string, unknown>)['properties'];
  return properties !== null && typeof properties === 'object'
    ? (properties as Record<string, unknown>)
    : undefined;
}

/** The JSON Schema of the field at `path`, when the schema describes it. */
function schemaAt(schema: unknown, path: readonly string[]): unknown {
  let current = schema;
  for (const part of path) {
    current = propertiesOf(current)?.[part];
    if (current === undefined) return undefined;
  }
  return current;
}

/** One column per top-level property of an object schema; undefined for any other schema. */
export function columnsFromJsonSchema(schema: unknown): PlannedColumn[] | undefined {
  const properties = propertiesOf(schema);
  if (properties === undefined || Object.keys(properties).length === 0) return undefined;
  const columns: PlannedColumn[] = Object.entries(properties).map(([name, property]) => ({
    name,
    source: { kind: 'field', path: [name] },
    type: sqlTypeOfJsonSchema(property),
  }));
  // A schema open to other fields (zod's .loose()): keep them too, rather than drop them.
  if ((schema as Record<string, unknown>)['additionalProperties'] !== false) {
    const name = 'extra' in properties ? 'codefeedr_extra' : 'extra';
    columns.push({ name, source: parseValueSource('$rest'), type: 'jsonb' });
  }
  return columns;
}

/** `untypedField`: what a field the schema does not describe gets (jsonb holds any JSON; a key wants text). */
function defaultType(source: ValueSource, jsonSchema: unknown, untypedField = 'jsonb'): string {
  switch (source.kind) {
    case 'key':
      return 'text';
    case 'timestamp':
      return 'timestamptz';
    case 'value':
    case 'rest':
      return 'jsonb';
    case 'field': {
      const at = jsonSchema === undefined ? undefined : schemaAt(jsonSchema, source.path);
      return at === undefined ? untypedField : sqlTypeOfJsonSchema(at);
    }
  }
}

/**
 * Which columns the sink writes and which one is the conflict key:
 * an explicit `columns` mapping wins; else the message type's top-level properties;
 * else a document layout (the key and the whole value as jsonb).
 */
export function planLayout(options: LayoutOptions, table: string): LayoutPlan {
  const keySource = parseValueSource(options.key);
  let columns: PlannedColumn[];
  if (options.columns !== undefined && Object.keys(options.columns).length > 0) {
    columns = Object.entries(options.columns).map(([name, mapping]) => {
      const from = typeof mapping === 'string' ? mapping : mapping.from;
      const source = parseValueSource(from);
      const type =
        typeof mapping === 'string' || mapping.type === undefined
          ? defaultType(source, options.jsonSchema)
          : mapping.type;
      return { name, source, type };
    });
  } else {
    columns = columnsFromJsonSchema(options.jsonSchema) ?? [
      { name: 'value', source: { kind: 'value' }, type: 'jsonb' },
    ];
  }
  const documentLayout = columns.length === 1 && columns[0]!.source.kind === 'value';
  let keyColumn: string | undefined;
  if (options.mode !== 'append' || documentLayout) {
    keyColumn = options.keyColumn ?? columns.find((c) => sameSource(c.source, keySource))?.name;
    if (keyColumn === undefined)
      keyColumn = keySource.kind === 'field' ? keySource.path.join('_') : 'record_key';
    if (!columns.some((c) => c.name === keyColumn)) {
      columns = [
        {
          name: keyColumn,
          source: keySource,
          type: defaultType(keySource, options.jsonSchema, 'text'),
        },
        ...columns,
      ];
    }
  }
  const taken = columns.flatMap((c) =>
    c.source.kind === 'field' && c.source.path.length === 1 ? [c.source.path[0]!] : [],
  );
  columns = columns.map((c) =>
    c.source.kind === 'rest' ? { ...c, source: { kind: 'rest', taken: new Set(taken) } } : c,
  );
  for (const column of columns) {
    if (Buffer.byteLength(column.name) > MAX_IDENTIFIER_BYTES)
      throw new PostgresTableLayoutError(
        table,
        `column name "${column.name.slice(0, 20)}…" is longer than ${MAX_IDENTIFIER_BYTES} bytes; map it to a shorter name in \`columns\``,
      );
  }
  return { columns, keyColumn: options.mode === 'append' ? undefined : keyColumn };
}

interface CatalogColumn {
  name: string;
  type: string;
  typname: string;
  category: string;
  /** NOT NULL with no default, identity or generation: every insert must give it a value. */
  required: boolean;
}

async function readCatalog(
  client: ClientBase,
  table: TableName,
): Promise<CatalogColumn[] | undefined> {
  const { rows } = await client.query<CatalogColumn>(
    `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, t.typname, t.typcategory AS category,
            a.attnotnull AND NOT a.atthasdef AND a.attidentity = '' AND a.attgenerated = '' AS required
       FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
      WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
      ORDER BY a.attnum`,
    [table.sql],
  );
  if (rows.length > 0) return rows;
  const exists = await client.query('SELECT to_regclass($1) IS NOT NULL AS exists', [table.sql]);
  return (exists.rows[0] as { exists: boolean }).exists ? [] : undefined;
}

/** The target table as the sink writes it: columns with their real types, and the key column. */
export class TableLayout {
  private constructor(
    readonly table: TableName,
    readonly columns: readonly TableColumn[],
    readonly keyColumn: TableColumn | undefined,
    /** Every non-key column's type has equality, so an upsert can skip rows that would not change. */
    readonly comparable: boolean,
    /** The table has deferrable constraints: checked at COMMIT unless made immediate. */
    readonly deferrable: boolean,
  ) {}

  /**
   * Checks the table against `plan`, creating it first when it is missing and `create` is
   * on. Upsert and ignore modes need a unique index on exactly the key column (ON CONFLICT
   * names it). Every problem is reported with the statement that fixes it.
   */
  static async ensure(
    client: ClientBase,
    table: TableName,
    plan: LayoutPlan,
    create: boolean,
  ): Promise<TableLayout> {
    let catalog: CatalogColumn[] | undefined;
    try {
      catalog = await readCatalog(client, table);
      if (catalog === undefined) {
        if (!create)
          throw new PostgresTableLayoutError(
            table.display,
            'it does not exist; create it, or set createTable: true to let the output create it',
          );
        await createTable(client, table, plan);
        catalog = (await readCatalog(client, table)) ?? [];
      }
    } catch (error) {
      if (error instanceof PostgresTableLayoutError) throw error;
      throw new PostgresStatementError('looking up the table', table.display, error);
    }
    const byName = new Map(catalog.map((c) => [c.name, c]));
    const missing = plan.columns.filter((c) => !byName.has(c.name));
    if (missing.length > 0)
      throw new PostgresTableLayoutError(
        table.display,
        `it has no column ${missing.map((c) => `"${c.name}"`).join(', ')}; add ${missing.length === 1 ? 'it' : 'them'} (${missing
          .map((c) => `ALTER TABLE ${table.sql} ADD COLUMN ${escapeIdentifier(c.name)} ${c.type}`)
          .join('; ')}) or change \`columns\``,
      );
    const written = new Set(plan.columns.map((c) => c.name));
    const unfilled = catalog.filter((c) => c.required && !written.has(c.name));
    // Otherwise every row would fail its NOT NULL check and be dead-lettered.
    if (unfilled.length > 0)
      throw new PostgresTableLayoutError(
        table.display,
        `column ${unfilled.map((c) => `"${c.name}"`).join(', ')} is NOT NULL without a default but the output does not write it; map it in \`columns\` or give it a default (ALTER TABLE ${table.sql} ALTER COLUMN ${escapeIdentifier(unfilled[0]!.name)} SET DEFAULT …)`,
      );
    const columns = plan.columns.map((planned): TableColumn => {
      const found = byName.get(planned.name)!;
      return {
        ...planned,
        sql: escapeIdentifier(planned.name),
        sqlType: found.type,
        json: found.typname === 'json' || found.typname === 'jsonb',
        array: found.category === 'A',
        temporal: found.category === 'D',
      };
    });
    const keyColumn = columns.find((c) => c.name === plan.keyColumn);
    if (keyColumn !== undefined && !(await hasUniqueIndexOn(client, table, keyColumn.name)))
      throw new PostgresTableLayoutError(
        table.display,
        `upsert needs a unique index on exactly "${keyColumn.name}" (ON CONFLICT names it); add one (ALTER TABLE ${table.sql} ADD PRIMARY KEY (${keyColumn.sql})), set \`keyColumn\`, or use mode: append`,
      );
    const others = columns.filter((c) => c !== keyColumn);
    return new TableLayout(
      table,
      columns,
      keyColumn,
      await hasEquality(client, others),
      await hasDeferrableConstraints(client, table),
    );
  }
}

async function createTable(client: ClientBase, table: TableName, plan: LayoutPlan): Promise<void> {
  const definitions = plan.columns.map(
    (c) => `${escapeIdentifier(c.name)} ${c.type}${c.name === plan.keyColumn ? ' NOT NULL' : ''}`,
  );
  if (plan.keyColumn !== undefined)
    definitions.push(`PRIMARY KEY (${escapeIdentifier(plan.keyColumn)})`);
  try {
    await client.query(`CREATE TABLE IF NOT EXISTS ${table.sql} (${definitions.join(', ')})`);
  } catch (error) {
    // Two workers creating the same table race on the catalog; the loser finds it made.
    const code = codeOf(error);
    if (code !== '42P07' && code !== '23505') {
      if (code === '42704' || code === '42601' || code === '42P16')
        throw new PostgresTableLayoutError(
          table.display,
          `CREATE TABLE failed: ${(error as Error).message}; check the \`type\` of each column in \`columns\``,
        );
      throw error;
    }
  }
}

async function hasUniqueIndexOn(
  client: ClientBase,
  table: TableName,
  column: string,
): Promise<boolean> {
  const { rows } = await client.query(
    `SELECT 1 FROM pg_index i
       JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
      WHERE i.indrelid = to_regclass($1) AND i.indisunique AND i.indpred IS NULL
        AND i.indnkeyatts = 1 AND a.attname = $2`,
    [table.sql, column],
  );
  return rows.length > 0;
}

/**
 * Whether `(a, b) IS DISTINCT FROM (c, d)` parses for these column types (json, xml and
 * the geometric types have no equality): PostgreSQL resolves the operators at parse time.
 */
async function hasEquality(client: ClientBase, columns: readonly TableColumn[]): Promise<boolean> {
  if (columns.length === 0) return false;
  const row = `(${columns.map((c) => `NULL::${c.sqlType}`).join(', ')})`;
  try {
    await client.query(`SELECT ${row} IS DISTINCT FROM ${row}`);
    return true;
  } catch {
    return false;
  }
}

async function hasDeferrableConstraints(client: ClientBase, table: TableName): Promise<boolean> {
  const { rows } = await client.query(
    'SELECT 1 FROM pg_constraint WHERE conrelid = to_regclass($1) AND condeferrable LIMIT 1',
    [table.sql],
  );
  return rows.length > 0;
}
