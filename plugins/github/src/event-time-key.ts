import type { DeferParse } from '@codefeedr/core';

/*
 * The order key of a GH Archive line (created_at, then id) read from its bytes, so the replay's
 * reorder buffer can hold raw lines and parse each one when it is released. A line it cannot
 * read with certainty is parsed at once instead, so what it returns must be what parsing gives:
 *
 * - id: GH Archive lines start with the top-level id (`{"id":"2489651045",…`); a line that
 *   does not (some put id last, after a nested object with an "id" of its own) is parsed.
 * - created_at: the last `"created_at":"` of the line (payloads carry nested ones before it),
 *   and only if the rest of the line after its value closes the top-level object and nothing
 *   else (org, which follows it, has none): then it is the top-level key, and the last one,
 *   which is the one JSON.parse keeps.
 */

const ID_PREFIX = Buffer.from('{"id":"');
const CREATED_AT = Buffer.from('"created_at":"');
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;

/** True when `line` from `from` to its end closes exactly the object it is in: `…}` and nothing after. */
function closesTopLevel(line: Buffer, from: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = from; i < line.length; i++) {
    const c = line[i]!;
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
      continue;
    }
    if (c === QUOTE) inString = true;
    else if (c === 0x7b || c === 0x5b)
      depth++; // { [
    else if (c === 0x7d || c === 0x5d) {
      // } ]
      if (--depth < 0) {
        for (let j = i + 1; j < line.length; j++) {
          const w = line[j]!;
          if (w !== 0x20 && w !== 0x09 && w !== 0x0d) return false;
        }
        return c === 0x7d;
      }
    }
  }
  return false;
}

/** `DeferParse` for the replay: the event time, and the id (the note) to order ties by. */
export const readEventTimeKey: DeferParse = (line) => {
  if (
    line.length < ID_PREFIX.length ||
    line.compare(ID_PREFIX, 0, ID_PREFIX.length, 0, ID_PREFIX.length) !== 0
  )
    return undefined;
  let idEnd = ID_PREFIX.length;
  while (idEnd < line.length && line[idEnd]! >= DIGIT_0 && line[idEnd]! <= DIGIT_9) idEnd++;
  if (idEnd === ID_PREFIX.length || line[idEnd] !== QUOTE) return undefined;
  const at = line.lastIndexOf(CREATED_AT);
  if (at === -1) return undefined;
  const valueStart = at + CREATED_AT.length;
  // The value up to its closing quote; an escape in it is left to the parse.
  let valueEnd = valueStart;
  while (valueEnd < line.length && line[valueEnd] !== QUOTE) {
    if (line[valueEnd] === BACKSLASH) return undefined;
    valueEnd++;
  }
  if (valueEnd === line.length) return undefined;
  if (!closesTopLevel(line, valueEnd + 1)) return undefined;
  const timestamp = Date.parse(line.toString('latin1', valueStart, valueEnd));
  if (!Number.isFinite(timestamp)) return undefined;
  return { timestamp, note: line.toString('latin1', ID_PREFIX.length, idEnd) };
};
