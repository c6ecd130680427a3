import { compileTransform, type OperatorChain } from '@codefeedr/core/internal';
import {
  silentLogger,
  type JsonValue,
  type Logger,
  type OutputTag,
  type StageContext,
  type StateBackend,
  type StreamRecord,
  type TransformComponent,
  type TransformStage,
  type z,
} from '@codefeedr/core';
import { HarnessUnsupportedError, TransformHarnessError } from './errors.js';
import { captureSideOutputs, type TaggedValue } from './side-output-capture.js';

export interface TransformHarnessOptions {
  /** Stage id (dead letters, errors); default the stage's id, or the component's name. */
  stageId?: string;
  /** Attempts after the first for a user function that throws, before dead-lettering (default 0). */
  retries?: number;
  /** The fake processing-time clock's start, epoch ms (default 0). */
  now?: number;
  /** Side outputs to capture: what process and window streams emit to these tags (late data, ...). */
  sideOutputs?: readonly OutputTag<unknown>[];
  /**
   * Check every input value against the stage's input type, as the runtime does (default
   * `all`; the runtime samples 1 in 100 unless a stage sets `validation: all`). `off` skips it.
   */
  validation?: 'all' | 'off';
  /** State from `snapshot()` of an earlier harness (a restart from a checkpoint). */
  state?: JsonValue;
  /**
   * Where keyed operators keep their state (default in memory): pass a `DiskStateBackend` to
   * test a transform on the disk backend. `close()` deletes its files.
   */
  stateBackend?: StateBackend;
  logger?: Logger;
}

/** A record to feed: the timestamp defaults to the fake clock (a source stamps "now"). */
export interface HarnessInputRecord<T = unknown> {
  value: T;
  timestamp?: number;
  key?: string | undefined;
  headers?: Record<string, string> | undefined;
}

export interface SendOptions<T> {
  /** Which input of the stage (default 0). */
  input?: number;
  /** The upstream the batch arrives from (a buffer partition, a stage id); default `input-<n>`. */
  channel?: string;
  /** Event time of each value: a number, or a function of the value (default: the clock). */
  timestamp?: number | ((value: T, index: number) => number);
  /** Record key of each value (default none). */
  key?: (value: T) => string | undefined;
}

/** A record the stage could not process: the runtime would put it on `<stage>.dlq`. */
export interface HarnessDeadLetter {
  record: StreamRecord;
  error: unknown;
  /** 1 + retries for user functions; 1 for input validation. */
  attempts: number;
  inputIndex: number;
}

/**
 * Runs a transform stage's compiled operator chain synchronously, with no buffer and no
 * runtime (Kafka Streams' TopologyTestDriver, Flink's operator test harness): feed records
 * per input, advance a fake processing-time clock, inject watermarks, read outputs, side
 * outputs and dead letters, snapshot state and restore it into a fresh harness. The chain
 * is the one core compiles for a real run (`compileTransform`), so what passes here runs
 * the same way in a pipeline.
 */
export class TransformHarness<In extends readonly unknown[] = readonly unknown[], Out = unknown> {
  /** Every main-output record so far, in emission order. */
  readonly output: StreamRecord<Out>[] = [];
  readonly deadLetters: HarnessDeadLetter[] = [];
  private readonly sides = new Map<string, StreamRecord[]>();
  /** Named output -> its records so far (stages that declare `outputs`). */
  private readonly named = new Map<string, StreamRecord[]>();
  private readonly chain: OperatorChain;
  private readonly tags: readonly OutputTag<unknown>[];
  private nowMs: number;
  private ended = false;

  constructor(
    readonly stage: TransformStage<In, Out>,
    private readonly options: TransformHarnessOptions = {},
  ) {
    this.nowMs = options.now ?? 0;
    this.tags = options.sideOutputs ?? [];
    for (const tag of this.tags) this.sides.set(tag.id, []);
    const compiled =
      this.tags.length === 0 ? stage : captureSideOutputs(stage, this.tags as OutputTag<unknown>[]);
    const ctx: StageContext = {
      stageId: stage.id,
      pipelineName: 'transform-harness',
      logger: options.logger ?? silentLogger,
      signal: new AbortController().signal,
    };
    this.chain = compileTransform(compiled as TransformStage, ctx, {
      clock: () => this.nowMs,
      retries: options.retries ?? 0,
      ...(options.stateBackend === undefined ? {} : { stateBackend: options.stateBackend }),
      deadLetter: (record, error, attempts, inputIndex) =>
        this.deadLetters.push({ record, error, attempts, inputIndex }),
    });
    for (const name of this.chain.outputNames ?? []) this.named.set(name, []);
    if (options.state !== undefined) this.chain.restoreState(options.state);
  }

  /** Releases the chain's state backend (a disk backend's files); the harness is unusable after. */
  close(): void {
    this.chain.close?.();
  }

