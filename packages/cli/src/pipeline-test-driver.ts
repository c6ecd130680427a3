import { isDeepStrictEqual } from 'node:util';
import {
  silentLogger,
  type JsonValue,
  type Pipeline,
  type StreamRecord,
  type TransformStage,
} from '@codefeedr/core';
// The compiler a real run uses, so what a test passes runs the same way (the test kit uses it too).
import { compileTransform, type OperatorChain } from '@codefeedr/core/internal';
import type { ExpectedRecord, PipelineTestCase, TestRecord } from './pipeline-test-file.js';

/** What one stage did during a test. */
export interface StageRecords {
  emitted: StreamRecord[];
  deadLetters: { record: StreamRecord; error: unknown }[];
}

/** One way a test's expectation was not met, for people. */
export interface TestFailure {
  stage: string;
  message: string;
}

type Chain = OperatorChain & {
  processWatermark?: (input: number, watermark: number) => StreamRecord[];
  heads?: ({ advanceWatermark(w: number): void } | undefined)[];
};

/**
 * Runs a pipeline's transforms synchronously on records a test gives its input stages, with a
 * fake processing-time clock, as Kafka Streams' TopologyTestDriver does for a topology: each
 * transform is the operator chain core compiles for a real run (same windows, state, timers,
 * watermark assigners, dead letters), stage edges are direct calls in topological order, input
 * stages emit the test's records instead of reading anything, and output stages record what
 * reaches them instead of writing anywhere. No buffer, no I/O, no sleeps: event time comes from
 * the records' timestamps (and `watermark` steps), processing time from `advanceTime` steps.
 */
export class PipelineTestDriver {
  private now: number;
  private readonly chains = new Map<string, Chain>();
  private readonly results = new Map<string, StageRecords>();
  private readonly children = new Map<string, { to: string; inputIndex: number }[]>();

  constructor(
    private readonly pipeline: Pipeline,
    startTime = 0,
  ) {
    this.now = startTime;
    for (const stage of pipeline.stages)
      this.results.set(stage.id, { emitted: [], deadLetters: [] });
    for (const edge of pipeline.definition.edges) {
      const list = this.children.get(edge.from) ?? [];
      list.push({ to: edge.to, inputIndex: edge.inputIndex });
      this.children.set(edge.from, list);
    }
    for (const stage of pipeline.stages) {
      if (stage.kind !== 'transform') continue;
      const chain = compileTransform(
        stage as TransformStage,
        {
          stageId: stage.id,
          pipelineName: pipeline.name,
          logger: silentLogger,
          signal: new AbortController().signal,
        },
        {
          retries: pipeline.definition.deadLetter.retries,
          deadLetter: (record, error) =>
            this.results.get(stage.id)!.deadLetters.push({ record, error }),
          clock: () => this.now,
        },
      ) as Chain;
      this.chains.set(stage.id, chain);
    }
  }

  /** Input stage `stage` emits these records (one batch). */
  emit(stage: string, records: readonly TestRecord[]): void {
    const batch: StreamRecord[] = records.map((r) => ({
      value: r.value,
      timestamp: r.timestamp ?? this.now,
      ...(r.key === undefined ? {} : { key: r.key }),
      ...(r.headers === undefined ? {} : { headers: r.headers }),
    }));
    this.forward(stage, batch);
  }

  /** An upstream watermark reaches every transform (stages with their own assigner ignore it, as in Flink). */
  watermark(watermark: number): void {
    for (const [id, chain] of this.ordered()) {
      const stage = this.pipeline.stages.find((s) => s.id === id)!;
      const out: StreamRecord[] = [];
      for (let input = 0; input < stage.inputTypes.length; input++) {
        if (typeof chain.processWatermark === 'function')
          out.push(...chain.processWatermark(input, watermark));
        else chain.heads?.[input]?.advanceWatermark(watermark);
      }
      out.push(...chain.tick(this.now));
      this.forward(id, out);
    }
  }

  /** Processing time moves on: every chain ticks (idle inputs, timers), in topological order. */
  advanceTime(ms: number): void {
    this.now += ms;
    for (const [id, chain] of this.ordered()) this.forward(id, chain.tick(this.now));
  }

  /** End of every input: pending windows and timers fire, upstream first. */
  finish(): void {
    for (const [id, chain] of this.ordered()) this.forward(id, chain.finish());
  }

  records(stage: string): StageRecords | undefined {
    return this.results.get(stage);
  }

  private *ordered(): Iterable<[string, Chain]> {
    for (const stage of this.pipeline.stages) {
      const chain = this.chains.get(stage.id);
      if (chain) yield [stage.id, chain];
    }
  }

