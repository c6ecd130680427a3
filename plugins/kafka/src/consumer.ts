import type {
  BufferConsumer,
  ConsumedMessage,
  ConsumerOptions,
  StartPosition,
  TopicPartition,
  TopicPartitionOffset,
} from '@codefeedr/core';
import type { Admin, Consumer, EachBatchPayload, Kafka, KafkaMessage } from 'kafkajs';
import { EagerAssignment, tpKey } from './eager-assignment.js';
import { KafkaConsumerCrashedError } from './errors.js';
import { QueueBounds } from './queue-bounds.js';

export interface KafkaConsumerSettings {
  sessionTimeoutMs: number;
  heartbeatIntervalMs: number;
  rebalanceTimeoutMs: number;
  maxWaitTimeMs: number;
  maxBytesPerPartition: number;
  maxBufferedRecords: number;
  /** Bytes (values and keys) of queued records at which fetching pauses, as `maxBufferedRecords` does. */
  maxBufferedBytes: number;
  readUncommitted: boolean;
  /** How long `open()` waits for the first group assignment. */
  joinTimeoutMs: number;
}

/** Messages of one partition in offset order, as one fetch delivered them. */
interface Chunk {
  readonly key: string;
  readonly topic: string;
  readonly partition: number;
  readonly messages: ConsumedMessage[];
  /** Index of the first message not yet returned by poll. */
  next: number;
}

// Commit failures that a rejoin of the group cures; any other error is reported.
const REBALANCE_ERRORS = new Set([
  'REBALANCE_IN_PROGRESS',
  'ILLEGAL_GENERATION',
  'UNKNOWN_MEMBER_ID',
  'NOT_COORDINATOR_FOR_GROUP',
  'COORDINATOR_NOT_AVAILABLE',
]);

/**
 * kafkajs's answer to pause, resume or seek while it restarts a crashed consumer (it has no
 * group then): not a failure of this consumer. The rejoin that follows starts every partition
 * from its committed offset, and `onJoin` applies the backpressure pause again.
 */
function isRestarting(error: unknown): boolean {
  const e = error as { name?: unknown; message?: unknown } | null;
  return (
    e?.name === 'KafkaJSNonRetriableError' &&
    typeof e.message === 'string' &&
    e.message.startsWith('Consumer group was not initialized')
  );
}

/**
 * Bridges kafkajs's push model (`eachBatch`) to the pull `poll()` contract: fetched batches
 * land in a bounded queue; when it is full every assigned partition is paused and resumed
 * once `poll` has drained it to half. Offsets are tracked per partition here (kafkajs's
 * auto-commit is off) and committed explicitly. On a rebalance, queued records of revoked
 * partitions are dropped (their new owner reads them from the committed offset) and kept
 * partitions continue where this consumer left off.
 */
export class KafkaBufferConsumer implements BufferConsumer {
  private readonly queue: Chunk[] = [];
  private queued = 0;
  /** Bytes of the records queued and not yet polled (values and keys). */
  private queuedBytes = 0;
  /** Next offset after the last record returned by poll, per assigned partition. */
  private readonly polledPositions = new Map<string, TopicPartitionOffset>();
  /** High watermark per partition as of its last fetch, for `lag()`. */
  private readonly highWatermarks = new Map<string, bigint>();
  /** Next offset after the last record put in the queue (dedupes kafkajs refetches). */
  private readonly enqueuedNext = new Map<string, bigint>();
  /** Partitions held back until their start offset (timestamp start) is resolved. */
  private readonly awaitingStart = new Set<string>();
  private pausedForBackpressure = false;
  /** What this consumer owns; nothing between the start of a rebalance and its assignment. */
  private readonly owned: EagerAssignment;
  private readonly bounds: QueueBounds;
  private wake: (() => void) | undefined;
  private failure: Error | undefined;
  /** Start-offset lookups in flight (`latest`, timestamp); `open()` waits for the first ones. */
  private startResolutions: Promise<void>[] = [];
  private opened = false;
  private closed = false;
  private readonly consumer: Consumer;

  constructor(
    private readonly kafka: Kafka,
    private readonly admin: () => Promise<Admin>,
    private readonly options: ConsumerOptions,
    private readonly settings: KafkaConsumerSettings,
  ) {
    this.owned = new EagerAssignment(options.onAssignmentChange);
    this.bounds = new QueueBounds(options, settings);
    this.consumer = kafka.consumer({
      groupId: options.group,
      sessionTimeout: settings.sessionTimeoutMs,
      heartbeatInterval: settings.heartbeatIntervalMs,
      rebalanceTimeout: settings.rebalanceTimeoutMs,
      maxWaitTimeInMs: settings.maxWaitTimeMs,
      maxBytesPerPartition: settings.maxBytesPerPartition,
      readUncommitted: settings.readUncommitted,
      allowAutoTopicCreation: false,
    });
  }

