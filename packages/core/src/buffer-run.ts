import type {
  BufferConsumer,
  BufferMessage,
  BufferProducer,
  ConsumedMessage,
  TopicPartition,
  TopicPartitionOffset,
} from './buffer.js';
import { BufferOutput, deliverConsumed, SinkPositions, type BufferInput } from './buffer-edge.js';
import { CheckpointCoordinator } from './checkpoint-coordinator.js';
import { TopicDeadLetters } from './dead-letter-destination.js';
import { edgesInto, namedOutputsOf, namedOutputTopic } from './named-outputs.js';
import { channelOf, endMarkers, EndOfStreamTracker } from './end-of-stream.js';
import { EventLoopYield } from './event-loop-yield.js';
import type { JsonValue, StreamRecord } from './record.js';
import { jitteredBackoffMs, withRetries } from './retry-policy.js';
import { abortableDelay } from './abortable-delay.js';
import type { RuntimeContext } from './runtime-context.js';
import type { Sink } from './sink.js';
import { RunOptionsError } from './run-errors.js';
import { StageTask } from './stage-task.js';
import { PartitionStateShards } from './state-shards.js';
import { TransactionRevokedError, type StateWrite } from './state-store.js';
import { isCodefeedrError, isRetryable } from './errors.js';
import { randomUUID } from 'node:crypto';
import { BroadcastReadAhead } from './broadcast-state.js';

/**
 * `local` mode (every stage) and `worker` mode (one stage): each stage's task reads its
 * parents' topics and writes its own, through the shared buffer (Flink's RecordWriterOutput).
 * Each stage is its own checkpoint unit.
 */
export async function runOnBuffer(ctx: RuntimeContext, stageIds: readonly string[]): Promise<void> {
  const { def } = ctx;
  const byId = new Map(def.stages.map((s) => [s.id, s]));
  // Topics the run needs: outputs of the stages run and of their parents (so a worker may
  // start before its upstream).
  const topics = new Map<string, string>(); // topic -> the stage whose options it takes
  const addTopics = (id: string) => {
    const stage = byId.get(id)!;
    if (stage.kind === 'output') return;
    topics.set(ctx.topicOf(id), id);
    for (const output of namedOutputsOf(stage))
      topics.set(namedOutputTopic(ctx.topicOf(id), output), id);
  };
  for (const id of stageIds) {
    addTopics(id);
    for (const parent of def.parents.get(id) ?? []) addTopics(parent);
  }
  for (const [name, id] of topics) {
    const options = ctx.stageOptions(id);
    await ctx.buffer.admin.ensureTopic({
      name,
      partitions: options.partitions ?? 1,
      ...(options.bufferConfig === undefined ? {} : { config: options.bufferConfig }),
    });
  }
  if (ctx.deadLetters instanceof TopicDeadLetters)
    for (const id of stageIds) await ctx.deadLetters.ensure(id);
  const units = stageIds.map((id) => {
    const task = new StageTask(ctx, byId.get(id)!);
    return task.stage.kind === 'input' ? new InputUnit(ctx, task) : new ConsumerUnit(ctx, task);
  });
  try {
    // Every consumer joins its group before any producer sends, so no group misses records.
    for (const unit of units) await unit.prepare();
    await Promise.all(units.map((u) => u.run().catch((error: unknown) => ctx.fail(error))));
  } finally {
    for (const unit of units.reverse()) await unit.close();
  }
}

abstract class BufferUnit {
  protected readonly topic: string;
  protected readonly checkpoints: CheckpointCoordinator;
  protected producer: BufferProducer | undefined;
  protected readonly pacing = new EventLoopYield();

  constructor(
    protected readonly ctx: RuntimeContext,
    protected readonly task: StageTask,
  ) {
    this.topic = ctx.topicOf(task.id);
    this.checkpoints = new CheckpointCoordinator(
      ctx.store,
      ctx.def.name,
      task.id,
      ctx.instance,
      ctx.checkpointIntervalMs,
      ctx.logger,
    );
  }

