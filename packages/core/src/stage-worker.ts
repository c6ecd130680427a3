import type {
  BufferConsumer,
  BufferMessage,
  BufferProducer,
  ConsumedMessage,
  TopicPartitionOffset,
} from './buffer.js';
import type { DeadLetterQueue } from './dead-letter.js';
import type { StageMetrics } from './metrics.js';
import type { OperatorChain } from './operator-chain.js';
import type { JsonValue, StreamRecord } from './record.js';
import type { RuntimeContext } from './runtime.js';
import {
  dropBadSourceRecords,
  InputValidator,
  withRetries,
  type RetryPolicy,
} from './runtime-support.js';
import type { Serde } from './serde.js';
import type { Sink } from './sink.js';
import type { Source } from './source.js';
import type { AnyStage } from './stage.js';

/**
 * End-of-stream through a buffer: when a stage worker's inputs have all ended it sends one
 * control message to EVERY partition of its output topic, with header
 * `codefeedr-control: end` and `codefeedr-end: {"stage","covered":[...],"total":N}` where
 * `covered` lists the upstream channels this worker finished (`source` for an input stage,
 * `topic/partition` for others) out of `total`. A consumer deems a partition ended once the
 * union of `covered` over the markers read there reaches `total`, so N workers of one stage
 * (each finishing only its own partitions) end downstream exactly when all of them are done.
 * Consumers never commit past the first end marker of a partition, so whoever owns the
 * partition after a rebalance or restart reads it again.
 */
export const CONTROL_HEADER = 'codefeedr-control';
export const END_HEADER = 'codefeedr-end';

interface EndMarker {
  stage: string;
  covered: string[];
  total: number;
  /** Id of the run that sent it; a `local` run ignores markers left by earlier runs. */
  run?: string;
}

const channelOf = (topic: string, partition: number) => `${topic}/${partition}`;

/** Runs the given stages (local mode: all; worker mode: one) against the shared buffer. */
export async function runStageWorkers(
  ctx: RuntimeContext,
  stageIds: readonly string[],
): Promise<void> {
  const { def } = ctx;
  const byId = new Map(def.stages.map((s) => [s.id, s]));
  // Topics the run needs: outputs of the stages run and of their parents (so a worker may
  // start before its upstream), and the dead-letter topics of the stages run.
  const topicStages = new Set<string>();
  for (const id of stageIds) {
    if (byId.get(id)!.kind !== 'output') topicStages.add(id);
    for (const parent of def.parents.get(id) ?? []) topicStages.add(parent);
  }
  for (const id of topicStages) {
    const options = ctx.stageOptions(id);
    await ctx.buffer.admin.ensureTopic({
      name: ctx.topicOf(id),
      partitions: options.partitions ?? 1,
      ...(options.bufferConfig === undefined ? {} : { config: options.bufferConfig }),
    });
  }
  for (const id of stageIds) {
    await ctx.buffer.admin.ensureTopic({
      name: `${id}${def.deadLetter.topicSuffix}`,
      partitions: 1,
    });
  }

  const workers = stageIds.map((id) => {
    const stage = byId.get(id)!;
    return stage.kind === 'input' ? new InputWorker(ctx, stage) : new ConsumerWorker(ctx, stage);
  });
  try {
    // Every consumer joins its group before any producer sends, so no group misses records.
    for (const worker of workers) await worker.prepare();
    await Promise.all(workers.map((w) => w.run().catch((error: unknown) => ctx.fail(error))));
  } finally {
    for (const worker of workers.reverse()) await worker.close();
  }
}

abstract class StageWorker {
  protected readonly metrics: StageMetrics;
  protected readonly dlq: DeadLetterQueue;
  protected readonly retry: RetryPolicy;
  protected readonly topic: string;
  protected readonly serde: Serde;
  protected producer: BufferProducer | undefined;
  /** The producer was made transactional (exactly-once): every send runs in a transaction. */
  protected transactional = false;
  protected checkpointId = 0;
  private lastCheckpoint = Date.now();

  constructor(
    protected readonly ctx: RuntimeContext,
    protected readonly stage: AnyStage,
  ) {
    this.metrics = ctx.metrics.stage(stage.id, stage.kind);
    this.dlq = ctx.deadLetterQueue(stage);
    this.retry = ctx.retryPolicy();
    this.topic = ctx.topicOf(stage.id);
    this.serde = ctx.serdeOf(stage.id);
  }

