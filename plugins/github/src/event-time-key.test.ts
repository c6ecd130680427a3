import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readEventTimeKey } from './event-time-key.js';

const fixture = new URL('../../../test/fixtures/github/events.ndjson.gz', import.meta.url);
const lines = gunzipSync(readFileSync(fixture))
  .toString('utf8')
  .split('\n')
  .filter((l) => l.length > 0);

/** What parsing gives: the key the reorder buffer must order by. */
function parsedKey(line: string): { timestamp: number; note: string } | undefined {
  const v = JSON.parse(line) as { id?: unknown; created_at?: unknown };
  if (typeof v.id !== 'string' || typeof v.created_at !== 'string') return undefined;
  return { timestamp: Date.parse(v.created_at), note: v.id };
}

describe('readEventTimeKey', () => {
  it('reads what JSON.parse gives on every line of the recorded events it reads, and most of them', () => {
    let read = 0;
    for (const line of lines) {
      const key = readEventTimeKey(Buffer.from(line));
      if (key === undefined) continue;
      read++;
      expect(key).toEqual(parsedKey(line));
    }
    // The fixture's lines that carry nested created_at fields or put id last are among them.
    expect(lines.filter((l) => l.split('"created_at":"').length > 2).length).toBeGreaterThan(1000);
    expect(read / lines.length).toBeGreaterThan(0.95);
  });

  it('leaves to the parse what it cannot be sure of', () => {
    const no = (text: string) => expect(readEventTimeKey(Buffer.from(text))).toBeUndefined();
    no('{"type":"PushEvent","id":"1","created_at":"2015-01-01T12:00:00Z"}'); // id not first
    no(
      '{"id":"1","created_at":"2015-01-01T12:00:00Z","org":{"created_at":"2014-01-01T00:00:00Z"}}',
    ); // last one nested
    no('{"id":"1","payload":{"created_at":"2015-01-01T12:00:00Z"}}'); // only a nested one
    no('{"id":"1","created_at":"2015-01-01T12:00:00Z"} trailing'); // not one JSON object
    no('{"id":"1","created_at":"2015-01-01T12:00:00Z"'); // truncated
    no('{"id":"1","created_at":"2015-01-01\\u0054 12:00:00Z"}'); // an escape in the value
    no('{"id":"1","created_at":"not a date"}');
    no('{"id":"x1","created_at":"2015-01-01T12:00:00Z"}'); // id not digits
    no('{"id": "1","created_at":"2015-01-01T12:00:00Z"}'); // other spacing
    expect(
      readEventTimeKey(
        Buffer.from('{"id":"7","x":"}{\\"","created_at":"2015-01-01T12:00:00Z","org":{"a":"}"}}'),
      ),
    ).toEqual({
      timestamp: Date.UTC(2015, 0, 1, 12),
      note: '7',
    });
  });

  it('never reads a key that parsing would not give (generated events: nested, reordered, with tricky strings)', () => {
    const text = fc.string({
      unit: fc.constantFrom('a', '"', '\\', '{', '}', '[', ']', ':', ',', 'é'),
    });
    const date = fc
      .integer({ min: Date.UTC(2011, 0, 1), max: Date.UTC(2026, 0, 1) })
      .map((t) => new Date(t).toISOString().replace('.000', ''));
    const event = fc.record({
      id: fc.oneof(fc.bigInt({ min: 0n, max: 10n ** 12n }).map(String), text),
      type: text,
      payload: fc.dictionary(fc.constantFrom('created_at', 'id', 'body'), fc.oneof(date, text)),
      created_at: fc.oneof(date, text),
      org: fc.option(fc.dictionary(fc.constantFrom('created_at', 'login'), fc.oneof(date, text))),
    });
    fc.assert(
      fc.property(event, fc.boolean(), (e, idFirst) => {
        const ordered = idFirst
          ? e
          : { type: e.type, payload: e.payload, created_at: e.created_at, org: e.org, id: e.id };
        const line = JSON.stringify(ordered);
        const key = readEventTimeKey(Buffer.from(line));
        if (key !== undefined) expect(key).toEqual(parsedKey(line));
      }),
      { numRuns: 2_000 },
    );
  });
});
