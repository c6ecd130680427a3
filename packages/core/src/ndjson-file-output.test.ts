import { execFileSync } from 'node:child_process';
import { createReadStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stageContext } from './chain-harness.js';
import { ndjsonFileOutput } from './ndjson-file-output.js';

const dir = mkdtempSync(join(tmpdir(), 'cf-ndjson-out-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const lines = (path: string) =>
  readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as unknown);

describe('ndjsonFileOutput', () => {
  it('appends by default, creates missing folders, and flush makes the lines readable', async () => {
    const path = join(dir, 'nested', 'out.ndjson');
    const stage = ndjsonFileOutput.create('out', { path });
    const sink = await stage.createSink(stageContext());
    await sink.write([
      { value: { a: 1 }, timestamp: 1 },
      { value: 'two', timestamp: 2 },
    ]);
    await sink.write([{ value: undefined, timestamp: 3 }]);
    await sink.flush();
    expect(lines(path)).toEqual([{ a: 1 }, 'two', null]);
    await sink.close();
    const again = await stage.createSink(stageContext());
    await again.write([{ value: 4, timestamp: 4 }]);
    await again.close();
    expect(lines(path)).toEqual([{ a: 1 }, 'two', null, 4]);
  });

  it('truncate empties the file when the stage starts; record format keeps key, time and headers', async () => {
    const path = join(dir, 'records.ndjson');
    writeFileSync(path, '"old"\n');
    const sink = await ndjsonFileOutput
      .create('out', { path, mode: 'truncate', format: 'record' })
      .createSink(stageContext());
    await sink.write([{ key: 'k', value: [1], timestamp: 9, headers: { h: 'v' } }]);
    await sink.close();
    expect(lines(path)).toEqual([{ key: 'k', value: [1], timestamp: 9, headers: { h: 'v' } }]);
  });

  it('in append mode, ends a torn last line left by a crash before appending', async () => {
    const path = join(dir, 'torn.ndjson');
    writeFileSync(path, '{"whole":1}\n{"torn":');
    const sink = await ndjsonFileOutput.create('out', { path }).createSink(stageContext());
    await sink.write([{ value: { next: 2 }, timestamp: 0 }]);
    await sink.close();
    expect(readFileSync(path, 'utf8')).toBe('{"whole":1}\n{"torn":\n{"next":2}\n');
  });

  it('writes large batches in order across the internal write threshold', async () => {
    const path = join(dir, 'big.ndjson');
    const sink = await ndjsonFileOutput
      .create('out', { path, mode: 'truncate' })
      .createSink(stageContext());
    const values = Array.from({ length: 30_000 }, (_, i) => ({ i, pad: 'x'.repeat(50) }));
    for (let i = 0; i < values.length; i += 1000) {
      await sink.write(values.slice(i, i + 1000).map((value) => ({ value, timestamp: 0 })));
    }
    await sink.flush();
    expect(lines(path)).toEqual(values);
    await sink.close();
  });

  it('rejects a value JSON cannot hold with a clear error naming the stage', async () => {
    const path = join(dir, 'bad.ndjson');
    const sink = await ndjsonFileOutput.create('out', { path }).createSink(stageContext());
    const stageId = stageContext().stageId;
    await expect(sink.write([{ value: 10n, timestamp: 0 }])).rejects.toMatchObject({
      code: 'NDJSON_WRITE_FAILED',
      message: expect.stringContaining(
        `Stage "${stageId}" (ndjson-file) cannot write a record to ${path}:`,
      ) as unknown,
    });
    await sink.close();
  });

  it('encodes every line exactly as UTF-8, lines longer than its write buffer too, and a batch that fails writes none of its lines', async () => {
    const path = join(dir, 'utf8.ndjson');
    const sink = await ndjsonFileOutput
      .create('out', { path, mode: 'truncate' })
      .createSink(stageContext());
    const values: unknown[] = [
      { text: 'é ü — 中文 😀', quote: '"\\\n' },
      'x'.repeat(3 * 2 ** 20), // over the 2 MiB buffer: it grows for the line
      { lone: '\ud800' }, // a lone surrogate: JSON.stringify escapes it
      { after: 'the long line' },
    ];
    await sink.write(values.map((value) => ({ value, timestamp: 0 })));
    // The second record cannot be written: nothing of this batch may reach the file.
    await expect(
      sink.write([
        { value: { partial: 1 }, timestamp: 0 },
        { value: 1n, timestamp: 0 },
      ]),
    ).rejects.toMatchObject({ code: 'NDJSON_WRITE_FAILED' });
    await sink.write([{ value: { last: true }, timestamp: 0 }]);
    await sink.close();
    // Independent of the sink: what JSON.stringify gives, line by line, as Node encodes it.
    const expected = [...values, { last: true }].map((v) => `${JSON.stringify(v)}\n`).join('');
    expect(readFileSync(path).equals(Buffer.from(expected, 'utf8'))).toBe(true);
  });

  it('writes to /dev/null in both modes (no fsync of a device: it fails with EINVAL)', async () => {
    for (const mode of ['append', 'truncate'] as const) {
      const sink = await ndjsonFileOutput
        .create('out', { path: '/dev/null', mode })
        .createSink(stageContext());
      await sink.write([{ value: { n: 1 }, timestamp: 0 }]);
      await sink.flush();
      await sink.write([{ value: { n: 2 }, timestamp: 0 }]);
      await sink.close();
    }
  });

  it('writes to a FIFO: the reader gets every line, flushed as the stage flushes', async () => {
    for (const mode of ['append', 'truncate'] as const) {
      const path = join(dir, `pipe-${mode}`);
      execFileSync('mkfifo', [path]);
      const chunks: Buffer[] = [];
      const reader = createReadStream(path);
      reader.on('data', (chunk) => chunks.push(chunk as Buffer));
      const ended = new Promise<void>((resolve, reject) => {
        reader.once('end', () => resolve());
        reader.once('error', reject);
      });
      const sink = await ndjsonFileOutput.create('out', { path, mode }).createSink(stageContext());
      const values = Array.from({ length: 2000 }, (_, i) => ({ i, mode }));
      for (let i = 0; i < values.length; i += 500)
        await sink.write(values.slice(i, i + 500).map((value) => ({ value, timestamp: 0 })));
      await sink.flush();
      await sink.close();
      await ended;
      const received = Buffer.concat(chunks)
        .toString('utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as unknown);
      expect(received).toEqual(values);
    }
  });
});
