import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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

  it('rejects a value JSON cannot hold with a clear error', async () => {
    const sink = await ndjsonFileOutput
      .create('out', { path: join(dir, 'bad.ndjson') })
      .createSink(stageContext());
    await expect(sink.write([{ value: 10n, timestamp: 0 }])).rejects.toMatchObject({
      code: 'NDJSON_WRITE_FAILED',
    });
    await sink.close();
  });
});
