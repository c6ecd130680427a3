import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import {
  Any,
  decodeDeadLetter,
  defineInput,
  memoryBuffer,
  PipelineBuilder,
  silentLogger,
  z,
  type JsonValue,
  type OutputStage,
  type SinkRecordFailure,
  type SinkWriteResult,
  type StreamRecord,
} from '@codefeedr/core';
import { describe, expect, it } from 'vitest';
import {
  conformanceStageContext,
  loadComponent,
  moduleSpecifier,
  type ComponentModule,
} from './component-module.js';
import { killAndRestart, startPipelineChild } from './pipeline-child.js';
import { testValues } from './test-records.js';

/** A fresh, empty target per test (a new table / collection / file). */
export interface SinkTarget {
  /** The output stage's config (`with:`) writing to this target. JSON only: a child process gets it too. */
  config: Record<string, JsonValue>;
  /** What the target holds now: record key → number of stored rows/documents with that key. */
  stored(): Promise<Map<string, number>>;
  /** Drops the target. */
  drop(): Promise<void>;
}

export interface SinkConformanceOptions {
  /** Shown in the test names. */
  name: string;
  /** How the suite, and the child processes of its SIGKILL test, load the output component. */
  output: ComponentModule;
  /**
   * Called once per test with a name unique to this call, safe in identifiers
   * (`[a-z0-9_]`, e.g. `flush_3fa9c1`): use it for the table / collection / file. The
   * records the suite writes are `testValues` ({ id, key, seq } objects, message type
   * any@1) with the record key = value.id.
   */
  target: (testName: string) => Promise<SinkTarget>;
  /** true: replaying records writes nothing twice (upsert by key / positions stored with rows). */
  idempotent: boolean;
  /**
   * A record value this target refuses for what it is (e.g. `{ id, key, seq, $bad: 1 }` for
   * Mongo); omit when no such value can exist. The suite checks it reaches the dead-letter
   * destination with its original value and that the other records of its batch are stored.
   */
  rejectedValue?: (id: string) => JsonValue;
  /** Records per test (default 2000). */
  records?: number;
  /** SIGKILLs in the crash test (default 3). */
  kills?: number;
  /** Timeout of each test (default 120 s). */
  timeoutMs?: number;
}

const records = (values: readonly JsonValue[], ids: readonly string[]): StreamRecord[] =>
  values.map((value, i) => ({ key: ids[i]!, value, timestamp: Date.now() }));

const failuresOf = (
  result: void | SinkWriteResult<unknown> | undefined,
): readonly SinkRecordFailure[] => result?.failed ?? [];

/** key → count of what was written, computed from the values themselves. */
const countsOf = (ids: readonly string[]): Map<string, number> => {
  const counts = new Map<string, number>();
  for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
  return counts;
};

/** Deep equality without printing the values (a refused value may be megabytes). */
function expectSameValue(actual: unknown, expected: JsonValue, what: string): void {
  const same = isDeepStrictEqual(actual, expected);
  const size = (v: unknown) => JSON.stringify(v)?.length ?? 0;
  expect(
    same,
    `${what} holds the original value (${size(actual)} JSON characters, expected ${size(expected)})`,
  ).toBe(true);
}

/**
 * Registers vitest tests proving an output component keeps the sink contract against the
 * real server it writes to: flush makes writes durable, replays write nothing twice
 * (idempotent sinks), a refused record is reported and dead-lettered while the rest of its
 * batch is stored, and a pipeline child SIGKILLed mid-batch and restarted from its file
 * checkpoints leaves every key stored (once each when idempotent, at least once otherwise).
 */
