import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PipelineBuilder, ndjsonFileOutput, sequenceInput } from '@codefeedr/core';
import { afterAll, describe, expect, it } from 'vitest';
import { redisBuffer } from './buffer.js';
import { deleteByPrefix, rawRedis, redisUrl, uniquePrefix } from './redis-test-support.js';

const prefix = uniquePrefix('pipeline');
const dir = mkdtempSync(join(tmpdir(), 'codefeedr-redis-pipeline-'));

afterAll(async () => {
  const raw = rawRedis();
  await deleteByPrefix(raw, prefix);
  raw.disconnect();
  rmSync(dir, { recursive: true, force: true });
});

describe('a pipeline run in local mode on the Redis buffer', () => {
  it('carries every record through a 3-partition topic and acknowledges what the sink flushed', async () => {
    const out = join(dir, 'numbers.ndjson');
    const pipeline = new PipelineBuilder('numbers')
      .append(sequenceInput.create('numbers', { from: 1, to: 3_000 }))
      .append(ndjsonFileOutput.create('out', { path: out }))
      .setBuffer(redisBuffer, { url: redisUrl(), prefix })
      .setStageOptions('numbers', { partitions: 3 })
      .build();
    await pipeline.run({ mode: 'local', batchSize: 250 });

    const written = readFileSync(out, 'utf8')
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as number);
    expect([...written].sort((a, b) => a - b)).toEqual(
      Array.from({ length: 3_000 }, (_, i) => i + 1),
    );

    const raw = rawRedis();
    try {
      const lengths = await Promise.all([0, 1, 2].map((p) => raw.xlen(`${prefix}:numbers:${p}`)));
      expect(lengths.every((n) => n > 0)).toBe(true); // the records really went through Redis, spread
      for (const p of [0, 1, 2]) {
        // Only end-of-stream markers may stay unacknowledged: the runtime never commits past them.
        const [pending] = (await raw.xpending(`${prefix}:numbers:${p}`, 'out')) as [number];
        expect(pending).toBeLessThanOrEqual(1);
      }
    } finally {
      raw.disconnect();
    }
  });
});
