import { redactText } from '@codefeedr/core';
import type {
  BufferConsumer,
  ConsumedMessage,
  ConsumerOptions,
  StartPosition,
  TopicPartition,
  TopicPartitionOffset,
} from '@codefeedr/core';
import { Admin, Consumer, type Message, type MessagesStream } from '@platformatic/kafka';
import { EagerAssignment, tpKey } from './eager-assignment.js';
import { KafkaConsumerCrashedError } from './errors.js';
import { QueueBounds } from './queue-bounds.js';
import { hasKafkaError, type PlatformaticBaseOptions } from './platformatic-client.js';
import type { KafkaConsumerSettings } from './consumer.js';

// Commit failures that the group's next join cures; any other error is reported.
const REBALANCE_ERRORS = [
  'REBALANCE_IN_PROGRESS',
  'ILLEGAL_GENERATION',
  'UNKNOWN_MEMBER_ID',
  'NOT_COORDINATOR',
  'COORDINATOR_NOT_AVAILABLE',
];

/** What a fetched message says of the group generation it was fetched in. */
interface FetchedIn {
  consumer?: { generationId?: number };
}

/** Fetches stop growing the stream past this many bytes per request, whatever maxBufferedBytes says. */
const MAX_FETCH_BYTES = 50 * 1_048_576;

/**
 * The pull `poll()` contract on @platformatic/kafka's message stream. What the stream fetches
 * is moved at once into a queue bounded in records (`maxBufferedRecords`) and in bytes of
 * values and keys (`maxBufferedBytes`), as on kafkajs: when either is reached the stream is
 * paused (no more fetches), and resumed once `poll` has drained both to half; one fetch
 * (`maxBufferedBytes / 2`, at most 50 MiB) may land on top. The group protocol is the classic
 * one (eager, as kafkajs's): from the start of a rebalance until the next assignment this
 * consumer reports no partitions and `poll` returns nothing (EagerAssignment), so no partition
 * ever has two reported owners.
 *
 * After every join the stream restarts each assigned partition from its committed offset;
 * records below what `poll` has already returned (or what the stream had fetched before a
 * partition was taken away and given back, by the group generation it was fetched in) are
 * dropped here, so one consumer never delivers a record twice.
 */