  abstract prepare(): Promise<void>;
  abstract run(): Promise<void>;

  protected get clientId(): string {
    return `${this.ctx.def.name}.${this.task.id}.${this.ctx.instance}`;
  }

  /** Sends to a topic; the time a full buffer holds us back counts as backpressure. */
  protected async send(topic: string, messages: readonly BufferMessage[]): Promise<void> {
    if (messages.length === 0) return;
    const producer = this.producer!;
    const started = performance.now();
    await withRetries(
      this.task.id,
      `buffer send to ${topic}`,
      this.task.retry,
      this.task.metrics,
      () => producer.send(topic, messages),
    );
    this.task.metrics.backpressureMs += performance.now() - started;
  }

  /** The topics of the stage's named outputs, in declared order. */
  protected get namedTopics(): string[] {
    return namedOutputsOf(this.task.stage).map((output) => namedOutputTopic(this.topic, output));
  }

  /** Ends the stage's topic and those of its named outputs. */
  protected async sendEndMarkers(covered: readonly string[], total: number): Promise<void> {
    for (const topic of [this.topic, ...this.namedTopics]) {
      const partitions = (await this.ctx.buffer.admin.describeTopic(topic))?.partitions ?? 1;
      await this.send(topic, endMarkers(this.task.id, covered, total, partitions, this.ctx.runId));
    }
  }

  async close(): Promise<void> {
    await this.task.close();
    await this.producer?.close();
  }
}

/** An input stage: source → serde → its topic. Commits the source after sends resolve. */
class InputUnit extends BufferUnit {
  private output!: BufferOutput;

  async prepare(): Promise<void> {
    await this.task.open();
    this.output = new BufferOutput(this.task, this.ctx.serdeOf(this.task.id));
    this.task.output = this.output;
    const cp = await this.checkpoints.load();
    await this.task.restore(cp?.positions.source, undefined);
    this.producer = await this.ctx.buffer.producer({ clientId: this.clientId });
  }

  async run(): Promise<void> {
    while (!this.ctx.signal.aborted) {
      let batch: StreamRecord[] | null;
      try {
        batch = await this.task.readBatch();
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
        this.task.onSourceBatch(batch);
        await this.send(this.topic, this.output.take());
        await this.task.sendDeadLetters();
        this.task.metrics.observeBatch(performance.now() - started);
      }
      if (this.checkpoints.due()) await this.checkpoint();
      await this.pacing.maybeYield();
    }
    if (!this.ctx.failed()) await this.checkpoint();
  }

  /** Everything polled so far has been sent (sends resolve durably): record, then commit the source. */
  private async checkpoint(): Promise<void> {
    const position = this.task.position()!;
    await this.checkpoints.save(
      { source: position },
      {},
      { [this.task.id]: this.task.metrics.watermark },
    );
    await this.task.commitSource(position);
  }
}

/** A transform or output stage: its parents' topics → decode → chain or sink → (its topic). */
class ConsumerUnit extends BufferUnit {
  private consumer: BufferConsumer | undefined;
  private output: BufferOutput | undefined;
  private readonly inputs = new Map<string, BufferInput>();
  private readonly ends: EndOfStreamTracker;
  private totalChannels = 0;
  private lastTick = Date.now();
  /** The per-input channels last given to the task (see syncAssignment). */
  private assignedChannels: string | undefined;
  private readonly exactlyOnce: boolean;
  private readonly group: string;
  /** For a sink that stores its input positions (Sink.positions): what it stored. */
  private sinkPositions: SinkPositions | undefined;
  /** A transform's keyed state per input partition, with a state store (state-shards.ts). */
  private shards: PartitionStateShards | undefined;
  /** The partitions last given to `shards`. */
  private shardAssignment: string | undefined;
  /** Exactly-once: transactions aborted in a row by a transient failure (see fencedRecovers). */
  private transientAborts = 0;
  /** Exactly-once: fences in a row since the last successful batch (see fencedRecovers). */
  private fencesInARow = 0;
  /**
   * The topics of broadcast inputs (OperatorChain.broadcastInputs), which this worker reads
   * whole with a consumer of its own, from their beginning, in a group no other worker joins.
   */
  private broadcastTopics: string[] = [];
  private broadcastConsumer: BufferConsumer | undefined;
  /** True once the broadcast consumer has read what its inputs held (see bootstrapBroadcast). */
  private broadcastRead = false;

