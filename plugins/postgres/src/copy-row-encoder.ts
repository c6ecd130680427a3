import type { StreamRecord } from '@codefeedr/core';
import { readSource, type TableColumn } from './table-layout.js';

const NULL = '\\N';

/** ES2024's String#isWellFormed (Node >= 20); the project's lib setting is ES2023. */
type WellFormedCheck = string & { isWellFormed(): boolean };

/**
 * Escapes a field for COPY's text format (backslash, newline, carriage return, tab).
 * A NUL character is passed through on purpose: the server refuses it for what it is
 * (text cannot hold one), so the record is dead-lettered, not silently altered.
 */
export function escapeCopyText(text: string): string {
  // Fast path: most fields need no escaping.
  if (!/[\\\n\r\t]/.test(text)) return text;
  return text.replace(/[\\\n\r\t]/g, (c) =>
    c === '\\' ? '\\\\' : c === '\n' ? '\\n' : c === '\r' ? '\\r' : '\\t',
  );
}

/** An array literal ({"a","b"}) for an array column; elements are quoted, nested arrays kept. */
function arrayLiteral(values: readonly unknown[]): string {
  const items = values.map((v) => {
    if (v === null || v === undefined) return 'NULL';
    if (Array.isArray(v)) return arrayLiteral(v);
    const text = typeof v === 'object' ? JSON.stringify(v) : String(v);
    return `"${text.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
  });
  return `{${items.join(',')}}`;
}

/** The text PostgreSQL parses for `value` in `column` (before COPY escaping); null for NULL. */
export function columnText(column: TableColumn, value: unknown): string | null {
  if (value === undefined || value === null) return null;
  if (column.json) return JSON.stringify(value);
  if (column.temporal && typeof value === 'number') return new Date(value).toISOString();
  if (column.array && Array.isArray(value)) return arrayLiteral(value);
  if (typeof value === 'string') return value;
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/**
 * Turns records into lines of COPY's text format for a fixed list of columns, optionally
 * led by the record's index in its batch (the staging table orders duplicates by it).
 */
export class CopyRowEncoder {
  constructor(private readonly columns: readonly TableColumn[]) {}

  /** One line (with its newline) for `record`; `ordinal` first when given. */
  encode(record: StreamRecord<unknown>, ordinal?: number): string {
    let line = ordinal === undefined ? '' : `${ordinal}\t`;
    for (let i = 0; i < this.columns.length; i++) {
      const column = this.columns[i]!;
      const text = columnText(column, readSource(record, column.source));
      // UTF-8 cannot carry a lone surrogate: encoding would silently turn it into U+FFFD.
      if (text !== null && !(text as WellFormedCheck).isWellFormed())
        throw new TypeError(
          `column "${column.name}" gets a string with a lone UTF-16 surrogate, which is not valid Unicode`,
        );
      line += (i === 0 ? '' : '\t') + (text === null ? NULL : escapeCopyText(text));
    }
    return `${line}\n`;
  }
}