export class PlatformaticBufferConsumer implements BufferConsumer {
  private readonly consumer: Consumer;
  private stream: MessagesStream<Buffer, Buffer, Buffer, Buffer> | undefined;
  /** What this consumer owns; nothing between the start of a rebalance and its assignment. */
  private readonly owned: EagerAssignment;
  private readonly bounds: QueueBounds;
  /** The group generation from which this consumer has owned each assigned partition. */
  private readonly ownedSince = new Map<string, number>();
  /** Next offset after the last record returned by poll, per assigned partition. */
  private readonly nextOffsets = new Map<
    string,
    { topic: string; partition: number; next: bigint }
  >();
  /** Fetched records not yet polled: `queue[head..]` (the taken ones are dropped in chunks). */
  private queue: Message<Buffer, Buffer, Buffer, Buffer>[] = [];
  private head = 0;
  private queuedBytes = 0;
  private pausedForBackpressure = false;
  private wake: (() => void) | undefined;
  private failure: Error | undefined;
  /** A new stream being opened after the last one failed (see reopen). */
  private reopening: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly base: PlatformaticBaseOptions,
    private readonly options: ConsumerOptions,
    private readonly settings: KafkaConsumerSettings,
  ) {
    this.owned = new EagerAssignment(options.onAssignmentChange);
    this.bounds = new QueueBounds(options, settings);
    this.consumer = new Consumer({
      ...base,
      groupId: options.group,
      sessionTimeout: settings.sessionTimeoutMs,
      heartbeatInterval: settings.heartbeatIntervalMs,
      rebalanceTimeout: settings.rebalanceTimeoutMs,
    });
  }

  private get start(): StartPosition {
    return this.options.start ?? 'committed';
  }

  /** Joins the group and waits (bounded) until its first assignment is positioned. */
  async open(): Promise<void> {
    const consumer = this.consumer;
    consumer.on('consumer:group:rebalance', () => this.onRevokeAll());
    consumer.on('consumer:group:rejoin', () => this.onRevokeAll());
    consumer.on('consumer:group:leave', () => this.onRevokeAll());
    consumer.on('consumer:group:join', (payload) => this.onJoin(payload.assignments ?? []));
    consumer.on('consumer:heartbeat:error', (payload) => {
      // A heartbeat failing with a rebalance error starts a rejoin; ownership ends here.
      if (hasKafkaError(payload?.error, ...REBALANCE_ERRORS)) this.onRevokeAll();
    });
    const start = this.start;
    if (typeof start === 'object') await this.commitTimestampStart(start.timestamp);
    this.useStream(await this.openStream());
    await this.owned.waitForJoin(1, this.settings.joinTimeoutMs);
    // Ready means positioned: a record sent after open() resolves is never skipped by `latest`.
    await this.waitUntil(() => this.positioned(), this.settings.joinTimeoutMs);
  }

  /**
   * A message stream of the topics, each assigned partition starting at its committed offset.
   * While another stream of the same topics is open this joins no group again (the consumer
   * still tracks them), so `rewind` moves no partition.
   */
  private async openStream(): Promise<MessagesStream<Buffer, Buffer, Buffer, Buffer>> {
    const start = this.start;
    const maxBufferedBytes = this.bounds.maxBytes;
    const stream = await this.consumer.consume({
      topics: [...this.options.topics],
      mode: 'committed',
      fallbackMode: start === 'latest' ? 'latest' : 'earliest',
      autocommit: false,
      // The stream's own buffer is emptied into the queue as it fills (see drain).
      highWaterMark: this.bounds.maxRecords,
      maxWaitTime: this.settings.maxWaitTimeMs,
      maxBytesPerPartition: Math.min(this.settings.maxBytesPerPartition, maxBufferedBytes),
      maxBytes: Math.max(1, Math.min(MAX_FETCH_BYTES, Math.floor(maxBufferedBytes / 2))),
      isolationLevel: this.settings.readUncommitted ? 0 : 1,
      sessionTimeout: this.settings.sessionTimeoutMs,
      heartbeatInterval: this.settings.heartbeatIntervalMs,
      rebalanceTimeout: this.settings.rebalanceTimeoutMs,
    });
    stream.on('readable', () => {
      this.drain(stream);
      this.wake?.();
    });
    stream.on('offsets', () => this.wake?.());
    stream.on('error', (error: unknown) => {
      if (stream === this.stream) this.reopen(error);
    });
    return stream;
  }

  /**
   * Forgets what was fetched and not committed: every assigned partition is read again from
   * its committed offset (after a fenced state save, see the core runtime). A new stream
   * replaces the old one (whose fetched records and fetches in flight go with it) without a
   * rejoin, so the other members of the group are not disturbed.
   */
  async rewind(): Promise<void> {
    this.nextOffsets.clear();
    this.queue = [];
    this.head = 0;
    this.queuedBytes = 0;
    const old = this.stream;
    this.stream = undefined;
    const stream = await this.openStream();
    await old?.close().catch(() => undefined);
    this.useStream(stream);
    await this.waitUntil(() => this.positioned(), this.settings.joinTimeoutMs);
  }

  /** Every assigned partition has the offset the stream will fetch it from. */
  private positioned(): boolean {
    const toFetch = this.stream?.offsetsToFetch;
    if (toFetch === undefined) return false;
    return this.owned.partitions.every((tp) => toFetch.has(`${tp.topic}:${tp.partition}`));
  }

  /**
   * A timestamp start: each partition of the topics without a committed offset gets the offset
   * of its first record at or after `timestamp` committed for the group before it joins, so
   * the stream (which knows only earliest and latest) starts there. A group that is already
   * active keeps what its members do.
   */
  private async commitTimestampStart(timestamp: number): Promise<void> {
    const admin = new Admin({ ...this.base, clientId: `${this.base.clientId}-start` });
    try {
      const topics = [...this.options.topics];
      const committed = await this.consumer.listCommittedOffsets({
        topics: await Promise.all(
          topics.map(async (topic) => {
            const metadata = await admin.metadata({ topics: [topic] });
            const count = metadata.topics.get(topic)?.partitionsCount ?? 0;
            return { topic, partitions: Array.from({ length: count }, (_, i) => i) };
          }),
        ),
      });
      const atTimestamp = await this.consumer.listOffsets({ topics, timestamp: BigInt(timestamp) });
      const latest = await this.consumer.listOffsets({ topics, timestamp: -1n });
      const alter: { name: string; partitionOffsets: { partition: number; offset: bigint }[] }[] =
        [];
      for (const topic of topics) {
        const commits = committed.get(topic) ?? [];
        const partitionOffsets: { partition: number; offset: bigint }[] = [];
        commits.forEach((commit, partition) => {
          if (commit >= 0n) return;
          // -1: no record at or after the timestamp; start at the end.
          const found = atTimestamp.get(topic)?.[partition];
          const offset =
            found !== undefined && found >= 0n ? found : latest.get(topic)?.[partition];
          if (offset !== undefined) partitionOffsets.push({ partition, offset });
        });
        if (partitionOffsets.length > 0) alter.push({ name: topic, partitionOffsets });
      }
      if (alter.length > 0)
        await admin
          .alterConsumerGroupOffsets({ groupId: this.options.group, topics: alter })
          .catch((error: unknown) => {
            if (
              !hasKafkaError(error, 'UNKNOWN_MEMBER_ID', 'NON_EMPTY_GROUP', 'REBALANCE_IN_PROGRESS')
            )
              throw error;
          });
    } finally {
      await admin.close().catch(() => undefined);
    }
  }

  private onRevokeAll(): void {
    this.owned.revokeAll();
  }

  private onJoin(assignments: readonly { topic: string; partitions: number[] }[]): void {
    const generation = this.consumer.generationId;
    const next: TopicPartition[] = [];
    for (const { topic, partitions } of assignments)
      for (const partition of partitions) next.push({ topic, partition });
    const { revoked, fresh } = this.owned.diff(next);
    for (const key of revoked) {
      // Revoked: its new owner resumes from the commit.
      this.nextOffsets.delete(key);
      this.ownedSince.delete(key);
    }
    for (const tp of fresh) this.ownedSince.set(tpKey(tp.topic, tp.partition), generation);
    this.owned.joined(next);
    this.wake?.();
  }

  /** Waits for `condition`, re-checked whenever the stream or the group moves (bounded). */
  private async waitUntil(condition: () => boolean, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!condition() && !this.failure && Date.now() < deadline)
      await this.nextWake(Math.min(100, deadline - Date.now()));
  }

  private nextWake(maxWaitMs: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        if (this.wake === done) this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, maxWaitMs));
      signal?.addEventListener('abort', done, { once: true });
      this.wake = done;
    });
  }

  async poll(
    maxRecords: number,
    maxWaitMs: number,
    signal?: AbortSignal,
  ): Promise<ConsumedMessage[]> {
    if (this.failure) throw this.failure;
    const out: ConsumedMessage[] = [];
    this.readInto(out, maxRecords);
    if (out.length === 0 && maxWaitMs > 0 && !signal?.aborted) {
      await this.nextWake(maxWaitMs, signal);
      if (this.failure) throw this.failure;
      this.readInto(out, maxRecords);
    }
    return out;
  }

  /** `stream` is the one to read from now; it is paused at once if the queue is full. */
  private useStream(stream: MessagesStream<Buffer, Buffer, Buffer, Buffer>): void {
    this.stream = stream;
    this.pausedForBackpressure = false;
    this.drain(stream);
  }

  /** Moves what `stream` holds into the queue; a full queue pauses the stream's fetches. */
  private drain(stream: MessagesStream<Buffer, Buffer, Buffer, Buffer>): void {
    if (stream !== this.stream || this.closed) return;
    for (;;) {
      const message = stream.read() as Message<Buffer, Buffer, Buffer, Buffer> | null;
      if (message === null) break;
      this.queue.push(message);
      this.queuedBytes += messageBytes(message);
    }
    if (!this.pausedForBackpressure && this.bounds.full(this.bufferedRecords, this.queuedBytes)) {
      this.pausedForBackpressure = true;
      stream.pause();
    }
  }

  /** Moves up to `maxRecords` owned, not yet delivered records from the queue into `out`. */
  private readInto(out: ConsumedMessage[], maxRecords: number): void {
    const stream = this.stream;
    if (stream !== undefined) this.drain(stream);
    if (this.owned.rebalancing || this.closed) return;
    while (out.length < maxRecords && this.head < this.queue.length) {
      const message = this.queue[this.head++]!;
      this.queuedBytes -= messageBytes(message);
      const key = tpKey(message.topic, message.partition);
      const since = this.ownedSince.get(key);
      if (since === undefined) continue; // revoked: its new owner reads it
      const fetchedIn = (message.metadata as FetchedIn | undefined)?.consumer?.generationId;
      if (fetchedIn !== undefined && fetchedIn < since) continue; // fetched before it came back
      const position = this.nextOffsets.get(key);
      if (position === undefined)
        this.nextOffsets.set(key, {
          topic: message.topic,
          partition: message.partition,
          next: message.offset + 1n,
        });
      else if (message.offset < position.next)
        continue; // refetched
      else position.next = message.offset + 1n;
      out.push(toConsumedMessage(message));
    }
    if (this.head > 1_024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    if (
      this.pausedForBackpressure &&
      this.bounds.halfEmpty(this.bufferedRecords, this.queuedBytes)
    ) {
      this.pausedForBackpressure = false;
      stream?.resume();
    }
  }

  /** Records fetched and waiting for `poll` (bounded by `maxBufferedRecords` plus one fetch). */
  get bufferedRecords(): number {
    return this.queue.length - this.head;
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
    return [...this.nextOffsets.values()].map(({ topic, partition, next }) => ({
      topic,
      partition,
      offset: next.toString(),
    }));
  }

  async commit(positions?: readonly TopicPartitionOffset[]): Promise<void> {
    await this.owned.commitOwned(
      this.options.group,
      () => positions ?? this.positions(),
      (owned) =>
        this.consumer.commit({
          offsets: owned.map(({ topic, partition, offset }) => ({
            topic,
            partition,
            offset: BigInt(offset),
            leaderEpoch: -1,
          })),
        }),
      (error) => hasKafkaError(error, ...REBALANCE_ERRORS),
      this.settings,
    );
  }

  assignment(): TopicPartition[] {
    return this.owned.assignment();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.onRevokeAll();
    this.wake?.();
    await this.reopening;
    await this.stream?.close().catch(() => undefined);
    await this.consumer.close();
  }

  /**
   * The stream failed (its fetches gave up, e.g. while a dead broker's partitions move to a new
   * leader): a new one is opened, with growing waits, as kafkajs restarts a crashed consumer.
   * It starts at the committed offsets and what this consumer already returned is skipped (the
   * positions are kept), so nothing is lost or delivered twice. Only when no stream could be
   * opened for `joinTimeoutMs` + the request timeout does the consumer fail for good.
   */
  private reopen(error: unknown): void {
    if (this.reopening !== undefined || this.closed) return;
    this.stream = undefined;
    process.stderr.write(
      `${redactText(JSON.stringify({ level: 'warn', source: 'codefeedr.kafka', message: 'the consumer stream failed; opening a new one', group: this.options.group, error: String((error as Error)?.message ?? error) }))}\n`,
    );
    const deadline = Date.now() + this.settings.joinTimeoutMs + this.base.timeout;
    this.reopening = (async () => {
      for (let waitMs = 250; !this.closed; waitMs = Math.min(5_000, waitMs * 2)) {
        await new Promise((resolve) => setTimeout(resolve, waitMs));
        try {
          const stream = await this.openStream();
          if (this.closed) await stream.close().catch(() => undefined);
          else this.useStream(stream);
          return;
        } catch (failed) {
          if (Date.now() > deadline) {
            this.fail(new KafkaConsumerCrashedError(this.options.group, failed));
            return;
          }
        }
      }
    })().finally(() => {
      this.reopening = undefined;
      this.wake?.();
    });
  }

  private fail(error: Error): void {
    this.failure ??= error;
    this.wake?.();
  }
}

/** What a queued record counts against `maxBufferedBytes`: its value and key. */
function messageBytes(message: Message<Buffer, Buffer, Buffer, Buffer>): number {
  return (message.value?.length ?? 0) + ((message.key as Buffer | null | undefined)?.length ?? 0);
}

function toConsumedMessage(message: Message<Buffer, Buffer, Buffer, Buffer>): ConsumedMessage {
  const consumed: ConsumedMessage = {
    topic: message.topic,
    partition: message.partition,
    offset: message.offset.toString(),
    value: message.value ?? new Uint8Array(0),
    timestamp: Number(message.timestamp),
  };
  const key = message.key as Buffer | null | undefined;
  if (key !== null && key !== undefined) consumed.key = key.toString('utf8');
  const headers = message.headers;
  if (headers !== undefined && headers.size > 0) {
    const converted: Record<string, string> = {};
    for (const [name, value] of headers) converted[name.toString()] = value.toString();
    consumed.headers = converted;
  }
  return consumed;
}