  /** `from` emitted `records`: note them, and hand them to each child input, checked against its type. */
  private forward(from: string, records: StreamRecord[]): void {
    if (records.length === 0) return;
    this.results.get(from)!.emitted.push(...records);
    for (const { to, inputIndex } of this.children.get(from) ?? []) {
      const stage = this.pipeline.stages.find((s) => s.id === to)!;
      const type = stage.inputTypes[inputIndex]!;
      const valid = records.filter((record) => {
        try {
          type.check(record.value);
          return true;
        } catch (error) {
          this.results.get(to)!.deadLetters.push({ record, error });
          return false;
        }
      });
      if (stage.kind === 'output') this.results.get(to)!.emitted.push(...valid);
      else if (valid.length > 0)
        this.forward(to, this.chains.get(to)!.processBatch(inputIndex, from, valid));
    }
  }
}

/** Runs one test case on a built pipeline; the failures (none when it passes). */
export function runPipelineTest(pipeline: Pipeline, test: PipelineTestCase): TestFailure[] {
  const failures: TestFailure[] = [];
  const ids = new Set(pipeline.stages.map((s) => s.id));
  for (const { stage } of test.input) {
    const found = pipeline.stages.find((s) => s.id === stage);
    if (found === undefined || found.kind !== 'input')
      failures.push({
        stage,
        message: `input names "${stage}", which is not an input stage of the pipeline`,
      });
  }
  for (const stage of [...test.expect.keys(), ...test.deadLetters.keys()])
    if (!ids.has(stage)) failures.push({ stage, message: `no stage "${stage}" in the pipeline` });
  if (failures.length > 0) return failures;

  const driver = new PipelineTestDriver(pipeline, test.startTime);
  // Steps of several inputs run input by input, in file order; each input's steps in order.
  for (const { stage, steps } of test.input) {
    for (const step of steps) {
      if (step.kind === 'records') driver.emit(stage, step.records);
      else if (step.kind === 'watermark') driver.watermark(step.watermark);
      else driver.advanceTime(step.ms);
    }
  }
  if (test.finish) driver.finish();

  for (const [stage, expected] of test.expect) {
    const actual = driver.records(stage)!.emitted;
    failures.push(...compare(stage, expected, actual, test.ordered));
  }
  for (const [stage, count] of test.deadLetters) {
    const letters = driver.records(stage)!.deadLetters;
    if (letters.length !== count) {
      const reasons = letters
        .slice(0, 3)
        .map((l) => (l.error as Error)?.message ?? String(l.error))
        .join('; ');
      failures.push({
        stage,
        message: `expected ${count} dead letter(s), got ${letters.length}${reasons ? ` (${reasons})` : ''}`,
      });
    }
  }
  return failures;
}

const show = (value: unknown) => JSON.stringify(value);

function matches(expected: ExpectedRecord, actual: StreamRecord): boolean {
  return (
    isDeepStrictEqual(
      JSON.parse(JSON.stringify(actual.value ?? null)) as JsonValue,
      expected.value,
    ) &&
    (expected.timestamp === undefined || expected.timestamp === actual.timestamp) &&
    (expected.key === undefined || expected.key === (actual.key ?? null))
  );
}

function describeRecord(r: {
  value: unknown;
  timestamp?: number | undefined;
  key?: unknown;
}): string {
  return `${show(r.value)}${r.timestamp === undefined ? '' : ` @ ${r.timestamp}`}${r.key === undefined || r.key === null ? '' : ` key ${show(r.key)}`}`;
}

function compare(
  stage: string,
  expected: readonly ExpectedRecord[],
  actual: readonly StreamRecord[],
  ordered: boolean,
): TestFailure[] {
  const failures: TestFailure[] = [];
  if (ordered) {
    for (let i = 0; i < Math.max(expected.length, actual.length); i++) {
      const e = expected[i];
      const a = actual[i];
      if (e && a && matches(e, a)) continue;
      failures.push({
        stage,
        message: `record ${i + 1}: expected ${e ? describeRecord(e) : 'nothing'}, got ${a ? describeRecord(a) : 'nothing'}`,
      });
      if (failures.length >= 5) break;
    }
  } else {
    const rest = [...actual];
    for (const e of expected) {
      const i = rest.findIndex((a) => matches(e, a));
      if (i >= 0) rest.splice(i, 1);
      else failures.push({ stage, message: `expected ${describeRecord(e)}, not emitted` });
    }
    for (const a of rest)
      failures.push({ stage, message: `emitted ${describeRecord(a)}, not expected` });
  }
  if (failures.length > 0 && expected.length !== actual.length)
    failures.unshift({
      stage,
      message: `expected ${expected.length} record(s), got ${actual.length}`,
    });
  return failures;
}
