import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { stageContext } from './chain-harness.js';
import { DeferredNdjsonLine, ndjsonFileInput, NdjsonFileSource } from './ndjson-file-input.js';
import type { StreamRecord } from './record.js';
import { SOURCE_ERROR_HEADER } from './reserved-headers.js';
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

  it('deferParse: lines it reads the time of come unparsed and parse later into what an eager read gives, dead letters and line numbers included', async () => {
    const text = [
      content.trimEnd(),
      '{broken',
      '{"created_at":"2015-01-01T12:00:00Z", broken',
      '{"created_at":"not a date"}',
      '',
      '{"no":"time"}',
    ].join('\n');
    const path = fileOf('deferred.ndjson', text);
    const config = ndjsonFileInput.configSchema.parse({
      path,
      timestampField: 'created_at',
      keyField: 'repo.name',
    });
    // Reads the time from the bytes when the line has one created_at; deliberately naive:
    // whatever it returns, the parse that follows decides what the record is.
    const seen: Buffer[] = [];
    const defer = (line: Buffer) => {
      seen.push(line);
      const m = /"created_at":"([^"]+)"/.exec(line.toString('utf8'));
      const timestamp = m === null ? NaN : Date.parse(m[1]!);
      return Number.isFinite(timestamp) ? { timestamp, note: line.length } : undefined;
    };
    const eager = await drain(new NdjsonFileSource(config), 37);
    const lazySource = new NdjsonFileSource(config, undefined, defer);
    const lazy = await drain(lazySource, 37);
    expect(lazy).toHaveLength(eager.length);
    const deferred = lazy.filter((r) => r.value instanceof DeferredNdjsonLine);
    expect(deferred).toHaveLength(events.length + 1); // every event, and the broken line with a time
    for (const r of deferred) {
      const line = r.value as DeferredNdjsonLine;
      expect(line.note).toBe(line.bytes.length);
    }
    const parsed = lazy.map((r) =>
      r.value instanceof DeferredNdjsonLine ? lazySource.parseDeferred(r.value) : r,
    );
    // Dead letters carry the time they were made: compare all but that.
    const comparable = (r: StreamRecord) =>
      r.headers?.[SOURCE_ERROR_HEADER] === undefined ? r : { ...r, timestamp: 0 };
    expect(parsed.map(comparable)).toEqual(eager.map(comparable));
    expect(parsed.at(-3)!.headers?.[SOURCE_ERROR_HEADER]).toMatch(/deferred\.ndjson:502: not JSON/);
    expect(seen.some((b) => b.length === 0)).toBe(true); // the blank line was asked, then skipped
  });

  it('deferParse: a held line stays whole while the reader moves on, and its chunk is released once every line of it is parsed', async () => {
    // Lines over many 256 KiB read chunks (gzip, as GH Archive's are): hold the first line of
    // the file unparsed through the whole read, parse the rest as they come.
    const wanted = Array.from({ length: 6_000 }, (_, i) => ({
      created_at: new Date(Date.UTC(2015, 0, 1, 12, 0, i % 60)).toISOString(),
      i,
      pad: 'é'.repeat(100),
    }));
    const path = join(dir, 'held.ndjson.gz');
    writeFileSync(path, gzipSync(wanted.map((v) => JSON.stringify(v)).join('\n')));
    const config = ndjsonFileInput.configSchema.parse({ path, timestampField: 'created_at' });
    const defer = (line: Buffer) => ({ timestamp: Date.UTC(2015, 0, 1), note: line.length });
    const source = new NdjsonFileSource(config, undefined, defer);
    const first = (await source.poll(1))![0]!.value as DeferredNdjsonLine;
    const firstView = first.bytes;
    const parsed: unknown[] = [];
    let secondChunkView: Buffer | undefined;
    for (;;) {
      const batch = await source.poll(500);
      if (batch === null) break;
      for (const r of batch) {
        const line = r.value as DeferredNdjsonLine;
        if (secondChunkView === undefined && line.bytes.buffer !== firstView.buffer)
          secondChunkView = line.bytes;
        parsed.push(source.parseDeferred(line).value);
      }
    }
    // Every line of the later chunks was parsed and the reader passed them: released.
    expect(secondChunkView!.buffer.byteLength).toBe(0);
    // The first chunk is still viewed by the held line: whole, and parsed right.
    expect(firstView.buffer.byteLength).toBeGreaterThan(0);
    parsed.unshift(source.parseDeferred(first).value);
    expect(parsed).toEqual(wanted);
    expect(firstView.buffer.byteLength).toBe(0); // its last line parsed: released too
    expect(() => source.parseDeferred(first)).toThrow(/parsed before/);
  });

  it('a line that is not valid UTF-8 is a dead letter holding its exact bytes, never replacement characters', async () => {
    const bad = Buffer.from([0x7b, 0x22, 0x74, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0xff, 0x22, 0x7d]); // {"t":"\xc3(\xff"}
    for (const gzip of [false, true]) {
      const raw = Buffer.concat([Buffer.from('{"a":1}\n'), bad, Buffer.from('\n{"a":2}\n')]);
      const path = join(dir, `utf8${gzip ? '.gz' : ''}`);
      writeFileSync(path, gzip ? gzipSync(raw) : raw);
      const source = await ndjsonFileInput.create('in', { path }).createSource(stageContext('in'));
      const records = await drain(source, 10);
      expect(records.map((r) => r.headers?.[SOURCE_ERROR_HEADER] === undefined)).toEqual([
        true,
        false,
        true,
      ]);
      expect(records[1]!.value).toBeInstanceOf(Uint8Array);
      expect(Buffer.from(records[1]!.value as Uint8Array).equals(bad)).toBe(true);
      expect(records[1]!.headers).toMatchObject({ 'codefeedr-source-line': '2' });
      expect(records[1]!.headers?.[SOURCE_ERROR_HEADER]).toContain(':2: not valid UTF-8');
      expect(records.map((r) => (r.value as { a?: number }).a)).toEqual([1, undefined, 2]);
      await source.close();
    }
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

  for (const gzip of [false, true]) {
    it(`bounds a batch in bytes as well as records (${gzip ? 'gzip' : 'plain'}): never over maxBatchBytes but for one long line`, async () => {
      // Lines of 1,000 to 1,900 bytes, one of 9,000 (over the bound: a batch of its own), blanks.
      const lines = Array.from({ length: 120 }, (_, i) =>
        i === 57
          ? JSON.stringify({ i, pad: 'y'.repeat(9_000) })
          : JSON.stringify({ i, pad: 'x'.repeat(1_000 + (i % 10) * 100) }),
      );
      const text = lines.map((l, i) => (i % 25 === 0 ? `${l}\n\n` : `${l}\n`)).join('');
      const path = fileOf(`sized.ndjson${gzip ? '.gz' : ''}`, text, gzip);
      const source = (await ndjsonFileInput
        .create('in', { path, maxBatchBytes: 5_000 })
        .createSource(stageContext())) as NdjsonFileSource;
      const got: unknown[] = [];
      for (;;) {
        const batch = await source.poll(500);
        if (batch === null) break;
        const sizes = source.recordBytes;
        expect(sizes).toHaveLength(batch.length);
        batch.forEach((r, k) =>
          expect(sizes[k]).toBe(Buffer.byteLength(JSON.stringify(r.value)) + 1),
        );
        const bytes = sizes.reduce((a, b) => a + b, 0);
        if (batch.length > 1) expect(bytes).toBeLessThanOrEqual(5_000);
        else expect(batch.length).toBe(1);
        got.push(...batch.map((r) => r.value));
      }
      expect(got).toEqual(lines.map((l) => JSON.parse(l)));
      expect(source.position()).toEqual({ offset: Buffer.byteLength(text), line: 125 });
    });
  }

  it('fails with a clear error when the file does not exist', async () => {
    const source = await ndjsonFileInput
      .create('in', { path: join(dir, 'missing.ndjson') })
      .createSource(stageContext());
    await expect(source.poll(10, signal)).rejects.toMatchObject({ code: 'NDJSON_FILE_UNREADABLE' });
  });
});