  constructor(ctx: RuntimeContext, task: StageTask) {
    super(ctx, task);
    this.group = ctx.groupOf(task.id);
    this.ends = new EndOfStreamTracker(ctx.runId, ctx.mode === 'local');
    const wanted = ctx.stageOptions(task.id).guarantee === 'exactly-once';
    this.exactlyOnce =
      wanted && task.stage.kind === 'transform' && ctx.buffer.capabilities.transactions;
    if (wanted && !this.exactlyOnce) {
      ctx.logger.warn(
        'exactly-once needs a transform stage on a buffer with transactions; running at-least-once',
        { stage: task.id, buffer: ctx.buffer.kind },
      );
    }
  }

  async prepare(): Promise<void> {
    const topics: string[] = [];
    for (const { from, output, inputIndex } of edgesInto(this.ctx.def.edges, this.task.id)) {
      const topic = namedOutputTopic(this.ctx.topicOf(from), output);
      topics.push(topic);
      this.inputs.set(topic, { inputIndex, serde: this.ctx.serdeOf(from) });
      this.totalChannels += (await this.ctx.buffer.admin.describeTopic(topic))?.partitions ?? 1;
    }
    await this.task.open();
    const broadcastInputs = new Set(this.task.chain?.broadcastInputs ?? []);
    this.broadcastTopics = topics.filter((t) =>
      broadcastInputs.has(this.inputs.get(t)!.inputIndex),
    );
    const mainTopics = topics.filter((t) => !this.broadcastTopics.includes(t));
    if (this.task.stage.kind === 'transform') {
      this.output = new BufferOutput(this.task, this.ctx.serdeOf(this.task.id));
      this.task.output = this.output;
      this.producer = await this.openProducer();
    }
    const cp = await this.checkpoints.load();
    // With shards, the worker's own checkpoint holds only keys no partition covers.
    await this.task.restore(undefined, cp?.state[this.task.id]);
    const chain = this.task.chain;
    const store = this.ctx.stateStore;
    // Exactly-once needs state in the same transaction as outputs and offsets: only a store
    // with transactions (Kafka's) can shard the state of such a stage.
    if (
      chain?.keyed === true &&
      store !== undefined &&
      this.exactlyOnce &&
      store.transactions === undefined &&
      this.ctx.stateStoreChosen
    ) {
      throw new RunOptionsError(
        `Stage "${this.task.id}" runs exactly-once, which needs its state written in the same transaction as its outputs and offsets; the ${store.kind} state store cannot join the buffer's transactions. Use the Kafka buffer's own store (stateStore: 'buffer', --state-store buffer), run the stage at-least-once (its state still counts each record once), or leave stateStore unset (its state then stays in this worker's checkpoint and does not follow a partition).`,
        { stage: this.task.id, stateStore: store.kind },
      );
    }
    if (
      chain?.keyed === true &&
      store !== undefined &&
      (!this.exactlyOnce || store.transactions !== undefined)
    ) {
      const partitions =
        (await this.ctx.buffer.admin.describeTopic(mainTopics[0]!))?.partitions ?? 1;
      this.shards = new PartitionStateShards(
        store,
        this.ctx.def.name,
        this.task.id,
        partitions,
        chain,
        this.ctx.logger,
        this.exactlyOnce ? this.clientId : undefined,
        (operation, call) =>
          withRetries(this.task.id, operation, this.task.retry, this.task.metrics, call),
        new Set(this.broadcastTopics),
      );
    }
    const start = this.ctx.stageOptions(this.task.id).start;
    this.consumer = await this.ctx.buffer.consumer({
      group: this.group,
      topics: mainTopics,
      ...(start === undefined ? {} : { start }),
      maxBufferedRecords: 4 * this.ctx.batchSize,
    });
    if (this.broadcastTopics.length > 0) await this.openBroadcastConsumer();
  }