export function sinkConformanceSuite(options: SinkConformanceOptions): void {
  const count = options.records ?? 2_000;
  const kills = options.kills ?? 3;
  const timeoutMs = options.timeoutMs ?? 120_000;
  const run = randomBytes(3).toString('hex');
  let counter = 0;
  const unique = (what: string): string => `${what}_${run}${(counter++).toString(36)}`;

  async function withTarget<T>(what: string, body: (target: SinkTarget) => Promise<T>) {
    const target = await options.target(unique(what));
    let result: T;
    try {
      result = await body(target);
    } catch (error) {
      // The test's own failure is the news: a drop failing after it must not hide it.
      await target.drop().catch(() => undefined);
      throw error;
    }
    await target.drop();
    return result;
  }

  async function openSink(target: SinkTarget, stageId: string) {
    const component = await loadComponent(options.output, 'output');
    const stage = component.create(stageId, target.config);
    const signal = new AbortController().signal;
    return stage.createSink(conformanceStageContext(stageId, signal));
  }

  describe(`${options.name} sink conformance`, () => {
    it(
      'flush makes everything written durable: every key stored once',
      async () => {
        await withTarget('flush', async (target) => {
          const values = testValues(count, { prefix: 'flush' });
          const sink = await openSink(target, 'conformance-out');
          const failed: SinkRecordFailure[] = [];
          try {
            for (let i = 0; i < values.length; i += 137) {
              const batch = values.slice(i, i + 137);
              failed.push(
                ...failuresOf(
                  await sink.write(
                    records(
                      batch as unknown as JsonValue[],
                      batch.map((v) => v.id),
                    ),
                  ),
                ),
              );
            }
            failed.push(...failuresOf(await sink.flush()));
            expect(failed, 'valid records reported as failed').toEqual([]);
            // Read before close: flush alone must have made it durable.
            expect(await target.stored()).toEqual(countsOf(values.map((v) => v.id)));
          } finally {
            await sink.close();
          }
        });
      },
      timeoutMs,
    );

    if (options.idempotent) {
      it(
        'replaying written records stores nothing twice (idempotent)',
        async () => {
          await withTarget('replay', async (target) => {
            const values = testValues(Math.min(count, 500), { prefix: 'replay' });
            const batch = records(
              values as unknown as JsonValue[],
              values.map((v) => v.id),
            );
            const first = await openSink(target, 'conformance-out');
            await first.write(batch.slice(0, 300));
            await first.flush();
            await first.close();
            // A restart replays from the last checkpoint: the first records come again.
            const second = await openSink(target, 'conformance-out');
            await second.write(batch);
            await second.flush();
            await second.close();
            expect(await target.stored()).toEqual(countsOf(values.map((v) => v.id)));
          });
        },
        timeoutMs,
      );
    }

    const rejectedValue = options.rejectedValue;
    if (rejectedValue !== undefined) {
      const rejectedBatch = (prefix: string) => {
        const good = testValues(Math.min(count, 200), { prefix });
        const rejectedId = `${prefix}-rejected`;
        const at = Math.floor(good.length / 2);
        const values: JsonValue[] = good.map((v) => v as unknown as JsonValue);
        values.splice(at, 0, rejectedValue(rejectedId));
        const ids = good.map((v) => v.id);
        ids.splice(at, 0, rejectedId);
        return { good, rejectedId, values, ids };
      };

      it(
        'reports a refused record in `failed` with its original value; the rest of its batch is stored',
        async () => {
          await withTarget('refused', async (target) => {
            const { good, rejectedId, values, ids } = rejectedBatch('refused');
            const sink = await openSink(target, 'conformance-out');
            const failed: SinkRecordFailure[] = [];
            try {
              failed.push(...failuresOf(await sink.write(records(values, ids))));
              failed.push(...failuresOf(await sink.flush()));
            } finally {
              await sink.close();
            }
            expect(
              failed.map((f) => f.record.key),
              'keys of the failed records',
            ).toEqual([rejectedId]);
            expectSameValue(
              failed[0]!.record.value,
              rejectedValue(rejectedId),
              'the failed record',
            );
            expect(failed[0]!.error, 'the failure carries the server error').toBeDefined();
            expect(await target.stored()).toEqual(countsOf(good.map((v) => v.id)));
          });
        },
        timeoutMs,
      );

      it(
        'through the runtime, a refused record reaches the dead letters with its original value; the rest is stored',
        async () => {
          await withTarget('rejected', async (target) => {
            const { good, rejectedId, values, ids } = rejectedBatch('rejected');
            const component = await loadComponent(options.output, 'output');
            const buffer = await memoryBuffer.create({});
            const outId = 'conformance-out';
            try {
              const pipeline = new PipelineBuilder(unique('rejected-pipeline'))
                .append(oneBatchInput.create('conformance-in', { values, keys: ids }))
                .append(component.create(outId, target.config) as OutputStage<readonly [unknown]>)
                .setBuffer(buffer)
                .build();
              const summary = await pipeline.run({ mode: 'inline', logger: silentLogger });
              expect(summary.status).toBe('finished');
              // Soft: a sink that loses the rest of the batch and one that misses the dead
              // letter are different bugs; report both.
              const stored = await target.stored();
              const missing = good.filter((v) => stored.get(v.id) !== 1).map((v) => v.id);
              expect
                .soft(missing, `good records of the batch not stored once (of ${good.length})`)
                .toEqual([]);
              expect.soft(stored.has(rejectedId), 'the refused record stored anyway').toBe(false);
              const reader = await buffer.consumer({
                group: unique('dlq-reader'),
                topics: [`${outId}.dlq`],
                start: 'earliest',
              });
              const letters = (await reader.poll(1_000, 1_000)).map((m) =>
                decodeDeadLetter(m.value),
              );
              await reader.close();
              expect(
                letters.map((l) => ({
                  stage: l.stageId,
                  key: l.key,
                  encoding: l.original.encoding,
                })),
                `dead letters of ${outId}`,
              ).toEqual([{ stage: outId, key: rejectedId, encoding: 'json' }]);
              expectSameValue(
                (letters[0]!.original as { value: JsonValue }).value,
                rejectedValue(rejectedId),
                'the dead letter',
              );
              const out = summary.metrics.stages.find((m) => m.stage === outId)!;
              expect(out.deadLettered).toBe(1);
            } finally {
              await buffer.close();
            }
          });
        },
        timeoutMs,
      );
    }

    it(
      `SIGKILLed ${kills} times mid-batch and restarted from its checkpoints, stores every key ${options.idempotent ? 'exactly once' : 'at least once'}`,
      async () => {
        const dir = await mkdtemp(join(tmpdir(), 'cf-sink-conformance-'));
        try {
          await withTarget('sigkill', async (target) => {
            const values = testValues(count, { prefix: 'kill' });
            const inputPath = join(dir, 'input.ndjson');
            await writeFile(inputPath, values.map((v) => `${JSON.stringify(v)}\n`).join(''));
            const pipeline = unique('sink-crash');
            const runs = await killAndRestart({
              kills,
              maxThreshold: Math.max(1, Math.floor(count / (2 * (kills + 1)))),
              timeoutMs,
              start: () =>
                startPipelineChild({
                  pipeline,
                  input: {
                    module: '@codefeedr/core',
                    export: 'ndjsonFileInput',
                    id: 'conformance-in',
                    config: { path: inputPath, keyField: 'id' },
                  },
                  output: {
                    module: moduleSpecifier(options.output),
                    export: options.output.export,
                    id: 'conformance-out',
                    config: target.config,
                  },
                  checkpointDir: join(dir, 'checkpoints'),
                  checkpointIntervalMs: 50,
                  batchSize: 40,
                  pauseMs: 5,
                }),
            });
            expect(runs.filter((r) => r.killed).length, 'runs killed mid-stream').toBeGreaterThan(
              0,
            );
            const stored = await target.stored();
            const expected = countsOf(values.map((v) => v.id));
            const missing = [...expected.keys()].filter((id) => !stored.has(id));
            expect(missing, 'keys lost').toEqual([]);
            const unknown = [...stored.keys()].filter((id) => !expected.has(id));
            expect(unknown, 'keys never written').toEqual([]);
            if (options.idempotent) expect(stored).toEqual(expected);
            else expect([...stored.values()].every((n) => n >= 1)).toBe(true);
          });
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      },
      timeoutMs + 30_000,
    );
  });
}

/** The suite's in-process input: the given values as one batch (keys beside), then the end. */
const oneBatchInput = defineInput({
  name: 'conformance-batch',
  description: 'Emits the given values as one batch, then ends.',
  configSchema: z.object({ values: z.array(z.unknown()), keys: z.array(z.string()) }),
  outputType: Any,
  createSource: ({ values, keys }) => {
    let done = false;
    return {
      poll: async () => {
        if (done) return null;
        done = true;
        return values.map((value, i) => ({ key: keys[i], value, timestamp: Date.now() }));
      },
      position: () => ({ done }),
      restore: (position) => {
        done = (position as { done?: boolean } | null)?.done === true;
      },
      close: async () => undefined,
    };
  },
});
