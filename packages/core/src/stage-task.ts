import type { DeadLetterQueue } from './dead-letter.js';
import { InputValidator } from './input-validator.js';
import type { StageMetrics } from './metrics.js';
import type { OperatorChain } from './operator-chain.js';
import type { JsonValue, StreamRecord } from './record.js';
import type { RuntimeContext } from './runtime-context.js';
import { withRetries, type RetryPolicy } from './retry-policy.js';
import type { Sink, SinkWriteResult } from './sink.js';
import type { Source } from './source.js';
import { dropBadSourceRecords } from './source-record-error.js';
import { RecordKeyError } from './operators.js';
import type { AnyStage } from './stage.js';

/**
 * Where a task's output records go: the next tasks' `onBatch` in this process, or a buffer
 * topic (encode → send). `emit` is synchronous; an edge with I/O queues and sends later.
 */
export interface TaskOutput {
  /** `output`: the named output the records are of (see TransformOutputs); none: the main one. */
  emit(records: readonly StreamRecord[], output?: string): void;
}

/**
 * One stage at run time, whatever the mode (Flink's StreamTask): its source, fused operator
 * chain or sink, the validator of records entering it, its dead letters and metrics, and the
 * one retry policy of its I/O calls. Run modes differ only in how tasks are wired: which
 * TaskOutput a task emits to, and who calls `onBatch` (an upstream task, or a buffer reader).
 * Counting rules, the same in every mode: `recordsIn` = records handed to the stage (before
 * validation), `recordsOut` = records it emitted (an output: records stored), and a record
 * refused anywhere is counted in `deadLettered`.
 */
export class StageTask {
  readonly id: string;
  readonly metrics: StageMetrics;
  readonly dlq: DeadLetterQueue;
  readonly retry: RetryPolicy;
  readonly batchSize: number;
  source: Source<unknown> | undefined;
  chain: OperatorChain | undefined;
  sink: Sink<unknown> | undefined;
  /** Set by the run's wiring before the first batch (input and transform stages). */
  output: TaskOutput | undefined;
  private readonly validator: InputValidator;
  /** Writes to one sink are serialized (several parents may feed it in one pass). */
  private sinkTail: Promise<void> = Promise.resolve();
  private ended = false;

  constructor(
    private readonly ctx: RuntimeContext,
    readonly stage: AnyStage,
  ) {
    this.id = stage.id;
    this.metrics = ctx.metrics.stage(stage.id, stage.kind);
    this.dlq = ctx.deadLetterQueue(stage);
    this.retry = ctx.retryPolicy();
    const options = ctx.stageOptions(stage.id);
    this.batchSize = options.batchSize ?? ctx.batchSize;
    this.validator = new InputValidator(stage.inputTypes, options);
  }

  async open(): Promise<void> {
    const sctx = this.ctx.stageContext(this.stage);
    if (this.stage.kind === 'input') this.source = await this.stage.createSource(sctx);
    else if (this.stage.kind === 'transform') {
      this.chain = this.ctx.compile(this.stage, sctx, {
        deadLetter: this.dlq.sink,
        retries: this.ctx.def.deadLetter.retries,
        clock: this.ctx.clock,
        stateBackend: this.ctx.stateBackendOf(this.stage.id),
      });
    } else this.sink = await this.stage.createSink(sctx);
  }

  /** Before the first batch: a source's position, a chain's state, from a checkpoint. */
  async restore(position: JsonValue | undefined, state: JsonValue | undefined): Promise<void> {
    if (this.source !== undefined && position !== undefined) await this.source.restore(position);
    if (this.chain !== undefined && state !== undefined) this.chain.restoreState(state);
  }

  /** Input stages: the next batch from the source (I/O, retried), or null once it has ended. */
  async readBatch(): Promise<StreamRecord[] | null> {
    const source = this.source!;
    return (await withRetries(this.id, 'source.poll', this.retry, this.metrics, () =>
      source.poll(this.batchSize, this.ctx.signal),
    )) as StreamRecord[] | null;
  }

  /** Input stages: emits a polled batch's good records; unparseable ones become dead letters. */
  onSourceBatch(batch: StreamRecord[]): void {
    const good = this.withStringKeys(dropBadSourceRecords(batch, this.dlq));
    this.metrics.recordsIn += batch.length;
    this.metrics.recordsOut += good.length;
    if (good.length > 0) this.output!.emit(good);
  }

  /**
   * Records whose key is a string or absent; a null key becomes none, any other key makes
   * the record a dead letter (RecordKeyError). Keys are typed as strings, but JavaScript
   * sources and functions can set anything, and a buffer partitions by string keys: checked
   * here, where records leave a stage in every mode, so inline and buffer runs agree.
   */
  private withStringKeys(records: StreamRecord[]): StreamRecord[] {
    let i = 0;
    while (
      i < records.length &&
      (records[i]!.key === undefined || typeof records[i]!.key === 'string')
    )
      i++;
    if (i === records.length) return records;
    const good = records.slice(0, i);
    for (; i < records.length; i++) {
      const record = records[i]!;
      const key = record.key as unknown;
      if (key === undefined || typeof key === 'string') good.push(record);
      else if (key === null) good.push({ ...record, key: undefined });
      else
        this.dlq.add(record, new RecordKeyError(this.id, key), { attempts: 1, inputIndex: null });
    }
    return good;
  }