  /**
   * A consumer of the broadcast inputs in a group of its own (a fresh one each time, so it
   * starts at the beginning and no other worker shares its partitions): the broadcast state
   * is rebuilt from everything they hold, as a Kafka Streams global table is restored from
   * its topic. Its commits only tidy the buffer (Redis keeps unacknowledged entries).
   */
  private async openBroadcastConsumer(): Promise<void> {
    await this.broadcastConsumer?.close().catch(() => undefined);
    this.broadcastRead = false;
    this.broadcastConsumer = await this.ctx.buffer.consumer({
      group: `${this.group}.broadcast.${this.ctx.instance}.${randomUUID().slice(0, 8)}`,
      topics: this.broadcastTopics,
      start: 'earliest',
      maxBufferedRecords: 4 * this.ctx.batchSize,
    });
  }

  /**
   * Before the first record of the other inputs (at start, and after a fenced worker rebuilt
   * its chain): reads the broadcast inputs ahead, once assigned, by BroadcastReadAhead's rule.
   */
  private async bootstrapBroadcast(): Promise<void> {
    const consumer = this.broadcastConsumer!;
    const readAhead = new BroadcastReadAhead();
    while (!this.ctx.signal.aborted) {
      // Channels first: the broadcast partitions count for event time before their records.
      const delivered = await this.pollBroadcast(this.ctx.pollTimeoutMs, () =>
        this.syncAssignment(),
      );
      const assigned = consumer.assignment();
      if (assigned.length > 0 && readAhead.done(delivered, this.allEnded(assigned))) break;
    }
    this.broadcastRead = true;
    this.ctx.logger.info('read the broadcast inputs', {
      stage: this.task.id,
      topics: this.broadcastTopics,
    });
  }

  /**
   * One poll of the broadcast inputs, delivered to the task (after `beforeDelivery`); returns
   * how many messages came. Between polls of the other inputs it waits for nothing.
   */
  private async pollBroadcast(maxWaitMs = 0, beforeDelivery?: () => void): Promise<number> {
    const consumer = this.broadcastConsumer;
    if (consumer === undefined) return 0;
    const { task } = this;
    const messages = await withRetries(task.id, 'broadcast poll', task.retry, task.metrics, () =>
      consumer.poll(task.batchSize, maxWaitMs, this.ctx.signal),
    );
    beforeDelivery?.();
    if (messages.length > 0) deliverConsumed(task, this.inputs, this.ends, messages);
    return messages.length;
  }