  abstract prepare(): Promise<void>;
  abstract run(): Promise<void>;
  abstract close(): Promise<void>;

  protected get clientId(): string {
    return `${this.ctx.def.name}.${this.stage.id}.${this.ctx.instance}`;
  }

  protected async loadCheckpoint() {
    const cp = await this.ctx.store?.load(this.ctx.def.name, this.stage.id, this.ctx.instance);
    if (cp !== undefined) {
      this.checkpointId = cp.id;
      this.ctx.logger.info('restored checkpoint', { stage: this.stage.id, checkpoint: cp.id });
    }
    return cp;
  }

  protected async saveCheckpoint(
    positions: Record<string, JsonValue>,
    state: Record<string, JsonValue>,
  ) {
    this.lastCheckpoint = Date.now();
    if (this.ctx.store === undefined) return;
    await this.ctx.store.save({
      pipeline: this.ctx.def.name,
      unit: this.stage.id,
      instance: this.ctx.instance,
      id: ++this.checkpointId,
      takenAt: Date.now(),
      positions,
      state,
      watermarks: { [this.stage.id]: this.metrics.watermark },
    });
  }

  protected checkpointDue(): boolean {
    return Date.now() - this.lastCheckpoint >= this.ctx.checkpointIntervalMs;
  }

  /** Encodes records with this stage's serde; a value that cannot be encoded is dead-lettered. */
  protected encode(records: readonly StreamRecord[]): BufferMessage[] {
    const out: BufferMessage[] = [];
    let bytes = 0;
    for (const record of records) {
      let value: Uint8Array;
      try {
        value = this.serde.encode(record.value);
      } catch (error) {
        this.dlq.add(record, error, { attempts: 1, inputIndex: null });
        continue;
      }
      bytes += value.length;
      out.push({ key: record.key, value, timestamp: record.timestamp, headers: record.headers });
    }
    this.metrics.bytesOut += bytes;
    this.metrics.recordsOut += out.length;
    return out;
  }

  protected async producerFor(): Promise<BufferProducer> {
    this.producer ??= await this.ctx.buffer.producer({ clientId: this.clientId });
    return this.producer;
  }

  /** Sends to the output topic; the time a full buffer holds us back counts as backpressure. */
  protected async send(topic: string, messages: readonly BufferMessage[]): Promise<void> {
    if (messages.length === 0) return;
    const producer = await this.producerFor();
    const started = performance.now();
    await withRetries(
      this.stage.id,
      `buffer send to ${topic}`,
      this.retry,
      this.metrics,
      async () => {
        if (!this.transactional) return producer.send(topic, messages);
        // A transactional producer (Kafka) cannot send outside a transaction.
        const tx = await producer.beginTransaction!();
        try {
          await tx.send(topic, messages);
          await tx.commit();
        } catch (error) {
          await tx.abort().catch(() => undefined);
          throw error;
        }
      },
    );
    this.metrics.backpressureMs += performance.now() - started;
  }

  protected async sendDeadLetters(): Promise<void> {
    if (this.dlq.size > 0) await this.send(this.dlq.topic, this.dlq.drain());
  }

  protected async sendEndMarkers(covered: string[], total: number): Promise<void> {
    const description = await this.ctx.buffer.admin.describeTopic(this.topic);
    const partitions = description?.partitions ?? 1;
    const marker: EndMarker = { stage: this.stage.id, covered, total, run: this.ctx.runId };
    const messages: BufferMessage[] = [];
    for (let partition = 0; partition < partitions; partition++) {
      messages.push({
        value: new Uint8Array(0),
        timestamp: Date.now(),
        partition,
        headers: { [CONTROL_HEADER]: 'end', [END_HEADER]: JSON.stringify(marker) },
      });
    }
    await this.send(this.topic, messages);
  }
}

/** An input stage: source -> serde -> its topic. Commits the source after sends resolve. */
class InputWorker extends StageWorker {
  private source: Source<unknown> | undefined;

  async prepare(): Promise<void> {
    this.source = await (this.stage as Extract<AnyStage, { kind: 'input' }>).createSource(
      this.ctx.stageContext(this.stage),
    );
    const cp = await this.loadCheckpoint();
    const position = cp?.positions.source;
    if (position !== undefined) await this.source.restore(position);
    await this.producerFor();
  }