  /** One batch that arrived on input `inputIndex` from `channel` (an upstream stage id or a topic/partition). */
  onBatch(
    inputIndex: number,
    channel: string,
    records: readonly StreamRecord[],
    positions?: Readonly<Record<string, string>>,
  ): void {
    if (records.length === 0) return;
    this.metrics.recordsIn += records.length;
    const valid = this.validator.filter(records, inputIndex, this.dlq);
    if (valid.length === 0) return;
    if (this.chain !== undefined) {
      const started = performance.now();
      const out = this.chain.processBatch(inputIndex, channel, valid);
      this.metrics.observeBatch(performance.now() - started);
      this.emitFromChain(out);
    } else if (this.sink !== undefined) {
      this.write(inputIndex, valid, positions);
    }
  }

  /**
   * The channels feeding input `inputIndex` now (assigned partitions, or the upstream stage):
   * each counts for event time from this call; those left out are revoked (Flink registers a
   * split's watermark output at assignment and releases it when the split goes).
   */
  assignChannels(inputIndex: number, channels: readonly string[]): void {
    const chain = this.chain;
    if (chain?.assignChannels !== undefined && !this.ended)
      this.emitFromChain(chain.assignChannels(inputIndex, channels));
  }

  /** Processing-time tick: idle inputs stop holding the watermark back; timers and windows fire. */
  onTick(nowMs: number): void {
    if (this.chain !== undefined && !this.ended) this.emitFromChain(this.chain.tick(nowMs));
  }

  /** Every input ended: a chain fires what is pending (watermark +∞). */
  finish(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.chain !== undefined) this.emitFromChain(this.chain.finish());
  }

  get isEnded(): boolean {
    return this.ended;
  }

  /** The sink writes queued so far; rejects if one failed for good. */
  writesDone(): Promise<void> {
    return this.sinkTail;
  }

  /** Captured at a batch boundary: the source's position (input stages). */
  position(): JsonValue | undefined {
    return this.source?.position();
  }

  /**
   * Captured at a batch boundary: the chain's state (transform stages). `withBroadcast`
   * false leaves broadcast state out: a buffer worker rebuilds it from the broadcast input.
   */
  snapshotState(withBroadcast = true): JsonValue | undefined {
    if (withBroadcast || !(this.chain?.broadcastInputs?.length ?? 0))
      return this.chain?.snapshotState();
    return this.chain!.snapshotState({ key: () => true, channel: () => true });
  }

  /** Makes every record written so far durable (sinks); rejected records become dead letters. */
  async flush(): Promise<void> {
    const sink = this.sink;
    if (sink === undefined) return;
    await this.sinkTail;
    const started = performance.now();
    const result = await withRetries(this.id, 'sink.flush', this.retry, this.metrics, () =>
      sink.flush(),
    );
    this.metrics.recordsOut -= this.deadLetterRejected(result, null);
    this.metrics.backpressureMs += performance.now() - started;
  }

  /** Everything up to `position` is durable downstream: acknowledge it to the source. */
  async commitSource(position: JsonValue): Promise<void> {
    const source = this.source;
    if (source?.commit === undefined) return;
    await withRetries(this.id, 'source.commit', this.retry, this.metrics, () =>
      source.commit!(position),
    );
  }

  /** Sends the dead letters collected so far to the run's dead-letter destination. */
  async sendDeadLetters(): Promise<void> {
    if (this.dlq.size === 0) return;
    const letters = this.dlq.drain();
    await withRetries(this.id, 'dead-letter send', this.retry, this.metrics, () =>
      this.ctx.deadLetters.send(this.id, letters),
    );
  }

  async close(): Promise<void> {
    try {
      await this.source?.close();
      await this.sink?.close();
      this.chain?.close?.(); // a disk state backend's files go
    } catch (error) {
      this.ctx.logger.warn('close failed', { stage: this.id, error });
    }
  }

  private emitFromChain(emitted: StreamRecord[]): void {
    const out = this.withStringKeys(emitted);
    this.metrics.recordsOut += out.length;
    const wm = this.chain!.currentWatermark?.();
    if (wm !== undefined && Number.isFinite(wm)) this.metrics.watermark = wm;
    if (out.length > 0) this.output?.emit(out);
    const names = this.chain!.outputNames;
    if (names === undefined || names.length === 0) return;
    const named = this.chain!.takeNamedOutputs!();
    for (let i = 0; i < names.length; i++) {
      const records = this.withStringKeys(named[i]!);
      if (records.length === 0) continue;
      this.metrics.recordsOut += records.length;
      this.output?.emit(records, names[i]);
    }
  }

  private write(
    inputIndex: number,
    records: readonly StreamRecord[],
    positions: Readonly<Record<string, string>> | undefined,
  ): void {
    const sink = this.sink!;
    const started = performance.now();
    this.sinkTail = this.sinkTail.then(async () => {
      const result = await withRetries(this.id, 'sink.write', this.retry, this.metrics, () =>
        sink.write(records, positions),
      );
      const rejected = this.deadLetterRejected(result, inputIndex);
      this.metrics.recordsOut += records.length - rejected;
      this.metrics.observeWritten(records);
      const ms = performance.now() - started;
      this.metrics.observeBatch(ms);
      this.metrics.backpressureMs += ms;
    });
  }

  private deadLetterRejected(result: void | SinkWriteResult, inputIndex: number | null): number {
    const failed = result?.failed;
    if (failed === undefined || failed.length === 0) return 0;
    for (const { record, error } of failed)
      this.dlq.add(record, error, { attempts: 1, inputIndex });
    return failed.length;
  }
}
