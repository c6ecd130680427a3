import { escapeIdentifier } from 'pg';

/** A table name as configured (`events` or `analytics.events`), quoted once for SQL. */
export interface TableName {
  /** As the user wrote it: for messages. */
  readonly display: string;
  /** Each part quoted with pg's escapeIdentifier: safe to put in a statement. */
  readonly sql: string;
  readonly schema: string | undefined;
  readonly name: string;
}

/** Unquoted parts, so any name is allowed (quoting keeps case and odd characters). */
export const TABLE_NAME_PATTERN = /^[^."\s]+(\.[^."\s]+)?$/;

/** Parses `table` or `schema.table`; the pattern above has been checked by the config schema. */
export function tableName(configured: string): TableName {
  const dot = configured.indexOf('.');
  const schema = dot < 0 ? undefined : configured.slice(0, dot);
  const name = dot < 0 ? configured : configured.slice(dot + 1);
  return {
    display: configured,
    sql:
      schema === undefined
        ? escapeIdentifier(name)
        : `${escapeIdentifier(schema)}.${escapeIdentifier(name)}`,
    schema,
    name,
  };
}