  private get start(): StartPosition {
    return this.options.start ?? 'committed';
  }

  /** Connects, subscribes and waits (bounded) for the first assignment. */
  async open(): Promise<void> {
    const { consumer } = this;
    consumer.on(consumer.events.GROUP_JOIN, (event) => this.onJoin(event.payload.memberAssignment));
    consumer.on(consumer.events.REBALANCING, () => this.onRevokeAll());
    // kafkajs rejoins without REBALANCING on some paths (UNKNOWN_MEMBER_ID, stale metadata,
    // a stale-topic assignment); every rejoin completes a JoinGroup before any member of the
    // group can receive a new assignment, so that response is where this one's ownership ends.
    consumer.on(consumer.events.REQUEST, (event) => {
      if (event.payload.apiName === 'JoinGroup') this.onRevokeAll();
    });
    consumer.on(consumer.events.CRASH, (event) => {
      this.onRevokeAll();
      if (!event.payload.restart)
        this.fail(new KafkaConsumerCrashedError(this.options.group, event.payload.error));
    });
    await consumer.connect();
    await consumer.subscribe({
      topics: [...this.options.topics],
      fromBeginning: this.start !== 'latest',
    });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: true,
      eachBatch: (payload) => this.onBatch(payload),
    });
    await this.waitForJoin(1, this.settings.joinTimeoutMs);
    // Ready means positioned: a record sent after open() resolves is never skipped by `latest`.
    await Promise.all(this.startResolutions);
    this.startResolutions = [];
    this.opened = true;
  }

  /** Resolves once the group has assigned partitions `count` times (or the deadline passes). */
  waitForJoin(count: number, timeoutMs: number): Promise<void> {
    return this.owned.waitForJoin(count, timeoutMs);
  }

  /** A pause, resume or seek of the kafkajs consumer; dropped while kafkajs restarts it. */
  private control(call: (consumer: Consumer) => void): void {
    try {
      call(this.consumer);
    } catch (error) {
      if (!isRestarting(error)) throw error;
    }
  }

  private onRevokeAll(): void {
    this.owned.revokeAll();
  }

  private onJoin(memberAssignment: Record<string, number[]>): void {
    const next: TopicPartition[] = [];
    for (const [topic, partitions] of Object.entries(memberAssignment)) {
      for (const partition of partitions) next.push({ topic, partition });
    }
    const nextKeys = new Set(next.map((tp) => tpKey(tp.topic, tp.partition)));
    const { revoked, fresh } = this.owned.diff(next);

    // Revoked: forget queued records and positions; the new owner resumes from the commit.
    for (const key of revoked) {
      this.polledPositions.delete(key);
      this.enqueuedNext.delete(key);
      this.highWatermarks.delete(key);
      this.awaitingStart.delete(key);
    }
    for (let i = this.queue.length - 1; i >= 0; i--) {
      const chunk = this.queue[i]!;
      if (nextKeys.has(chunk.key)) continue;
      this.queued -= chunk.messages.length - chunk.next;
      for (let j = chunk.next; j < chunk.messages.length; j++)
        this.queuedBytes -= messageBytes(chunk.messages[j]!);
      this.queue.splice(i, 1);
    }

    // kafkajs restarts kept partitions from the committed offset after every join; move
    // them back to where this consumer's queue ends so nothing is delivered twice.
    for (const tp of next) {
      const resumeAt = this.enqueuedNext.get(tpKey(tp.topic, tp.partition));
      if (resumeAt !== undefined)
        this.control((c) => c.seek({ ...tp, offset: resumeAt.toString() }));
    }
    const unpositioned = fresh.filter(
      (tp) => !this.enqueuedNext.has(tpKey(tp.topic, tp.partition)),
    );

    const start = this.start;
    if ((start === 'latest' || typeof start === 'object') && unpositioned.length > 0)
      this.resolveStart(unpositioned, start);
    if (this.pausedForBackpressure) this.control((c) => c.pause(this.byTopic(next)));
    this.owned.joined(next);
  }

  /**
   * Partitions with no committed offset start at the partition's end as of now (`latest`) or
   * at the first record at or after a timestamp. kafkajs would resolve `latest` only at its
   * first fetch (missing records sent in between), so both are looked up here right after
   * the assignment, with the partitions paused until they are positioned.
   */
  private resolveStart(
    partitions: TopicPartition[],
    start: 'latest' | { timestamp: number },
  ): void {
    for (const tp of partitions) this.awaitingStart.add(tpKey(tp.topic, tp.partition));
    this.consumer.pause(this.byTopic(partitions));
    const resolution = (async () => {
      const admin = await this.admin();
      const topics = [...new Set(partitions.map((tp) => tp.topic))];
      const committed = await admin.fetchOffsets({ groupId: this.options.group, topics });
      for (const topic of topics) {
        const targets =
          start === 'latest'
            ? (await admin.fetchTopicOffsets(topic)).map((o) => ({
                partition: o.partition,
                offset: o.high,
              }))
            : await admin.fetchTopicOffsetsByTimestamp(topic, start.timestamp);
        const commits = committed.find((c) => c.topic === topic)?.partitions ?? [];
        for (const tp of partitions.filter((p) => p.topic === topic)) {
          const key = tpKey(topic, tp.partition);
          if (!this.awaitingStart.has(key)) continue;
          const hasCommit = commits.some((c) => c.partition === tp.partition && c.offset !== '-1');
          const target = targets.find((o) => o.partition === tp.partition)?.offset;
          if (!hasCommit && target !== undefined)
            this.consumer.seek({ topic, partition: tp.partition, offset: target });
        }
      }
    })()
      .catch((error: unknown) =>
        this.fail(new KafkaConsumerCrashedError(this.options.group, error)),
      )
      .finally(() => {
        const ready = partitions.filter((tp) =>
          this.awaitingStart.delete(tpKey(tp.topic, tp.partition)),
        );
        if (!this.pausedForBackpressure && ready.length > 0)
          this.consumer.resume(this.byTopic(ready));
      });
    if (!this.opened) this.startResolutions.push(resolution);
  }

  private async onBatch({ batch, isStale }: EachBatchPayload): Promise<void> {
    const key = tpKey(batch.topic, batch.partition);
    if (this.closed || !this.owned.owns(key) || this.awaitingStart.has(key) || isStale()) return;
    this.highWatermarks.set(key, BigInt(batch.highWatermark));
    const messages = batch.messages;
    if (messages.length === 0) return;
    // Refetched records (offset below what is already queued) are skipped; offsets are only
    // parsed per record when the batch straddles that point.
    const from = this.enqueuedNext.get(key);
    const straddles = from !== undefined && BigInt(messages[0]!.offset) < from;
    const converted: ConsumedMessage[] = [];
    let last: string | undefined;
    let bytes = 0;
    for (let i = 0; i < messages.length; i++) {
      const message = messages[i]!;
      if (straddles && BigInt(message.offset) < from) continue;
      const consumed = toConsumedMessage(batch.topic, batch.partition, message);
      bytes += messageBytes(consumed);
      converted.push(consumed);
      last = message.offset;
    }
    if (last === undefined) return;
    this.enqueuedNext.set(key, BigInt(last) + 1n);
    this.queue.push({
      key,
      topic: batch.topic,
      partition: batch.partition,
      messages: converted,
      next: 0,
    });
    this.queued += converted.length;
    this.queuedBytes += bytes;
    if (this.bounds.full(this.queued, this.queuedBytes) && !this.pausedForBackpressure) {
      this.pausedForBackpressure = true;
      this.control((c) => c.pause(this.byTopic(this.owned.partitions)));
    }
    this.wake?.();
  }

  async poll(
    maxRecords: number,
    maxWaitMs: number,
    signal?: AbortSignal,
  ): Promise<ConsumedMessage[]> {
    if (this.failure) throw this.failure;
    if (this.queued === 0 && maxWaitMs > 0 && !signal?.aborted) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', done);
          this.wake = undefined;
          resolve();
        };
        const timer = setTimeout(done, maxWaitMs);
        signal?.addEventListener('abort', done, { once: true });
        this.wake = done;
      });
      if (this.failure) throw this.failure;
    }
    const out: ConsumedMessage[] = [];
    while (out.length < maxRecords && this.queue.length > 0) {
      const chunk = this.queue[0]!;
      const take = Math.min(maxRecords - out.length, chunk.messages.length - chunk.next);
      for (let i = 0; i < take; i++) {
        const message = chunk.messages[chunk.next + i]!;
        this.queuedBytes -= messageBytes(message);
        out.push(message);
      }
      chunk.next += take;
      const lastTaken = chunk.messages[chunk.next - 1]!;
      this.polledPositions.set(chunk.key, {
        topic: chunk.topic,
        partition: chunk.partition,
        offset: (BigInt(lastTaken.offset) + 1n).toString(),
      });
      if (chunk.next === chunk.messages.length) this.queue.shift();
    }
    this.queued -= out.length;
    if (this.pausedForBackpressure && this.bounds.halfEmpty(this.queued, this.queuedBytes)) {
      this.pausedForBackpressure = false;
      const resumable = this.owned.partitions.filter(
        (tp) => !this.awaitingStart.has(tpKey(tp.topic, tp.partition)),
      );
      this.control((c) => c.resume(this.byTopic(resumable)));
    }
    return out;
  }

  /** Records fetched and waiting for `poll` (bounded by `maxBufferedRecords` plus one fetch). */
  get bufferedRecords(): number {
    return this.queued;
  }

  /** Their bytes, values and keys (bounded by `maxBufferedBytes` plus one fetch). */
  get bufferedBytes(): number {
    return this.queuedBytes;
  }

  /** True while fetching is paused because the queue is full. */
  get backpressured(): boolean {
    return this.pausedForBackpressure;
  }

  positions(): TopicPartitionOffset[] {
    return [...this.polledPositions.values()];
  }

  /** Records between what poll returned and each assigned partition's high watermark at its last fetch. */
  lag(): number | undefined {
    if (this.highWatermarks.size === 0) return undefined;
    let lag = 0n;
    for (const [key, highWatermark] of this.highWatermarks) {
      const polled = this.polledPositions.get(key);
      const position = polled === undefined ? undefined : BigInt(polled.offset);
      if (position !== undefined && highWatermark > position) lag += highWatermark - position;
    }
    return Number(lag);
  }

  async commit(positions?: readonly TopicPartitionOffset[]): Promise<void> {
    await this.owned.commitOwned(
      this.options.group,
      () => positions ?? this.positions(),
      async (owned) => {
        await this.consumer.commitOffsets(
          owned.map(({ topic, partition, offset }) => ({ topic, partition, offset })),
        );
      },
      (error) => REBALANCE_ERRORS.has((error as { type?: string }).type ?? ''),
      this.settings,
    );
  }

  /**
   * Drops every queued record and sends each assigned partition back to its committed offset
   * (the earliest one without a commit): after an aborted transaction, what it covered is read
   * again. kafkajs skips batches fetched before the seek (`isStale`). Mid-rebalance only the
   * queue goes: the next assignment starts every partition from its committed offset.
   */
  async rewind(): Promise<void> {
    this.queue.length = 0;
    this.queued = 0;
    this.queuedBytes = 0;
    this.polledPositions.clear();
    this.enqueuedNext.clear();
    if (this.owned.rebalancing || this.owned.partitions.length === 0) return;
    const partitions = this.owned.partitions.map((tp) => ({ ...tp }));
    const admin = await this.admin();
    const topics = [...new Set(partitions.map((tp) => tp.topic))];
    const committed = await admin.fetchOffsets({ groupId: this.options.group, topics });
    for (const topic of topics) {
      const commits = committed.find((c) => c.topic === topic)?.partitions ?? [];
      const earliest = await admin.fetchTopicOffsets(topic);
      for (const tp of partitions.filter((p) => p.topic === topic)) {
        const commit = commits.find((c) => c.partition === tp.partition)?.offset;
        const offset =
          commit !== undefined && commit !== '-1'
            ? commit
            : earliest.find((o) => o.partition === tp.partition)?.low;
        if (offset !== undefined)
          this.control((c) => c.seek({ topic, partition: tp.partition, offset }));
      }
    }
    if (this.pausedForBackpressure) {
      this.pausedForBackpressure = false;
      this.control((c) =>
        c.resume(
          this.byTopic(
            this.owned.partitions.filter(
              (tp) => !this.awaitingStart.has(tpKey(tp.topic, tp.partition)),
            ),
          ),
        ),
      );
    }
  }

  assignment(): TopicPartition[] {
    return this.owned.assignment();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.onRevokeAll();
    this.wake?.();
    await this.consumer.disconnect();
  }

  private fail(error: Error): void {
    this.failure ??= error;
    this.wake?.();
  }

  private byTopic(
    partitions: readonly TopicPartition[],
  ): { topic: string; partitions: number[] }[] {
    const grouped = new Map<string, number[]>();
    for (const tp of partitions) {
      const list = grouped.get(tp.topic) ?? [];
      list.push(tp.partition);
      grouped.set(tp.topic, list);
    }
    return [...grouped].map(([topic, list]) => ({ topic, partitions: list }));
  }
}

/** What a queued record counts against `maxBufferedBytes`: its value and key. */
function messageBytes(message: ConsumedMessage): number {
  return message.value.length + (message.key?.length ?? 0);
}

function toConsumedMessage(
  topic: string,
  partition: number,
  message: KafkaMessage,
): ConsumedMessage {
  const consumed: ConsumedMessage = {
    topic,
    partition,
    offset: message.offset,
    value: message.value ?? new Uint8Array(0),
    timestamp: Number(message.timestamp),
  };
  if (message.key !== null && message.key !== undefined)
    consumed.key = message.key.toString('utf8');
  const headers = message.headers;
  if (headers !== undefined) {
    let converted: Record<string, string> | undefined;
    for (const name in headers) {
      const value = headers[name];
      if (value === undefined) continue;
      converted ??= {};
      converted[name] = Array.isArray(value) ? String(value[value.length - 1]) : value.toString();
    }
    if (converted !== undefined) consumed.headers = converted;
  }
  return consumed;
}