  async run(): Promise<void> {
    const consumer = this.consumer!;
    const { task } = this;
    while (!this.ctx.signal.aborted) {
      if (this.broadcastConsumer !== undefined && !this.broadcastRead) {
        await this.bootstrapBroadcast();
        continue;
      }
      let messages: ConsumedMessage[];
      try {
        messages = await withRetries(task.id, 'buffer poll', task.retry, task.metrics, () =>
          consumer.poll(task.batchSize, this.ctx.pollTimeoutMs, this.ctx.signal),
        );
      } catch (error) {
        if (this.ctx.signal.aborted && !this.ctx.failed()) break;
        throw error;
      }
      // Where this poll leaves each partition, read before anything awaits: a rebalance that
      // revokes a partition makes the consumer forget its position.
      const polled = consumer.positions();
      const started = performance.now();
      // A partition that came loads its state before any of its records is processed.
      if (this.shards !== undefined) {
        const shards = this.shards;
        const synced = await this.fencedRecovers(async () => {
          messages = await this.syncShards(shards, messages);
        });
        if (!synced) continue;
      }
      // Before any sub-batch of this poll: a partition assigned but not (yet) delivering must
      // hold event time back, or the first partition's records make the others' late.
      const reassigned = this.syncAssignment();
      if (task.sink?.positions !== undefined) await this.readSinkPositions(task.sink, reassigned);
      await this.pollBroadcast();
      if (messages.length > 0)
        deliverConsumed(
          task,
          this.inputs,
          this.ends,
          messages,
          this.sinkPositions ?? this.shards?.skip,
        );
      this.shards?.observe(polled);
      if (task.chain !== undefined && Date.now() - this.lastTick >= this.ctx.tickIntervalMs) {
        this.lastTick = Date.now();
        task.onTick(this.ctx.clock());
      }
      if (!(await this.fencedRecovers(() => this.emit(messages.length > 0, true)))) continue;
      this.transientAborts = 0;
      this.fencesInARow = 0;
      if (messages.length > 0) task.metrics.observeBatch(performance.now() - started);
      task.metrics.consumerLag = consumer.lag?.() ?? null;

      const assigned = consumer.assignment();
      const broadcastAssigned = this.broadcastConsumer?.assignment() ?? [];
      const finished =
        assigned.length > 0 &&
        (this.broadcastConsumer === undefined || broadcastAssigned.length > 0) &&
        this.allEnded([...assigned, ...broadcastAssigned]);
      if (finished) {
        task.finish();
        await this.emit();
        if (task.stage.kind === 'transform')
          await this.sendEndMarkers(this.ends.endedChannels(), this.totalChannels);
        await this.checkpoint();
        return;
      }
      // A save fenced by the partition's new owner (at-least-once) is recovered as a fenced
      // transaction is: the state of every partition reloaded, the consumer back at its commits.
      if (this.checkpoints.due() && !(await this.fencedRecovers(() => this.checkpoint()))) continue;
      await this.pacing.maybeYield();
    }
    if (!this.ctx.failed()) await this.checkpoint();
  }

  /**
   * The stage's producer. Exactly-once, its transactional id is initialised at once: that
   * aborts what a predecessor with the same id (this worker before a crash) left open, or
   * waits for the commit it began, so state and positions read after this are final.
   */
  private async openProducer(): Promise<BufferProducer> {
    const producer = await this.ctx.buffer.producer({
      clientId: this.clientId,
      ...(this.exactlyOnce ? { transactional: true } : {}),
    });
    if (this.exactlyOnce) await (await producer.beginTransaction!()).abort();
    return producer;
  }

  /**
   * Tells the task which partitions feed each input, when that changed: the consumer's
   * assignment, less partitions that ended (like a finished split, they stop counting).
   * True when that changed (the first call included).
   */
  private syncAssignment(): boolean {
    const assignment = [
      ...this.consumer!.assignment(),
      ...(this.broadcastConsumer?.assignment() ?? []),
    ];
    // Nothing assigned after something was is a rebalance under way (see syncShards): the
    // channels stay until the next assignment says what went. Dropped now, a partition kept
    // through the rebalance would count from -inf again, and one with no further records would
    // hold event time there for good.
    if (assignment.length === 0 && this.assignedChannels !== undefined) return false;
    const perInput = new Map<number, string[]>();
    for (const input of this.inputs.values()) perInput.set(input.inputIndex, []);
    for (const tp of assignment) {
      const input = this.inputs.get(tp.topic);
      const channel = channelOf(tp.topic, tp.partition);
      if (input === undefined || this.ends.isEnded(channel)) continue;
      perInput.get(input.inputIndex)!.push(channel);
    }
    for (const channels of perInput.values()) channels.sort();
    const signature = JSON.stringify([...perInput]);
    if (signature === this.assignedChannels) return false;
    this.assignedChannels = signature;
    for (const [inputIndex, channels] of perInput) this.task.assignChannels(inputIndex, channels);
    return true;
  }

