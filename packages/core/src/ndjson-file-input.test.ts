import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { stageContext } from './chain-harness.js';
import { ndjsonFileInput } from './ndjson-file-input.js';
import type { StreamRecord } from './record.js';
import { SOURCE_ERROR_HEADER } from './source-record-error.js';
import type { Source } from './source.js';

const dir = mkdtempSync(join(tmpdir(), 'cf-ndjson-in-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const signal = new AbortController().signal;

async function drain(
  source: Source<unknown>,
  batch: number,
  limit = Infinity,
): Promise<StreamRecord[]> {
  const out: StreamRecord[] = [];
  while (out.length < limit) {
    const records = await source.poll(Math.min(batch, limit - out.length), signal);
    if (records === null) break;
    out.push(...records);
  }
  return out;
}

const events = Array.from({ length: 500 }, (_, i) => ({
  id: String(i),
  repo: { name: `r${i % 7}` },
  created_at: new Date(Date.UTC(2015, 0, 1, 12, 0, i)).toISOString(),
  text: 'é'.repeat(i % 5), // multi-byte characters: offsets are bytes, not characters
}));
const content = events.map((e) => JSON.stringify(e)).join('\n') + '\n';

function fileOf(name: string, text: string, gzip = false): string {
  const path = join(dir, name);
  writeFileSync(path, gzip ? gzipSync(text) : text);
  return path;
}

describe('ndjsonFileInput', () => {
  for (const gzip of [false, true]) {
    it(`reads every line of a ${gzip ? 'gzip' : 'plain'} file with event time and key from fields`, async () => {
      const path = fileOf(`events${gzip ? '.gz' : ''}`, content, gzip);
      const stage = ndjsonFileInput.create('in', {
        path,
        timestampField: 'created_at',
        keyField: 'repo.name',
      });
      const out = await drain(await stage.createSource(stageContext()), 64);
      expect(out.map((r) => r.value)).toEqual(events);
      expect(out.map((r) => r.timestamp)).toEqual(events.map((e) => Date.parse(e.created_at)));
      expect(out.map((r) => r.key)).toEqual(events.map((e) => e.repo.name));
    });

    it(`restores from a position mid-file (${gzip ? 'gzip' : 'plain'}) and re-reads nothing`, async () => {
      const path = fileOf(`restore${gzip ? '.gz' : ''}`, content, gzip);
      const stage = ndjsonFileInput.create('in', { path });
      const first = await stage.createSource(stageContext());
      const head = await drain(first, 50, 173);
      const position = JSON.parse(JSON.stringify(first.position()));
      expect(position).toEqual({
        offset: Buffer.byteLength(content.split('\n').slice(0, 173).join('\n') + '\n'),
        line: 173,
      });
      await first.close();
      const second = await stage.createSource(stageContext());
      await second.restore(position);
      const tail = await drain(second, 1000);
      expect([...head, ...tail].map((r) => r.value)).toEqual(events);
    });
  }

  it('turns bad lines into dead-letter records with file and line, skips blank lines, takes CRLF and a last line without newline', async () => {
    const path = fileOf(
      'mixed.ndjson',
      '{"a":1}\r\n\n{broken\n{"created_at":"not a date"}\n{"created_at":"2015-01-01T12:00:00Z"}',
    );
    const source = await ndjsonFileInput
      .create('in', { path, timestampField: 'created_at' })
      .createSource(stageContext());
    const out = await drain(source, 10);
    expect(out).toHaveLength(4);
    const [missing, broken, notDate, good] = out;
    expect(missing!.headers?.[SOURCE_ERROR_HEADER]).toMatch(
      /mixed\.ndjson:1: field "created_at" is missing/,
    );
    expect(broken!.value).toBe('{broken');
    expect(broken!.headers?.[SOURCE_ERROR_HEADER]).toMatch(/mixed\.ndjson:3: not JSON/);
    expect(broken!.headers?.['codefeedr-source-line']).toBe('3');
    expect(notDate!.headers?.[SOURCE_ERROR_HEADER]).toMatch(
      /:4: field "created_at" is not a date \("not a date"\)/,
    );
    expect(good).toEqual({
      key: undefined,
      value: { created_at: '2015-01-01T12:00:00Z' },
      timestamp: Date.UTC(2015, 0, 1, 12),
      headers: undefined,
    });
    expect(source.position()).toEqual({ offset: readFileSync(path).length, line: 5 });
  });

  it('dead-letters a line longer than maxLineBytes without holding it in memory, and reads on', async () => {
    const long = JSON.stringify({ blob: 'x'.repeat(700_000) });
    const path = fileOf('long.ndjson', `{"a":1}\n${long}\n{"a":3}\n`);
    const source = await ndjsonFileInput
      .create('in', { path, maxLineBytes: 100_000 })
      .createSource(stageContext());
    const out = await drain(source, 10);
    expect(out).toHaveLength(3);
    expect(out[0]!.value).toEqual({ a: 1 });
    expect(out[1]!.headers?.[SOURCE_ERROR_HEADER]).toContain(
      `long.ndjson:2: line of ${Buffer.byteLength(long)} bytes is longer than maxLineBytes (100000)`,
    );
    expect((out[1]!.value as string).length).toBeLessThan(1100);
    expect(out[2]!.value).toEqual({ a: 3 });
    expect(source.position()).toEqual({ offset: readFileSync(path).length, line: 3 });
  });

  it('fails with a clear error when the file does not exist', async () => {
    const source = await ndjsonFileInput
      .create('in', { path: join(dir, 'missing.ndjson') })
      .createSource(stageContext());
    await expect(source.poll(10, signal)).rejects.toMatchObject({ code: 'NDJSON_FILE_UNREADABLE' });
  });
});
