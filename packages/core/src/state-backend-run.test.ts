// RunOptions.stateBackend / StageOptions.stateBackend through a real run: the disk backend
// gives the memory backend's outputs (a restart from the checkpoint included), each stage gets
// the backend it asks for, its files are gone when the run ends, and a misspelt backend fails
// before anything starts.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineOutput, defineTransform } from './component.js';
import { DiskStateBackend } from './disk-keyed-map.js';
import { isCodefeedrError } from './errors.js';
import type { StateBackend } from './keyed-map.js';
import { Any } from './message-type.js';
import type { RunOptions } from './pipeline.js';
import { PipelineBuilder } from './pipeline-builder.js';
import { sequenceInput } from './sequence-input.js';
import { silentLogger } from './console-logger.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cf-state-backend-run-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

interface Count {
  d: string;
  c: number;
}

function pipeline(to: number, got: Count[], stageBackend?: StateBackend) {
  const counts = defineTransform({
    name: 'counts',
    description: 'a running count per last digit',
    configSchema: z.object({}),
    inputTypes: [Any] as const,
    outputType: Any,
    transform: ([s]) =>
      s
        .map((n) => ({ d: String((n as number) % 10), c: 1 }))
        .keyBy((r) => r.d)
        .reduce((a, b) => ({ d: a.d, c: a.c + b.c })),
  }).create('counts');
  const out = defineOutput({
    name: 'collect',
    description: 'keeps what it gets',
    configSchema: z.object({}),
    inputTypes: [Any] as const,
    createSink: () => ({
      async write(batch) {
        for (const r of batch) got.push(r.value as Count);
      },
      async flush() {},
      async close() {},
    }),
  }).create('out');
  const builder = new PipelineBuilder('backend-run')
    .append(sequenceInput.create('numbers', { from: 0, to }))
    .append(counts)
    .append(out);
  if (stageBackend !== undefined) builder.setStageOptions('counts', { stateBackend: stageBackend });
  return builder.build();
}

/** A backend that counts the operators it opened, and whether they were closed. */
function counting(inner: StateBackend) {
  const seen = { opened: 0, closed: 0 };
  const backend: StateBackend = {
    kind: 'counting',
    open(stageId, operator) {
      seen.opened++;
      const op = inner.open(stageId, operator);
      return {
        persistent: op.persistent,
        map: (codec) => op.map(codec),
        close() {
          seen.closed++;
          op.close();
        },
      };
    },
  };
  return { backend, seen };
}

const finalCounts = (got: Count[]) =>
  Object.fromEntries([...got].map((r) => [r.d, r.c]).sort(([a], [b]) => (a! < b! ? -1 : 1)));

describe('the stateBackend run option', () => {
  it('inline: disk gives the outputs of memory, across a restart from the checkpoint, and leaves no file', async () => {
    const run = async (options: RunOptions, to: number) => {
      const got: Count[] = [];
      await pipeline(to, got).run({ logger: silentLogger, ...options });
      return got;
    };
    const memory = await run({}, 499);
    const stateDir = join(dir, 'state');
    const checkpointDir = join(dir, 'checkpoints');
    const first = await run({ stateBackend: 'disk', stateDir, checkpointDir }, 199);
    // The sequence resumes at 200 from the checkpoint; the counts go on from the restored state.
    const second = await run({ stateBackend: 'disk', stateDir, checkpointDir }, 499);
    expect([...first, ...second]).toEqual(memory);
    expect(finalCounts(memory)).toEqual(Object.fromEntries([...'0123456789'].map((d) => [d, 50])));
    expect(readdirSync(stateDir)).toEqual([]);
  });

  it('local (every edge through the buffer, state in partition shards): disk gives the outputs of memory', async () => {
    const run = async (options: RunOptions) => {
      const got: Count[] = [];
      await pipeline(499, got).run({ mode: 'local', logger: silentLogger, ...options });
      return got;
    };
    const memory = await run({});
    const stateDir = join(dir, 'state');
    const onDisk = await run({ stateBackend: 'disk', stateDir, checkpointDir: join(dir, 'cp') });
    expect(onDisk).toEqual(memory);
    expect(finalCounts(onDisk)).toEqual(Object.fromEntries([...'0123456789'].map((d) => [d, 50])));
    expect(readdirSync(stateDir)).toEqual([]);
  });

  it("a stage's own stateBackend wins over the run's, and its operators are closed at the end", async () => {
    const stage = counting(new DiskStateBackend({ dir, cacheEntries: 3 }));
    const run = counting(new DiskStateBackend({ dir }));
    const got: Count[] = [];
    await pipeline(99, got, stage.backend).run({ logger: silentLogger, stateBackend: run.backend });
    expect(finalCounts(got)).toEqual(Object.fromEntries([...'0123456789'].map((d) => [d, 10])));
    expect(stage.seen).toEqual({ opened: 1, closed: 1 });
    expect(run.seen).toEqual({ opened: 0, closed: 0 });
    expect(readdirSync(dir)).toEqual([]);
  });

  it('refuses an unknown backend before anything starts (RUN_OPTIONS_INVALID)', async () => {
    const got: Count[] = [];
    const error = await pipeline(9, got)
      .run({ logger: silentLogger, stateBackend: 'rocksdb' as never })
      .catch((e: unknown) => e);
    expect(isCodefeedrError(error) && error.code).toBe('RUN_OPTIONS_INVALID');
    expect(String((error as Error).message)).toContain('use "memory", "disk"');
    expect(got).toEqual([]);
  });
});
