import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Any,
  defineOutput,
  PipelineBuilder,
  silentLogger,
  sourceRecordError,
  z,
  type JsonValue,
  type Source,
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
import { testValues, type TestRecordValue } from './test-records.js';
import { waitFor } from './wait-for.js';

export interface SourceTarget {
  /**
   * The input stage's config reading this target. JSON only: a child process gets it too.
   * Read each time the suite creates a source (after appending, for bounded sources).
   */
  config: Record<string, JsonValue>;
  /** Appends `values` to what the source reads (rows / documents / lines). Each value has a unique `id`. */
  append(values: readonly { id: string; key: string; seq: number }[]): Promise<void>;
  drop(): Promise<void>;
}

export interface SourceConformanceOptions {
  /** Shown in the test names. */
  name: string;
  /** How the suite, and the child processes of its SIGKILL test, load the input component. */
  input: ComponentModule;
  /**
   * Called once per test with a name unique to this call, safe in identifiers
   * (`[a-z0-9_]`, e.g. `read_3fa9c1`): use it for the table / collection / topic / file.
   */
  target: (testName: string) => Promise<SourceTarget>;
  /** The source ends by itself when it has read everything (bounded), or keeps polling (unbounded). */
  bounded: boolean;
  /** Maps one record the source produced back to the id of the value appended. */
  idOf: (value: unknown) => string;
  /** Values per test (default 2000). */
  records?: number;
  /** SIGKILLs in the crash test (default 3). */
  kills?: number;
  /** Timeout of each test (default 120 s). */
  timeoutMs?: number;
}

/** How long an unbounded source must return nothing more before a read counts as complete. */
const IDLE_POLLS = 2;

/**
 * Registers vitest tests proving an input component keeps the source contract against the
 * real server it reads: every appended value once and in order per key; position() and
 * restore() resume exactly after the last record returned; a pipeline child SIGKILLed
 * mid-run and restarted from its file checkpoints loses nothing and re-reads at most what
 * came after its last checkpoint; a bounded source ends the run, an unbounded one keeps
 * polling until stopped.
 */