  async run(): Promise<void> {
    const source = this.source!;
    while (!this.ctx.signal.aborted) {
      let batch: StreamRecord[] | null;
      try {
        batch = (await withRetries(this.stage.id, 'source.poll', this.retry, this.metrics, () =>
          source.poll(
            this.ctx.stageOptions(this.stage.id).batchSize ?? this.ctx.batchSize,
            this.ctx.signal,
          ),
        )) as StreamRecord[] | null;
      } catch (error) {
        if (this.ctx.signal.aborted && !this.ctx.failed()) break;
        throw error;
      }
      if (batch === null) {
        await this.sendEndMarkers(['source'], 1);
        await this.checkpoint();
        return;
      }
      if (batch.length > 0) {
        const started = performance.now();
        this.metrics.recordsIn += batch.length;
        const good = dropBadSourceRecords(batch, this.dlq);
        await this.send(this.topic, this.encode(good));
        await this.sendDeadLetters();
        this.metrics.observeBatch(performance.now() - started);
      }
      if (this.checkpointDue()) await this.checkpoint();
    }
    if (!this.ctx.failed()) await this.checkpoint();
  }

  /** Everything polled so far has been sent (sends resolve durably): record, then commit the source. */
  private async checkpoint(): Promise<void> {
    const source = this.source!;
    const position = source.position();
    await this.saveCheckpoint({ source: position }, {});
    if (source.commit !== undefined) {
      await withRetries(this.stage.id, 'source.commit', this.retry, this.metrics, () =>
        source.commit!(position),
      );
    }
  }

  async close(): Promise<void> {
    await this.source
      ?.close()
      .catch((error: unknown) => this.ctx.logger.warn('source.close failed', { error }));
    await this.producer?.close();
  }
}

interface PartitionEnd {
  covered: Set<string>;
  total: number;
  /** Offset of the first end marker read: commits never go past it. */
  firstMarker: string;
}

/** A transform or output stage: its parents' topics -> decode -> chain or sink -> (its topic). */
class ConsumerWorker extends StageWorker {
  private consumer: BufferConsumer | undefined;
  private chain: OperatorChain | undefined;
  private sink: Sink<unknown> | undefined;
  private readonly inputs = new Map<string, { inputIndex: number; serde: Serde }>();
  private readonly ends = new Map<string, PartitionEnd>();
  private totalChannels = 0;
  private lastTick = Date.now();
  private readonly validator: InputValidator;
  private readonly exactlyOnce: boolean;
  private readonly group: string;

  constructor(ctx: RuntimeContext, stage: AnyStage) {
    super(ctx, stage);
    this.validator = new InputValidator(stage.inputTypes, ctx.stageOptions(stage.id));
    this.group = ctx.groupOf(stage.id);
    this.exactlyOnce =
      stage.kind === 'transform' &&
      ctx.stageOptions(stage.id).guarantee === 'exactly-once' &&
      ctx.buffer.capabilities.transactions;
    if (ctx.stageOptions(stage.id).guarantee === 'exactly-once' && !this.exactlyOnce) {
      ctx.logger.warn(
        'exactly-once needs a transform stage on a buffer with transactions; running at-least-once',
        {
          stage: stage.id,
          buffer: ctx.buffer.kind,
        },
      );
    }
  }

  async prepare(): Promise<void> {
    const parents = this.ctx.def.parents.get(this.stage.id) ?? [];
    const topics: string[] = [];
    for (const [inputIndex, parent] of parents.entries()) {
      const topic = this.ctx.topicOf(parent);
      topics.push(topic);
      this.inputs.set(topic, { inputIndex, serde: this.ctx.serdeOf(parent) });
      this.totalChannels += (await this.ctx.buffer.admin.describeTopic(topic))?.partitions ?? 1;
    }
    const sctx = this.ctx.stageContext(this.stage);
    if (this.stage.kind === 'transform') {
      this.chain = this.ctx.compile(this.stage, sctx, {
        deadLetter: this.dlq.sink,
        retries: this.ctx.def.deadLetter.retries,
      });
      this.producer = await this.ctx.buffer.producer({
        clientId: this.clientId,
        ...(this.exactlyOnce ? { transactional: true } : {}),
      });
      this.transactional = this.exactlyOnce;
    } else if (this.stage.kind === 'output') {
      this.sink = await this.stage.createSink(sctx);
    }
    const cp = await this.loadCheckpoint();
    const state = cp?.state[this.stage.id];
    if (state !== undefined) this.chain?.restoreState(state);
    const start = this.ctx.stageOptions(this.stage.id).start;
    this.consumer = await this.ctx.buffer.consumer({
      group: this.group,
      topics,
      ...(start === undefined ? {} : { start }),
      maxBufferedRecords: 4 * this.ctx.batchSize,
    });
  }