  /** The fake processing-time clock (epoch ms). */
  get now(): number {
    return this.nowMs;
  }

  /** Values of every main-output record so far. */
  get values(): Out[] {
    return this.output.map((r) => r.value);
  }

  /** Records of the stage's named output `name` so far (one it declares in `outputs`). */
  namedOutput<T = unknown>(name: string): StreamRecord<T>[] {
    const records = this.named.get(name);
    if (records === undefined) {
      const declared = Object.keys(this.stage.outputs ?? {});
      throw new TransformHarnessError(
        this.stage.id,
        `the stage has no named output "${name}"`,
        declared.length === 0
          ? 'It declares no named outputs: read its main output from `output` / `values`.'
          : `It declares ${declared.map((d) => `"${d}"`).join(', ')}.`,
      );
    }
    return records as StreamRecord<T>[];
  }

  /** Records emitted to `tag` so far (it must be listed in `options.sideOutputs`). */
  sideOutput<T>(tag: OutputTag<T>): StreamRecord<T>[] {
    const records = this.sides.get(tag.id);
    if (records === undefined) {
      throw new TransformHarnessError(
        this.stage.id,
        `side output "${tag.id}" is not captured`,
        `Pass it in the options: transformHarness(..., { sideOutputs: [tag] }).`,
      );
    }
    return records as StreamRecord<T>[];
  }

  /** The chain's event-time watermark (-Infinity before the first one). */
  get watermark(): number {
    return this.chain.currentWatermark?.() ?? -Infinity;
  }

  /** Feeds values to input 0 (or `options.input`) as one batch; returns the main output it caused. */
  send(values: readonly In[0][], options?: SendOptions<In[0]>): StreamRecord<Out>[];
  send<T>(values: readonly T[], options: SendOptions<T> & { input: number }): StreamRecord<Out>[];
  send(values: readonly unknown[], options: SendOptions<unknown> = {}): StreamRecord<Out>[] {
    const { timestamp, key } = options;
    return this.sendRecords(
      values.map((value, i) => ({
        value,
        timestamp:
          typeof timestamp === 'function' ? timestamp(value, i) : (timestamp ?? this.nowMs),
        key: key?.(value),
      })),
      options,
    );
  }

  /** Feeds whole records (key, timestamp, headers) as one batch. */
  sendRecords(
    records: readonly HarnessInputRecord[],
    options: { input?: number; channel?: string } = {},
  ): StreamRecord<Out>[] {
    const input = this.checkInput(options.input ?? 0, 'send');
    const batch = this.validate(
      input,
      records.map((r) => ({
        key: r.key,
        value: r.value,
        timestamp: r.timestamp ?? this.nowMs,
        headers: r.headers,
      })),
    );
    const channel = options.channel ?? `input-${input}`;
    return this.collect(() => this.chain.processBatch(input, channel, batch));
  }

  /**
   * An upstream watermark reaches input `input`: event-time windows and timers up to it
   * fire. Like Flink, an `assignTimestampsAndWatermarks` inside the stage ignores it (it
   * makes its own from record timestamps); only end of input (`finish()`) passes it.
   */
  advanceWatermark(watermark: number, options: { input?: number } = {}): StreamRecord<Out>[] {
    const input = this.checkInput(options.input ?? 0, 'advanceWatermark');
    return this.collect(() => {
      const chain = this.chain as OperatorChain & {
        processWatermark?: (inputIndex: number, watermark: number) => StreamRecord[];
        heads?: ({ advanceWatermark(w: number): void } | undefined)[];
      };
      if (typeof chain.processWatermark === 'function')
        return chain.processWatermark(input, watermark);
      // Core's chain has no public watermark entry yet: push it where its records enter,
      // as finish() does with +Infinity, then collect what fired through a tick at the same time.
      if (!Array.isArray(chain.heads)) {
        throw new HarnessUnsupportedError(
          'inject a watermark into this chain',
          'the installed @codefeedr/core exposes neither OperatorChain.processWatermark nor the entry operators it used to. Send records with later timestamps, or call finish().',
        );
      }
      chain.heads[input]?.advanceWatermark(watermark);
      return chain.tick(this.nowMs);
    });
  }

  /**
   * Moves the fake clock forward by `ms` and ticks the chain: idle inputs, processing-time
   * timers due by then fire; state TTL reads the same clock.
   */
  advanceTime(ms: number): StreamRecord<Out>[] {
    if (!(ms >= 0)) {
      throw new TransformHarnessError(
        this.stage.id,
        `advanceTime(${ms})`,
        'Processing time never goes back: pass a duration >= 0.',
      );
    }
    return this.setTime(this.nowMs + ms);
  }

