import type { DataStream } from './datastream.js';
import { compileTransform } from './compile-transform.js';
import { silentLogger } from './console-logger.js';
import { Any } from './message-type.js';
import type { OperatorChain } from './operator-chain.js';
import type { StreamRecord } from './record.js';
import type { StageContext, TransformStage } from './stage.js';
import type { StateBackend } from './keyed-map.js';

/*
 * Test support for the dataflow tests: compiles a transform function into an OperatorChain
 * with a dead-letter list, and drives it with batches. Not exported from the package.
 */

export interface DeadLetter {
  record: StreamRecord;
  error: unknown;
  attempts: number;
  inputIndex: number;
}

export interface ChainUnderTest {
  chain: OperatorChain;
  deadLetters: DeadLetter[];
}

export function stageContext(stageId = 'test-stage'): StageContext {
  return {
    stageId,
    pipelineName: 'test',
    logger: silentLogger,
    signal: new AbortController().signal,
  };
}

/** Compiles `transform` over `inputs` inputs (typed Any) into a chain. */
export function compileChain(
  transform: (...inputs: DataStream<unknown>[]) => DataStream<unknown>,
  options: {
    inputs?: number;
    retries?: number;
    stageId?: string;
    clock?: () => number;
    stateBackend?: StateBackend;
  } = {},
): ChainUnderTest {
  const deadLetters: DeadLetter[] = [];
  const stage: TransformStage = {
    kind: 'transform',
    id: options.stageId ?? 'test-stage',
    config: {},
    inputTypes: Array.from({ length: options.inputs ?? 1 }, () => Any),
    outputType: Any,
    transform: (inputs) => transform(...(inputs as unknown as DataStream<unknown>[])),
  };
  const chain = compileTransform(stage, stageContext(stage.id), {
    retries: options.retries ?? 0,
    ...(options.clock === undefined ? {} : { clock: options.clock }),
    ...(options.stateBackend === undefined ? {} : { stateBackend: options.stateBackend }),
    deadLetter: (record, error, attempts, inputIndex) =>
      deadLetters.push({ record, error, attempts, inputIndex }),
  });
  return { chain, deadLetters };
}

/** Records with the given values; timestamps from `timestamp(value, i)` (default i). */
export function records<T>(
  values: readonly T[],
  timestamp: (value: T, index: number) => number = (_v, i) => i,
): StreamRecord<T>[] {
  return values.map((value, i) => ({ value, timestamp: timestamp(value, i) }));
}

/** Feeds `input` in batches cut at `cuts` (sorted indexes), then finishes; returns all output. */
export function runInBatches(
  chain: OperatorChain,
  input: readonly StreamRecord[],
  cuts: readonly number[] = [],
  inputIndex = 0,
  channel = 'c0',
): StreamRecord[] {
  const out: StreamRecord[] = [];
  let from = 0;
  for (const cut of [...cuts, input.length]) {
    if (cut < from) continue;
    out.push(...chain.processBatch(inputIndex, channel, input.slice(from, cut)));
    from = cut;
  }
  out.push(...chain.finish());
  return out;
}