  /**
   * Gives the shards the consumer's assignment when it changed (loading the state of
   * partitions that came, forgetting those that went), and keeps only messages of partitions
   * still assigned: a revoked partition's records are its new owner's to process.
   */
  private async syncShards(
    shards: PartitionStateShards,
    messages: ConsumedMessage[],
  ): Promise<ConsumedMessage[]> {
    const assignment = this.consumer!.assignment();
    // Nothing assigned is a rebalance under way (Kafka's eager protocol revokes everything,
    // then gives most of it back): keep the shards and this poll's records until the next
    // assignment says what went. Dropping them now would lose what was processed since the
    // last checkpoint of every partition this worker keeps.
    if (assignment.length === 0) return messages;
    const assigned = new Set(assignment.map((tp) => tp.partition));
    const signature = partitionsSignature(assignment);
    if (signature !== this.shardAssignment) {
      const claims = await shards.reassign(assigned);
      if (claims.length > 0) await this.commitClaims(claims);
      this.shardAssignment = signature;
    }
    return messages.every((m) => assigned.has(m.partition))
      ? messages
      : messages.filter((m) => assigned.has(m.partition));
  }

  /** True when the shards hold exactly the consumer's assigned partitions (see syncShards). */
  private shardsMatchAssignment(): boolean {
    const assignment = this.consumer!.assignment();
    return assignment.length > 0 && partitionsSignature(assignment) === this.shardAssignment;
  }

  /** True when every partition listed has ended (end markers from all its upstream workers). */
  private allEnded(partitions: readonly TopicPartition[]): boolean {
    return partitions.every((tp) => this.ends.isEnded(channelOf(tp.topic, tp.partition)));
  }

  /** Exactly-once: the partitions just loaded are this worker's, in the store (StateTransactions). */
  private async commitClaims(claims: StateWrite[]): Promise<void> {
    const tx = await this.producer!.beginTransaction!();
    try {
      for (const claim of claims) await tx.send(claim.topic, claim.messages);
      await tx.commit();
    } catch (error) {
      await tx.abort().catch(() => undefined);
      throw error;
    }
  }

  /**
   * Runs `step` and returns true; when another worker fenced this one's transactions (it took
   * over a partition whose state this worker wrote last), recovers and returns false: what
   * the aborted transaction held is redone from the committed state and offsets.
   */
  private async fencedRecovers(step: () => Promise<void>): Promise<boolean> {
    try {
      await step();
      return true;
    } catch (error) {
      const consumer = this.consumer!;
      const chain = this.task.chain;
      const fenced = isFenced(error);
      const revoked = error instanceof TransactionRevokedError;
      // At-least-once, a checkpoint's save found another owner of a partition (the group moved
      // it while the save was under way): what this worker holds of it is not saved, and the
      // new owner goes on from the stored state and the committed offsets.
      const stateFenced = !this.exactlyOnce && isFenced(error, 'STATE_FENCED');
      // A transient failure inside a transaction (the coordinator still finishing the last
      // commit, a leader moving) aborted it: redone from the committed state as a fence is,
      // a bounded number of times in a row.
      const transient =
        !fenced && !revoked && isRetryable(error) && this.transientAborts < this.task.retry.retries;
      if (
        this.shards === undefined ||
        (!this.exactlyOnce && !stateFenced) ||
        consumer.rewind === undefined ||
        chain?.reset === undefined ||
        !(fenced || revoked || transient || stateFenced)
      )
        throw error;
      if (transient) this.transientAborts++;
      if (fenced) this.fencesInARow++;
      // Workers that took partitions from each other in a ring fence each other's claims
      // before they commit, and would go on doing so if each reloaded at once: a random wait,
      // growing with the fences in a row, lets one claim commit first (Ethernet's way out).
      const waitMs = fenced ? jitteredBackoffMs(this.task.retry, this.fencesInARow) : 0;
      this.ctx.logger.warn(
        stateFenced
          ? 'another worker took over a partition while this one saved its state; reloading the state of every partition and going on from the committed positions'
          : fenced
            ? 'another worker took over a partition this one wrote last and fenced its transactions; reloading the state of every partition and going on from the committed positions'
            : revoked
              ? 'a rebalance began before the transaction committed; aborted it, reloading the state of every partition and going on from the committed positions'
              : 'a transaction failed and was aborted; reloading the state of every partition and going on from the committed positions',
        {
          stage: this.task.id,
          partitions: this.shards.owned(),
          ...(transient ? { attempt: this.transientAborts, error } : {}),
          ...(fenced ? { inARow: this.fencesInARow, waitMs } : {}),
        },
      );
      // Everything since the last commit is redone: outputs and dead letters not yet sent go.
      this.output?.take();
      this.output?.takeNamed();
      this.task.dlq.drain();
      await this.producer?.close().catch(() => undefined);
      this.producer = await this.openProducer();
      await this.shards.reassign(new Set());
      await abortableDelay(waitMs, this.ctx.signal);
      // From here as a restarted worker: a new chain (what the aborted batches fired, and the
      // watermarks they advanced, go too) with this worker's own checkpoint, then each
      // partition's committed state as the next poll reloads it, and channels assigned anew.
      chain.reset();
      const cp = await this.checkpoints.load();
      await this.task.restore(undefined, cp?.state[this.task.id]);
      this.shardAssignment = undefined;
      this.assignedChannels = undefined;
      await consumer.rewind();
      // The new chain has no broadcast state: read the broadcast inputs again from the start.
      if (this.broadcastConsumer !== undefined) await this.openBroadcastConsumer();
      return false;
    }
  }