  async run(): Promise<void> {
    const consumer = this.consumer!;
    const batchSize = this.ctx.stageOptions(this.stage.id).batchSize ?? this.ctx.batchSize;
    while (!this.ctx.signal.aborted) {
      let messages: ConsumedMessage[];
      try {
        messages = await withRetries(this.stage.id, 'buffer poll', this.retry, this.metrics, () =>
          consumer.poll(batchSize, this.ctx.pollTimeoutMs, this.ctx.signal),
        );
      } catch (error) {
        if (this.ctx.signal.aborted && !this.ctx.failed()) break;
        throw error;
      }
      const started = performance.now();
      const outputs = messages.length > 0 ? await this.process(messages) : [];
      if (this.chain !== undefined && Date.now() - this.lastTick >= this.ctx.tickIntervalMs) {
        this.lastTick = Date.now();
        append(outputs, this.chain.tick(this.lastTick));
      }
      await this.emit(outputs, messages.length > 0);
      if (messages.length > 0) this.metrics.observeBatch(performance.now() - started);
      this.metrics.consumerLag = consumer.lag?.() ?? null;
      const wm = this.chain?.currentWatermark?.();
      if (wm !== undefined && Number.isFinite(wm)) this.metrics.watermark = wm;

      const assigned = consumer.assignment();
      const finished =
        assigned.length > 0 &&
        assigned.every((tp) => this.isEnded(channelOf(tp.topic, tp.partition)));
      if (finished) {
        if (this.chain !== undefined) await this.emit(this.chain.finish());
        if (this.stage.kind === 'transform') {
          const covered = [...this.ends]
            .filter(([c]) => this.isEnded(c))
            .map(([c]) => c)
            .sort();
          await this.sendEndMarkers(covered, this.totalChannels);
        }
        await this.checkpoint();
        return;
      }
      if (this.checkpointDue()) await this.checkpoint();
    }
    if (!this.ctx.failed()) await this.checkpoint();
  }

  private isEnded(channel: string): boolean {
    const end = this.ends.get(channel);
    return end !== undefined && end.covered.size >= end.total;
  }

  /** Decodes, validates and pushes one poll's messages, partition by partition (order kept per partition). */
  private async process(messages: ConsumedMessage[]): Promise<StreamRecord[]> {
    const byChannel = new Map<string, ConsumedMessage[]>();
    for (const m of messages) {
      const channel = channelOf(m.topic, m.partition);
      const list = byChannel.get(channel);
      if (list === undefined) byChannel.set(channel, [m]);
      else list.push(m);
    }
    const outputs: StreamRecord[] = [];
    for (const [channel, list] of byChannel) {
      const { topic } = list[0]!;
      const input = this.inputs.get(topic);
      if (input === undefined) continue; // not ours (shared group misuse); never decoded, never committed past
      const records: StreamRecord[] = [];
      let bytes = 0;
      for (const m of list) {
        if (m.headers?.[CONTROL_HEADER] !== undefined) {
          this.control(channel, m);
          continue;
        }
        // Data after a partition fully ended: the upstream was restarted (a new run), so that end is void.
        if (this.ends.size > 0 && this.isEnded(channel)) this.ends.delete(channel);
        bytes += m.value.length;
        let value: unknown;
        try {
          value = input.serde.decode(m.value);
        } catch (error) {
          this.dlq.add(
            { key: m.key, value: m.value, timestamp: m.timestamp, headers: m.headers },
            error,
            {
              attempts: 1,
              inputIndex: input.inputIndex,
              origin: { topic: m.topic, partition: m.partition, offset: m.offset },
            },
          );
          continue;
        }
        records.push({ key: m.key, value, timestamp: m.timestamp, headers: m.headers });
      }
      this.metrics.bytesIn += bytes;
      this.metrics.recordsIn += records.length;
      const valid = this.validator.filter(records, input.inputIndex, this.dlq);
      if (valid.length === 0) continue;
      if (this.chain !== undefined) {
        append(outputs, this.chain.processBatch(input.inputIndex, channel, valid));
      } else if (this.sink !== undefined) {
        const sink = this.sink;
        const started = performance.now();
        await withRetries(this.stage.id, 'sink.write', this.retry, this.metrics, () =>
          sink.write(valid),
        );
        this.metrics.backpressureMs += performance.now() - started;
        this.metrics.recordsOut += valid.length;
        this.metrics.observeWritten(valid);
      }
    }
    return outputs;
  }