  /** Sets the fake clock to `now` (not earlier than it is) and ticks the chain. */
  setTime(now: number): StreamRecord<Out>[] {
    if (!(now >= this.nowMs)) {
      throw new TransformHarnessError(
        this.stage.id,
        `setTime(${now}) is before the clock (${this.nowMs})`,
        'Processing time never goes back.',
      );
    }
    this.nowMs = now;
    this.checkOpen('tick');
    return this.collect(() => this.chain.tick(now));
  }

  /** End of every input (a bounded run ends): fires every pending window and timer. */
  finish(): StreamRecord<Out>[] {
    this.checkOpen('finish');
    const out = this.collect(() => this.chain.finish());
    this.ended = true;
    return out;
  }

  /**
   * The chain's state as a checkpoint stores it (JSON round trip, as the file store does);
   * taken between batches, like the runtime.
   */
  snapshot(): JsonValue {
    return JSON.parse(JSON.stringify(this.chain.snapshotState())) as JsonValue;
  }

  /** A fresh harness of the same stage restored from this one's state: a restart from a checkpoint. */
  restarted(options: TransformHarnessOptions = {}): TransformHarness<In, Out> {
    return new TransformHarness(this.stage, {
      ...this.options,
      now: this.nowMs,
      ...options,
      state: this.snapshot(),
    });
  }

  private checkInput(input: number, what: string): number {
    this.checkOpen(what);
    if (!Number.isInteger(input) || input < 0 || input >= this.stage.inputTypes.length) {
      throw new TransformHarnessError(
        this.stage.id,
        `${what} to input ${input}`,
        `The stage has ${this.stage.inputTypes.length} input(s), numbered from 0.`,
      );
    }
    return input;
  }

  private checkOpen(what: string): void {
    if (this.ended) {
      throw new TransformHarnessError(
        this.stage.id,
        `${what} after finish()`,
        'finish() ends every input; use a new harness (or restarted()) for more input.',
      );
    }
  }

  /** Input validation as the runtime does it before a batch reaches the chain. */
  private validate(input: number, records: StreamRecord[]): StreamRecord[] {
    const type = this.stage.inputTypes[input]!;
    if (this.options.validation === 'off' || type.id === 'any@1') return records;
    return records.filter((record) => {
      try {
        type.check(record.value);
        return true;
      } catch (error) {
        this.deadLetters.push({ record, error, attempts: 1, inputIndex: input });
        return false;
      }
    });
  }

  /** Runs one chain call (the chain reads the fake clock it was compiled with) and sorts main and side output. */
  private collect(call: () => StreamRecord[]): StreamRecord<Out>[] {
    const emitted = call();
    const names = this.chain.outputNames ?? [];
    if (names.length > 0) {
      const named = this.chain.takeNamedOutputs!();
      names.forEach((name, i) => this.named.get(name)!.push(...named[i]!));
    }
    if (this.tags.length === 0) {
      this.output.push(...(emitted as StreamRecord<Out>[]));
      return emitted as StreamRecord<Out>[];
    }
    const main: StreamRecord<Out>[] = [];
    for (const record of emitted) {
      const [slot, value] = record.value as TaggedValue;
      const untagged = { ...record, value };
      if (slot === 0) main.push(untagged as StreamRecord<Out>);
      else this.sides.get(this.tags[slot - 1]!.id)!.push(untagged);
    }
    this.output.push(...main);
    return main;
  }
}

/**
 * A harness for a transform stage, or for a component and its config (`create` validates
 * the config as a pipeline would).
 *
 * @example
 * const h = transformHarness(shoutTransform, { exclamations: 2 });
 * h.send([{ n: 1, to: 'world', text: 'Hi, world' }]);
 * expect(h.values).toEqual([{ n: 1, to: 'world', text: 'HI, WORLD!!' }]);
 */
export function transformHarness<In extends readonly unknown[], Out>(
  stage: TransformStage<In, Out>,
  options?: TransformHarnessOptions,
): TransformHarness<In, Out>;
export function transformHarness<Schema extends z.ZodType, In extends readonly unknown[], Out>(
  component: TransformComponent<Schema, In, Out>,
  config?: z.input<Schema>,
  options?: TransformHarnessOptions,
): TransformHarness<In, Out>;
export function transformHarness(
  stageOrComponent: TransformStage | TransformComponent,
  configOrOptions?: unknown,
  maybeOptions?: TransformHarnessOptions,
): TransformHarness {
  if ('transform' in stageOrComponent && typeof stageOrComponent.transform === 'function') {
    return new TransformHarness(
      stageOrComponent,
      (configOrOptions as TransformHarnessOptions | undefined) ?? {},
    );
  }
  const component = stageOrComponent as TransformComponent;
  const options = maybeOptions ?? {};
  const stage = component.create(options.stageId ?? component.name, configOrOptions as never);
  return new TransformHarness(stage, options);
}