  /**
   * A sink that stores its positions with its records decides where each partition resumes:
   * read them at start and whenever the assignment changes (another worker may have written
   * a partition this one now owns), and note where this poll leaves each partition.
   */
  private async readSinkPositions(sink: Sink<unknown>, reassigned: boolean): Promise<void> {
    if (reassigned) {
      const stored = await withRetries(
        this.task.id,
        'sink.positions',
        this.task.retry,
        this.task.metrics,
        () => sink.positions!(),
      );
      // undefined: this sink does not store positions (a setting of it); write as usual.
      this.sinkPositions = stored === undefined ? undefined : new SinkPositions(stored);
    }
    if (this.sinkPositions !== undefined)
      this.sinkPositions.after = new Map(
        this.consumer!.positions().map((p) => [channelOf(p.topic, p.partition), p.offset]),
      );
  }

  /**
   * Sends a batch's outputs and dead letters (in one transaction when exactly-once).
   * `revocable`: the caller recovers from a TransactionRevokedError (fencedRecovers).
   */
  private async emit(consumed = false, revocable = false): Promise<void> {
    const { task } = this;
    await task.writesDone();
    const encoded = this.output?.take() ?? [];
    const named = this.output?.takeNamed() ?? [];
    if (!this.exactlyOnce) {
      await this.send(this.topic, encoded);
      for (const [output, messages] of named)
        await this.send(namedOutputTopic(this.topic, output), messages);
      await task.sendDeadLetters();
      return;
    }
    // Offsets must advance even when a batch emits nothing (a filter dropping everything).
    if (encoded.length === 0 && named.length === 0 && task.dlq.size === 0 && !consumed) return;
    const deadLetters = this.ctx.deadLetters;
    const tx = await this.producer!.beginTransaction!();
    try {
      if (encoded.length > 0) await tx.send(this.topic, encoded);
      for (const [output, messages] of named)
        await tx.send(namedOutputTopic(this.topic, output), messages);
      if (task.dlq.size > 0) {
        if (deadLetters instanceof TopicDeadLetters) {
          await deadLetters.ensure(task.id);
          await tx.send(deadLetters.topicOf(task.id), task.dlq.drain());
        } else await task.sendDeadLetters(); // a file: written before the commit, at-least-once
      }
      const positions = this.positionsRecord();
      // The partitions' state, with the positions it reflects, commits with the offsets.
      const shards = await this.shards?.prepare(this.shardPositions());
      for (const write of shards?.writes ?? []) await tx.send(write.topic, write.messages);
      await tx.sendOffsets(this.group, this.commitPositions());
      await this.checkpoints.save(positions, this.stateRecord(), this.watermarks());
      // A rebalance that began during the batch may be handing its partitions to another
      // worker, whose load would not see this commit: redone by their owner instead.
      if (revocable && this.consumer!.assignment().length === 0)
        throw new TransactionRevokedError(task.id);
      await tx.commit();
      shards?.committed();
    } catch (error) {
      await tx.abort().catch(() => undefined);
      throw error;
    }
  }