  private control(channel: string, m: ConsumedMessage): void {
    if (m.headers?.[CONTROL_HEADER] !== 'end') return;
    let marker: EndMarker;
    try {
      marker = JSON.parse(m.headers[END_HEADER] ?? '') as EndMarker;
    } catch {
      marker = { stage: '?', covered: ['?'], total: 1 };
    }
    // A local run owns every stage, so a marker from another run is a leftover of an earlier
    // run on a persistent buffer: the data after it belongs to this run.
    if (this.ctx.mode === 'local' && marker.run !== this.ctx.runId) return;
    let end = this.ends.get(channel);
    if (end === undefined) {
      end = { covered: new Set(), total: marker.total, firstMarker: m.offset };
      this.ends.set(channel, end);
    }
    for (const c of marker.covered) end.covered.add(c);
  }

  /** Sends a batch's outputs and dead letters (in one transaction when exactly-once). */
  private async emit(outputs: readonly StreamRecord[], consumed = false): Promise<void> {
    if (this.exactlyOnce) {
      const encoded = this.encode(outputs);
      // Offsets must advance even when a batch emits nothing (a filter dropping everything).
      if (encoded.length === 0 && this.dlq.size === 0 && !consumed) return;
      const tx = await this.producer!.beginTransaction!();
      try {
        if (encoded.length > 0) await tx.send(this.topic, encoded);
        if (this.dlq.size > 0) await tx.send(this.dlq.topic, this.dlq.drain());
        await tx.sendOffsets(this.group, this.commitPositions());
        await this.saveCheckpoint(this.positionsRecord(), this.stateRecord());
        await tx.commit();
      } catch (error) {
        await tx.abort().catch(() => undefined);
        throw error;
      }
      return;
    }
    if (outputs.length > 0) await this.send(this.topic, this.encode(outputs));
    await this.sendDeadLetters();
  }

  /** Consumer positions, never past the first end marker of a partition. */
  private commitPositions(): TopicPartitionOffset[] {
    return this.consumer!.positions().map((p) => {
      const end = this.ends.get(channelOf(p.topic, p.partition));
      return end === undefined ? p : { ...p, offset: end.firstMarker };
    });
  }

  private positionsRecord(): Record<string, JsonValue> {
    return Object.fromEntries(
      this.commitPositions().map((p) => [channelOf(p.topic, p.partition), p.offset]),
    );
  }

  private stateRecord(): Record<string, JsonValue> {
    return this.chain === undefined ? {} : { [this.stage.id]: this.chain.snapshotState() };
  }

  /** Outputs are already sent; make sink writes durable, record state, then commit positions. */
  private async checkpoint(): Promise<void> {
    await this.sendDeadLetters();
    const positions = this.commitPositions();
    const state = this.stateRecord();
    if (this.sink !== undefined) {
      const sink = this.sink;
      const started = performance.now();
      await withRetries(this.stage.id, 'sink.flush', this.retry, this.metrics, () => sink.flush());
      this.metrics.backpressureMs += performance.now() - started;
    }
    await this.saveCheckpoint(
      Object.fromEntries(positions.map((p) => [channelOf(p.topic, p.partition), p.offset])),
      state,
    );
    // Exactly-once: offsets already went through each batch's transaction.
    if (positions.length > 0 && !this.exactlyOnce) {
      const consumer = this.consumer!;
      await withRetries(this.stage.id, 'buffer commit', this.retry, this.metrics, () =>
        consumer.commit(positions),
      );
    }
  }

  async close(): Promise<void> {
    await this.consumer?.close().catch(() => undefined);
    await this.sink
      ?.close()
      .catch((error: unknown) => this.ctx.logger.warn('sink.close failed', { error }));
    await this.producer?.close();
  }
}

/** push(...items) overflows the stack on very large arrays; a loop does not. */
function append<T>(target: T[], items: readonly T[]): void {
  for (let i = 0; i < items.length; i++) target.push(items[i]!);
}