export function sourceConformanceSuite(options: SourceConformanceOptions): void {
  const count = options.records ?? 2_000;
  const kills = options.kills ?? 3;
  const timeoutMs = options.timeoutMs ?? 120_000;
  const { bounded, idOf } = options;
  const run = randomBytes(3).toString('hex');
  let counter = 0;
  const unique = (what: string): string => `${what}_${run}${(counter++).toString(36)}`;

  async function withTarget<T>(what: string, body: (target: SourceTarget) => Promise<T>) {
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

  async function openSource(
    target: SourceTarget,
    stageId: string,
    signal: AbortSignal,
  ): Promise<Source<unknown>> {
    const component = await loadComponent(options.input, 'input');
    const stage = component.create(stageId, target.config);
    return stage.createSource(conformanceStageContext(stageId, signal));
  }

  /**
   * Polls until the source ends (bounded) or every id of `expected` arrived in this read and
   * the source then stayed quiet (unbounded), or the deadline passed; returns what it read.
   */
  async function read(
    source: Source<unknown>,
    signal: AbortSignal,
    expected: ReadonlySet<string>,
    until: { deadline: number; max?: number },
  ): Promise<{ records: StreamRecord[]; ended: boolean }> {
    const records: StreamRecord[] = [];
    const seen = new Set<string>();
    let quiet = 0;
    while (Date.now() < until.deadline && records.length < (until.max ?? Infinity)) {
      const batch = await source.poll(
        Math.min(100, (until.max ?? Infinity) - records.length),
        signal,
      );
      if (batch === null) return { records, ended: true };
      for (const record of batch) {
        records.push(record);
        if (sourceRecordError(record) === undefined) seen.add(idOf(record.value));
      }
      if (!bounded && [...expected].every((id) => seen.has(id))) {
        quiet = batch.length === 0 ? quiet + 1 : 0;
        if (quiet >= IDLE_POLLS) break;
      }
    }
    return { records, ended: false };
  }

  const idsOf = (records: readonly StreamRecord[]): string[] => {
    const flagged = records.filter((r) => sourceRecordError(r) !== undefined);
    expect(
      flagged.map((r) => sourceRecordError(r)?.message),
      'valid values the source flagged as bad records',
    ).toEqual([]);
    return records.map((r) => idOf(r.value));
  };

  const duplicatesIn = (ids: readonly string[]): string[] => {
    const counts = new Map<string, number>();
    for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
    return [...counts].filter(([, n]) => n > 1).map(([id, n]) => `${id}×${n}`);
  };

  describe(`${options.name} source conformance`, () => {
    it(
      'reads every appended value once, in order per key',
      async () => {
        await withTarget('read', async (target) => {
          const values = testValues(count, { prefix: 'read' });
          const half = Math.floor(count / 2);
          const deadline = Date.now() + timeoutMs - 10_000;
          const signal = new AbortController().signal;
          await target.append(values.slice(0, half));
          // A bounded source may list what it reads when it opens: everything goes in first.
          if (bounded) await target.append(values.slice(half));
          const source = await openSource(target, unique('in'), signal);
          const records: StreamRecord[] = [];
          try {
            if (bounded) {
              const all = await read(source, signal, new Set(), { deadline });
              expect(all.ended, 'a bounded source ends (poll returns null)').toBe(true);
              records.push(...all.records);
            } else {
              const ids = (list: readonly TestRecordValue[]) => new Set(list.map((v) => v.id));
              records.push(
                ...(await read(source, signal, ids(values.slice(0, half)), { deadline })).records,
              );
              // Appended while the source is open: an unbounded source must pick these up too.
              await target.append(values.slice(half));
              records.push(
                ...(await read(source, signal, ids(values.slice(half)), { deadline })).records,
              );
            }
          } finally {
            await source.close();
          }
          const ids = idsOf(records);
          expect(duplicatesIn(ids), 'values read more than once').toEqual([]);
          expect(new Set(ids)).toEqual(new Set(values.map((v) => v.id)));
          const byId = new Map(values.map((v) => [v.id, v]));
          const seqsByKey = new Map<string, number[]>();
          for (const id of ids) {
            const v = byId.get(id)!;
            seqsByKey.set(v.key, [...(seqsByKey.get(v.key) ?? []), v.seq]);
          }
          for (const [key, seqs] of seqsByKey) {
            expect(seqs, `order of ${key}`).toEqual([...seqs].sort((a, b) => a - b));
          }
        });
      },
      timeoutMs,
    );

    it(
      'position() and restore() on a new source resume after the last record returned',
      async () => {
        await withTarget('resume', async (target) => {
          const values = testValues(count, { prefix: 'resume' });
          await target.append(values);
          const stageId = unique('in');
          const deadline = Date.now() + timeoutMs - 10_000;
          const signal = new AbortController().signal;
          const first = await openSource(target, stageId, signal);
          let position: JsonValue;
          let before: StreamRecord[];
          try {
            before = (
              await read(first, signal, new Set(), { deadline, max: Math.floor(count / 3) })
            ).records;
            // As the runtime does: store the position (a JSON round trip), commit it, then stop.
            position = JSON.parse(JSON.stringify(first.position())) as JsonValue;
            await first.commit?.(position);
          } finally {
            await first.close();
          }
          const beforeIds = idsOf(before);
          expect(beforeIds.length, 'records read before the restart').toBe(Math.floor(count / 3));
          const beforeSet = new Set(beforeIds);
          const rest = values.filter((v) => !beforeSet.has(v.id)).map((v) => v.id);

          const second = await openSource(target, stageId, signal);
          let after: StreamRecord[];
          try {
            await second.restore(position);
            after = (await read(second, signal, new Set(rest), { deadline })).records;
          } finally {
            await second.close();
          }
          const afterIds = idsOf(after);
          expect(
            afterIds.filter((id) => beforeSet.has(id)),
            'records read again after restore',
          ).toEqual([]);
          expect(duplicatesIn(afterIds), 'records read twice after restore').toEqual([]);
          expect(new Set(afterIds), 'records skipped by restore').toEqual(new Set(rest));
        });
      },
      timeoutMs,
    );

    it(
      `SIGKILLed ${kills} times mid-run and restarted from its checkpoints, loses nothing and re-reads at most what followed the last checkpoint`,
      async () => {
        const dir = await mkdtemp(join(tmpdir(), 'cf-source-conformance-'));
        try {
          await withTarget('sigkill', async (target) => {
            const values = testValues(count, { prefix: 'kill' });
            const half = Math.floor(count / 2);
            await target.append(bounded ? values : values.slice(0, half));
            let appended: Promise<void> | undefined;
            const outputOf = (run: number): string => join(dir, `out-${run}.ndjson`);
            const pipeline = unique('source-crash');
            const stageId = unique('in');
            const allIds = new Set(values.map((v) => v.id));
            let started = 0;
            const readOutputs = (): Promise<string[][]> =>
              Promise.all(
                Array.from({ length: started }, (_, run) => outputIds(outputOf(run), idOf)),
              );
            const runs = await killAndRestart({
              kills,
              maxThreshold: Math.max(1, Math.floor(count / (2 * (kills + 1)))),
              timeoutMs,
              start: (run) => {
                started = run + 1;
                const worker = startPipelineChild({
                  pipeline,
                  input: {
                    module: moduleSpecifier(options.input),
                    export: options.input.export,
                    id: stageId,
                    config: target.config,
                  },
                  output: {
                    module: '@codefeedr/core',
                    export: 'ndjsonFileOutput',
                    id: 'conformance-out',
                    config: { path: outputOf(run) },
                  },
                  checkpointDir: join(dir, 'checkpoints'),
                  checkpointIntervalMs: 50,
                  batchSize: 40,
                  pauseMs: 5,
                });
                // Unbounded: the second half arrives while the first run reads.
                if (!bounded && run === 0) {
                  appended = worker
                    .waitForEvent((e) => e.event === 'progress', timeoutMs, 'first progress')
                    .then(() => target.append(values.slice(half)));
                  appended.catch(() => undefined); // awaited (and reported) below
                }
                return worker;
              },
              ...(bounded
                ? {}
                : {
                    done: async () => {
                      if (appended === undefined) return false;
                      await appended;
                      const ids = new Set((await readOutputs()).flat());
                      return [...allIds].every((id) => ids.has(id));
                    },
                  }),
            });
            await appended;
            const perRun = await readOutputs();
            expect(runs.filter((r) => r.killed).length, 'runs killed mid-run').toBeGreaterThan(0);
            const last = runs[runs.length - 1]!.worker.events.find((e) => e.event === 'finished');
            expect(last?.status).toBe(bounded ? 'finished' : 'stopped');

            const all = perRun.flat();
            const missing = values.filter((v) => !all.includes(v.id)).map((v) => v.id);
            expect(missing, 'values lost across the restarts').toEqual([]);
            expect(
              all.filter((id) => !allIds.has(id)),
              'values never appended',
            ).toEqual([]);
            // A restart re-reads what its predecessor wrote after the last durable checkpoint:
            // nothing else may come twice.
            const reread = all.length - new Set(all).size;
            const allowed = runs.reduce(
              (n, r, i) => n + (r.killed ? Math.max(0, perRun[i]!.length - r.durableWritten) : 0),
              0,
            );
            expect(
              reread,
              're-read records beyond those after the last checkpoint',
            ).toBeLessThanOrEqual(allowed);
          });
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      },
      timeoutMs + 30_000,
    );

    it(
      bounded
        ? 'ends the run by itself at the end of input'
        : 'keeps polling after the last record: later values arrive, and a stop ends the run',
      async () => {
        await withTarget('end', async (target) => {
          const values = testValues(Math.min(count, 500), { prefix: 'end' });
          const half = Math.floor(values.length / 2);
          await target.append(bounded ? values : values.slice(0, half));
          const collected: StreamRecord[] = [];
          const component = await loadComponent(options.input, 'input');
          const stop = new AbortController();
          const pipeline = new PipelineBuilder(unique('end-pipeline'))
            .append(component.create(unique('in'), target.config))
            .append(collectingOutput(collected).create('conformance-out', {}))
            .build();
          const done = pipeline.run({ mode: 'inline', logger: silentLogger, signal: stop.signal });
          const seen = (list: readonly TestRecordValue[]) => () => {
            const ids = new Set(collected.map((r) => idOf(r.value)));
            return list.every((v) => ids.has(v.id));
          };
          if (bounded) {
            const summary = await done;
            expect(summary.status).toBe('finished');
          } else {
            await waitFor(seen(values.slice(0, half)), {
              timeoutMs: timeoutMs / 3,
              description: 'the first values',
            });
            await target.append(values.slice(half));
            await waitFor(seen(values), { timeoutMs: timeoutMs / 3, description: 'later values' });
            stop.abort();
            expect((await done).status).toBe('stopped');
          }
          const ids = collected.map((r) => idOf(r.value));
          expect(duplicatesIn(ids)).toEqual([]);
          expect(new Set(ids)).toEqual(new Set(values.map((v) => v.id)));
        });
      },
      timeoutMs,
    );
  });
}

/** Ids in one run's output file; a line torn by the SIGKILL is not a record. */
async function outputIds(path: string, idOf: (value: unknown) => string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  return text.split('\n').flatMap((line) => {
    if (line.trim() === '') return [];
    try {
      return [idOf(JSON.parse(line) as unknown)];
    } catch {
      return [];
    }
  });
}

function collectingOutput(into: StreamRecord[]) {
  return defineOutput({
    name: 'conformance-collect',
    description: 'Keeps what it receives, for assertions.',
    configSchema: z.object({}),
    inputTypes: [Any] as const,
    createSink: () => ({
      write: (batch) => void into.push(...batch.map((r) => ({ ...r }))),
      flush: async () => undefined,
      close: async () => undefined,
    }),
  });
}