  /** Consumer positions, never past the first end marker of a partition. */
  private commitPositions(): TopicPartitionOffset[] {
    return this.ends.clamp(this.consumer!.positions());
  }

  private positionsRecord(): Record<string, string> {
    return Object.fromEntries(
      this.commitPositions().map((p) => [channelOf(p.topic, p.partition), p.offset]),
    );
  }

  /** What each owned partition's state reflects, never past the first end marker (as commits). */
  private shardPositions(): Record<string, string> {
    return Object.fromEntries(
      this.ends
        .clamp(this.shards!.reflectedPositions())
        .map((p) => [channelOf(p.topic, p.partition), p.offset]),
    );
  }

  private stateRecord(): Record<string, JsonValue> {
    // Broadcast state stays out: a restarted worker rebuilds it from the broadcast inputs.
    const state =
      this.shards !== undefined ? this.shards.foreignState() : this.task.snapshotState(false);
    return state === undefined ? {} : { [this.task.id]: state };
  }

  private watermarks(): Record<string, number | null> {
    return { [this.task.id]: this.task.metrics.watermark };
  }

  /** Outputs are already sent; make sink writes durable, record state, then commit positions. */
  private async checkpoint(): Promise<void> {
    const { task } = this;
    // Mid-rebalance (see syncShards) which shards this worker still owns is unknown: saving
    // them could be fenced, and committing without them would put offsets past the state.
    // So is an assignment the shards have not been given yet (a buffer that moves partitions
    // at once, without a revocation first): the next poll syncs them, the next checkpoint saves.
    if (this.shards !== undefined && !this.shardsMatchAssignment()) return;
    await task.sendDeadLetters();
    const positions = this.commitPositions();
    const state = this.stateRecord();
    await task.flush();
    await task.sendDeadLetters();
    const byChannel = Object.fromEntries(
      positions.map((p) => [channelOf(p.topic, p.partition), p.offset]),
    );
    await this.checkpoints.save(byChannel, state, this.watermarks());
    // Each partition's state with the positions it reflects, before those are committed
    // (exactly-once: it went in each batch's transaction).
    if (!this.exactlyOnce) await this.shards?.save(this.shardPositions());
    // Exactly-once: offsets already went through each batch's transaction.
    if (positions.length > 0 && !this.exactlyOnce) {
      const consumer = this.consumer!;
      await withRetries(task.id, 'buffer commit', task.retry, task.metrics, () =>
        consumer.commit(positions),
      );
    }
    // Never read back (each start reads the broadcast inputs from the beginning in a new
    // group): it only lets the buffer drop what this group has acknowledged.
    await this.broadcastConsumer
      ?.commit(this.ends.clamp(this.broadcastConsumer.positions()))
      .catch((error: unknown) =>
        this.ctx.logger.warn('broadcast consumer commit failed', { stage: task.id, error }),
      );
  }

  override async close(): Promise<void> {
    await this.consumer?.close().catch(() => undefined);
    await this.broadcastConsumer?.close().catch(() => undefined);
    await super.close();
  }
}

/** The partition numbers of an assignment, sorted and joined: what the shards were given. */
function partitionsSignature(assignment: readonly TopicPartition[]): string {
  return [...new Set(assignment.map((tp) => tp.partition))].sort((a, b) => a - b).join(',');
}

/**
 * A fenced transaction (or `code`: a fenced state save), as thrown or as the cause of a
 * failure after retries (withRetries).
 */
function isFenced(error: unknown, code = 'TRANSACTION_FENCED'): boolean {
  if (!isCodefeedrError(error)) return false;
  if (error.code === code) return true;
  return error.code === 'STAGE_FAILED' && isFenced(error.cause, code);
}
