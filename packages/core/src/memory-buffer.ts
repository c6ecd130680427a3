import { z } from 'zod';
import type {
  Buffer,
  BufferAdmin,
  BufferCapabilities,
  BufferConsumer,
  BufferMessage,
  BufferProducer,
  ConsumedMessage,
  ConsumerOptions,
  ProducerOptions,
  StartPosition,
  TopicDescription,
  TopicPartition,
  TopicPartitionOffset,
  TopicSpec,
} from './buffer.js';
import { defineBuffer } from './component.js';
import { CodefeedrError } from './errors.js';
import { murmur2Partition } from './murmur2.js';

export const memoryBufferConfigSchema = z.object({
  /** Partitions of a topic created implicitly by a send (Kafka's auto.create.topics). */
  defaultPartitions: z.number().int().positive().default(1),
  /**
   * Backpressure bound: a send waits while a partition holds this many records not yet
   * read by some consumer group subscribed to its topic.
   */
  maxRecordsPerPartition: z.number().int().positive().default(10_000),
  /**
   * The same bound in bytes (a message's encoded value plus its key's length): a send waits
   * while a partition holds this many unread bytes, so large records are bounded too. A
   * message larger than the bound is still accepted, alone, once the partition is read up.
   */
  maxBytesPerPartition: z
    .number()
    .int()
    .positive()
    .default(32 * 2 ** 20),
  /** How a group's partitions are spread over its consumers. */
  assignment: z.enum(['range', 'roundrobin']).default('range'),
});
export type MemoryBufferConfig = z.input<typeof memoryBufferConfigSchema>;

export class BufferClosedError extends CodefeedrError {
  constructor() {
    super(
      'BUFFER_CLOSED',
      'The memory buffer was closed. Create a new buffer (or a new run) to send or poll again.',
    );
  }
}

export class TransactionsUnsupportedError extends CodefeedrError {
  constructor() {
    super(
      'TRANSACTIONS_UNSUPPORTED',
      'The memory buffer has no transactions (capabilities.transactions is false). Use a buffer with transactions (Kafka) for exactly-once, or run at-least-once.',
    );
  }
}

export class UnknownPartitionError extends CodefeedrError {
  constructor(topic: string, partition: number, partitions: number) {
    super(
      'UNKNOWN_PARTITION',
      `Topic "${topic}" has ${partitions} partition(s); partition ${partition} does not exist. Send without an explicit partition or add partitions with ensureTopic.`,
      { topic, partition, partitions },
    );
  }
}

/** A message's size as the byte bounds count it: its encoded value and its key. */
const sizeOf = (m: BufferMessage): number => m.value.length + (m.key?.length ?? 0);

class PartitionLog {
  /** Offset of messages[0]; grows as retention trims committed records. */
  base = 0;
  /** Stored as sent (not copied: a sent message is the buffer's, as with any producer). */
  readonly messages: BufferMessage[] = [];
  /** bytesBefore[i]: the sizes of every message appended before messages[i]. */
  private readonly bytesBefore: number[] = [];
  /** The sizes of every message ever appended. */
  private bytesTotal = 0;
  end(): number {
    return this.base + this.messages.length;
  }
  at(offset: number): BufferMessage | undefined {
    return this.messages[offset - this.base];
  }
  append(message: BufferMessage, size: number): void {
    this.messages.push(message);
    this.bytesBefore.push(this.bytesTotal);
    this.bytesTotal += size;
  }
  /** Bytes of the messages from `offset` to the end. */
  bytesFrom(offset: number): number {
    const i = offset - this.base;
    if (i >= this.messages.length) return 0;
    return this.bytesTotal - this.bytesBefore[Math.max(0, i)]!;
  }
  /** How many of the oldest messages to drop so at most `maxBytes` stay. */
  excessOver(maxBytes: number): number {
    let drop = 0;
    while (drop < this.messages.length && this.bytesFrom(this.base + drop) > maxBytes) drop++;
    return drop;
  }
  dropOldest(n: number): void {
    this.messages.splice(0, n);
    this.bytesBefore.splice(0, n);
    this.base += n;
  }
}

class TopicState {
  readonly partitions: PartitionLog[] = [];
  constructor(
    readonly name: string,
    partitions: number,
  ) {
    this.grow(partitions);
  }
  grow(partitions: number): void {
    while (this.partitions.length < partitions) this.partitions.push(new PartitionLog());
  }
}

const tpKey = (topic: string, partition: number) => `${topic}/${partition}`;

class GroupState {
  readonly members: MemoryConsumer[] = [];
  /** topic/partition -> next offset to read, committed. */
  readonly committed = new Map<string, number>();
  /** topic/partition -> next offset to read by the partition's current owner. */
  readonly position = new Map<string, number>();
  /** topic/partition -> owning member. */
  readonly owner = new Map<string, MemoryConsumer>();
  /**
   * topic/partition -> the member that gave it up in a rebalance and has not polled since:
   * the new owner gets it after that poll (Kafka's eager protocol: a partition is revoked
   * before it is assigned again), so the old owner's batch or checkpoint in progress when
   * the group changed ends before anyone else reads the partition.
   */
  readonly handoff = new Map<string, MemoryConsumer>();
  constructor(readonly name: string) {}
}

/** Wakes every waiter of one kind of change: one promise per wait, not per record. */
class ChangeNotifier {
  private waiters = new Set<() => void>();
  notify(): void {
    const waiters = this.waiters;
    this.waiters = new Set();
    for (const wake of waiters) wake();
  }
  wait(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal?.aborted) return resolve();
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.waiters.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }
}

/**
 * Core's embedded buffer: topics with partitions in this process's memory, Kafka semantics.
 *
 * - Partitioning: a record with a key goes to `toPositive(murmur2(utf8(key))) % partitions`,
 *   Kafka's default partitioner, so a key lands on the same partition number here as in Kafka;
 *   keyless records are spread round-robin per producer.
 * - Consumer groups: committed offsets per group; partitions spread over the group's live
 *   consumers (range or round-robin) and rebalanced when one joins or leaves. A partition that
 *   moves restarts from the group's committed offset (uncommitted reads are redelivered:
 *   at-least-once); a partition that stays keeps its position.
 * - Backpressure: `send` waits while a partition holds `maxRecordsPerPartition` records, or
 *   `maxBytesPerPartition` bytes, that some subscribed group has not read yet (a message over
 *   the byte bound goes in alone once the partition is read up). With no group subscribed,
 *   nothing waits (and nothing is trimmed beyond the bound's retention).
 * - Retention: records every subscribed group has committed are trimmed once a partition holds
 *   more than `maxRecordsPerPartition` records or `maxBytesPerPartition` bytes; uncommitted
 *   records are never trimmed.
 */
export class MemoryBuffer implements Buffer {
  readonly kind = 'memory';
  readonly capabilities: BufferCapabilities = { transactions: false, replay: true };
  readonly admin: BufferAdmin;
  readonly config: Required<z.output<typeof memoryBufferConfigSchema>>;
  private readonly topics = new Map<string, TopicState>();
  private readonly groups = new Map<string, GroupState>();
  /** Consumers wait on new records; producers blocked by backpressure wait on readers advancing. */
  private readonly dataArrived = new ChangeNotifier();
  private readonly spaceFreed = new ChangeNotifier();
  private readonly consumers = new Set<MemoryConsumer>();
  private closed = false;
  private nextMemberId = 0;

  constructor(config: MemoryBufferConfig = {}) {
    this.config = memoryBufferConfigSchema.parse(config);
    this.admin = {
      ensureTopic: async (spec: TopicSpec) => {
        this.ensureTopic(spec.name, spec.partitions);
      },
      describeTopic: async (name: string): Promise<TopicDescription | undefined> => {
        const topic = this.topics.get(name);
        return topic && { name, partitions: topic.partitions.length };
      },
      deleteTopic: async (name: string) => {
        this.topics.delete(name);
        for (const group of this.groups.values()) {
          for (const key of [...group.committed.keys()]) {
            if (key.startsWith(`${name}/`)) group.committed.delete(key);
          }
          this.rebalance(group);
        }
      },
    };
  }

  async producer(options: ProducerOptions): Promise<BufferProducer> {
    this.assertOpen();
    if (options.transactional) {
      throw new TransactionsUnsupportedError();
    }
    let roundRobin = 0;
    return {
      send: async (topic, messages) => {
        this.assertOpen();
        const state =
          this.topics.get(topic) ?? this.ensureTopic(topic, this.config.defaultPartitions);
        const count = state.partitions.length;
        const byPartition: BufferMessage[][] = Array.from({ length: count }, () => []);
        for (const message of messages) {
          const p =
            message.partition !== undefined
              ? message.partition
              : message.key === undefined
                ? roundRobin++ % count
                : murmur2Partition(message.key, count);
          if (!(p >= 0 && p < count)) throw new UnknownPartitionError(topic, p, count);
          byPartition[p]!.push(message);
        }
        const { maxRecordsPerPartition: maxRecords, maxBytesPerPartition: maxBytes } = this.config;
        for (let p = 0; p < count; p++) {
          const pending = byPartition[p]!;
          let sent = 0;
          while (sent < pending.length) {
            this.assertOpen();
            const log = state.partitions[p]!;
            const read = this.slowestRead(topic, p, log);
            let records = log.end() - read;
            let bytes = log.bytesFrom(read);
            const first = sent;
            while (sent < pending.length && records < maxRecords) {
              const message = pending[sent]!;
              const size = sizeOf(message);
              if (records > 0 && bytes + size > maxBytes) break;
              log.append(message, size);
              records++;
              bytes += size;
              sent++;
            }
            if (sent === first) {
              await this.spaceFreed.wait(1000);
              continue;
            }
            this.dataArrived.notify();
          }
        }
      },
      close: async () => {},
    };
  }

  async consumer(options: ConsumerOptions): Promise<BufferConsumer> {
    this.assertOpen();
    const group = this.groups.get(options.group) ?? new GroupState(options.group);
    this.groups.set(options.group, group);
    const consumer = new MemoryConsumer(this, group, options, this.nextMemberId++);
    this.consumers.add(consumer);
    group.members.push(consumer);
    this.rebalance(group);
    return consumer;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const consumer of [...this.consumers]) await consumer.close();
    this.dataArrived.notify();
    this.spaceFreed.notify();
  }

  /** Records and committed offsets of a partition, for tests and the dashboard. */
  endOffset(topic: string, partition: number): number {
    return this.topics.get(topic)?.partitions[partition]?.end() ?? 0;
  }

  /**
   * Commits a group's offsets from outside its consumers, as Kafka's transactional
   * `sendOffsetsToTransaction` does broker-side (for transactional wrappers and tools).
   */
  commitOffsets(group: string, positions: readonly TopicPartitionOffset[]): void {
    const state = this.groups.get(group) ?? new GroupState(group);
    this.groups.set(group, state);
    for (const { topic, partition, offset } of positions) {
      state.committed.set(tpKey(topic, partition), Number(offset));
      this.trim(topic, partition);
    }
    this.spaceFreed.notify();
  }

  /** Live consumers in a group (tests wait on this instead of sleeping). */
  groupSize(group: string): number {
    return this.groups.get(group)?.members.length ?? 0;
  }

  committedOffset(group: string, topic: string, partition: number): number | undefined {
    return this.groups.get(group)?.committed.get(tpKey(topic, partition));
  }

  // ---- internals shared with MemoryConsumer ----

  /** @internal */
  topicState(name: string): TopicState | undefined {
    return this.topics.get(name);
  }

  /** @internal */
  waitForData(ms: number, signal?: AbortSignal): Promise<void> {
    return this.dataArrived.wait(ms, signal);
  }

  /** @internal Readers advanced or committed: a send waiting for space may proceed. */
  readersAdvanced(): void {
    this.spaceFreed.notify();
  }

  /** @internal */
  leave(consumer: MemoryConsumer, group: GroupState): void {
    this.consumers.delete(consumer);
    const index = group.members.indexOf(consumer);
    if (index >= 0) group.members.splice(index, 1);
    this.rebalance(group);
    // Assignments and backlogs changed: wake both sides to re-check.
    this.dataArrived.notify();
    this.spaceFreed.notify();
  }

  /** @internal */
  trim(topic: string, partition: number): void {
    const log = this.topics.get(topic)?.partitions[partition];
    if (log === undefined) return;
    const excess = Math.max(
      log.messages.length - this.config.maxRecordsPerPartition,
      log.excessOver(this.config.maxBytesPerPartition),
    );
    if (excess <= 0) return;
    let safe = log.end();
    for (const group of this.groups.values()) {
      if (!group.members.some((m) => m.topics.includes(topic))) continue;
      safe = Math.min(safe, group.committed.get(tpKey(topic, partition)) ?? log.base);
    }
    const drop = Math.min(excess, safe - log.base);
    if (drop > 0) log.dropOldest(drop);
  }

  /** @internal */
  assertOpen(): void {
    if (this.closed) throw new BufferClosedError();
  }

  private ensureTopic(name: string, partitions: number): TopicState {
    let topic = this.topics.get(name);
    if (topic === undefined) {
      topic = new TopicState(name, partitions);
      this.topics.set(name, topic);
    } else {
      topic.grow(partitions);
    }
    for (const group of this.groups.values()) {
      if (group.members.some((m) => m.topics.includes(name))) this.rebalance(group);
    }
    return topic;
  }

  /**
   * Where the slowest subscribed group reads partition p (its end when none is subscribed):
   * what lies after it is the unread backlog the bounds apply to.
   */
  private slowestRead(topic: string, p: number, log: PartitionLog): number {
    let slowest = log.end();
    for (const group of this.groups.values()) {
      if (!group.members.some((m) => m.topics.includes(topic))) continue;
      const key = tpKey(topic, p);
      const read = group.position.get(key) ?? group.committed.get(key) ?? log.base;
      slowest = Math.min(slowest, Math.max(read, log.base));
    }
    return slowest;
  }

  /** Unread records and bytes of partition p for its slowest subscribed group (tests, metrics). */
  unread(topic: string, partition: number): { records: number; bytes: number } {
    const log = this.topics.get(topic)?.partitions[partition];
    if (log === undefined) return { records: 0, bytes: 0 };
    const read = this.slowestRead(topic, partition, log);
    return { records: log.end() - read, bytes: log.bytesFrom(read) };
  }

  /** Recomputes the group's assignment; partitions that change owner restart from committed. */
  private rebalance(group: GroupState): void {
    const wanted = new Map<string, MemoryConsumer>();
    const topicNames = [...new Set(group.members.flatMap((m) => m.topics))].sort();
    if (this.config.assignment === 'range') {
      for (const name of topicNames) {
        const partitions = this.topics.get(name)?.partitions.length ?? 0;
        const members = group.members.filter((m) => m.topics.includes(name));
        if (members.length === 0) continue;
        const per = Math.floor(partitions / members.length);
        const extra = partitions % members.length;
        let p = 0;
        members.forEach((member, i) => {
          const n = per + (i < extra ? 1 : 0);
          for (let k = 0; k < n; k++, p++) wanted.set(tpKey(name, p), member);
        });
      }
    } else {
      let i = 0;
      for (const name of topicNames) {
        const partitions = this.topics.get(name)?.partitions.length ?? 0;
        const members = group.members.filter((m) => m.topics.includes(name));
        if (members.length === 0) continue;
        for (let p = 0; p < partitions; p++)
          wanted.set(tpKey(name, p), members[i++ % members.length]!);
      }
    }
    const changed = new Set<MemoryConsumer>();
    for (const [key, previous] of group.owner) {
      if (wanted.get(key) !== previous) {
        changed.add(previous);
        group.owner.delete(key);
        group.position.delete(key);
        if (wanted.has(key) && group.members.includes(previous)) group.handoff.set(key, previous);
      }
    }
    for (const [key, from] of group.handoff)
      if (!group.members.includes(from) || !wanted.has(key)) group.handoff.delete(key);
    for (const [key, member] of wanted) {
      if (group.owner.get(key) === member) continue;
      if (group.handoff.has(key)) continue; // after the previous owner's next poll
      changed.add(member);
      group.owner.set(key, member);
      const slash = key.lastIndexOf('/');
      const topic = key.slice(0, slash);
      const partition = Number(key.slice(slash + 1));
      group.position.set(key, this.startOffset(group, topic, partition, member.start));
    }
    for (const member of group.members) {
      member.setAssignment(
        [...wanted]
          .filter(([key, m]) => m === member && group.owner.get(key) === member)
          .map(([key]) => parseKey(key)),
        changed.has(member),
      );
    }
  }

  /** @internal Every partition `consumer` owns goes back to where it starts: its commit. */
  rewind(consumer: MemoryConsumer, group: GroupState): void {
    for (const tp of consumer.assignment())
      group.position.set(
        tpKey(tp.topic, tp.partition),
        this.startOffset(group, tp.topic, tp.partition, consumer.start),
      );
  }

  /** @internal `consumer` polled: the partitions it gave up go to their new owners. */
  releaseHandoffs(consumer: MemoryConsumer, group: GroupState): void {
    let released = false;
    for (const [key, from] of group.handoff)
      if (from === consumer) {
        group.handoff.delete(key);
        released = true;
      }
    if (!released) return;
    this.rebalance(group);
    this.dataArrived.notify();
  }

  private startOffset(
    group: GroupState,
    topic: string,
    partition: number,
    start: StartPosition,
  ): number {
    const committed = group.committed.get(tpKey(topic, partition));
    const log = this.topics.get(topic)!.partitions[partition]!;
    if (
      committed !== undefined &&
      (start === 'committed' ||
        start === 'earliest' ||
        start === 'latest' ||
        typeof start === 'object')
    ) {
      // A committed offset always wins: start positions apply to partitions the group never committed.
      return Math.max(committed, log.base);
    }
    if (start === 'latest') return log.end();
    if (typeof start === 'object') {
      const index = log.messages.findIndex((m) => m.timestamp >= start.timestamp);
      return index === -1 ? log.end() : log.base + index;
    }
    return log.base;
  }
}

function parseKey(key: string): TopicPartition {
  const slash = key.lastIndexOf('/');
  return { topic: key.slice(0, slash), partition: Number(key.slice(slash + 1)) };
}

class MemoryConsumer implements BufferConsumer {
  readonly topics: readonly string[];
  readonly start: StartPosition;
  private assigned: TopicPartition[] = [];
  private nextPartition = 0;
  private closed = false;

  constructor(
    private readonly buffer: MemoryBuffer,
    private readonly group: GroupState,
    private readonly options: ConsumerOptions,
    readonly memberId: number,
  ) {
    this.topics = [...options.topics];
    this.start = options.start ?? 'committed';
  }

  setAssignment(assigned: TopicPartition[], changed: boolean): void {
    this.assigned = assigned;
    if (changed) this.options.onAssignmentChange?.(assigned);
  }

  async poll(
    maxRecords: number,
    maxWaitMs: number,
    signal?: AbortSignal,
  ): Promise<ConsumedMessage[]> {
    const deadline = Date.now() + maxWaitMs;
    if (this.group.handoff.size > 0 && !this.closed) this.buffer.releaseHandoffs(this, this.group);
    for (;;) {
      if (this.closed) return [];
      this.buffer.assertOpen();
      const batch = this.take(maxRecords);
      if (batch.length > 0 || signal?.aborted) return batch;
      const left = deadline - Date.now();
      if (left <= 0) return batch;
      await this.buffer.waitForData(left, signal);
    }
  }

  /** Takes records round-robin over assigned partitions so one busy partition can't starve the rest. */
  private take(maxRecords: number): ConsumedMessage[] {
    const out: ConsumedMessage[] = [];
    const n = this.assigned.length;
    for (let i = 0; i < n && out.length < maxRecords; i++) {
      const tp = this.assigned[(this.nextPartition + i) % n]!;
      const log = this.buffer.topicState(tp.topic)?.partitions[tp.partition];
      if (log === undefined) continue;
      const key = tpKey(tp.topic, tp.partition);
      let offset = Math.max(this.group.position.get(key) ?? log.base, log.base);
      const share = Math.max(1, Math.ceil((maxRecords - out.length) / (n - i)));
      const until = Math.min(log.end(), offset + share);
      for (; offset < until; offset++) {
        const m = log.at(offset)!;
        out.push({
          topic: tp.topic,
          partition: tp.partition,
          offset: String(offset),
          key: m.key,
          value: m.value,
          timestamp: m.timestamp,
          headers: m.headers,
        });
      }
      this.group.position.set(key, offset);
    }
    this.nextPartition = n === 0 ? 0 : (this.nextPartition + 1) % n;
    if (out.length > 0) this.buffer.readersAdvanced();
    return out;
  }

  /** Forgets what was read and not committed (BufferConsumer.rewind). */
  async rewind(): Promise<void> {
    this.buffer.rewind(this, this.group);
  }

  positions(): TopicPartitionOffset[] {
    return this.assigned.map((tp) => {
      const key = tpKey(tp.topic, tp.partition);
      const log = this.buffer.topicState(tp.topic)?.partitions[tp.partition];
      return { ...tp, offset: String(this.group.position.get(key) ?? log?.base ?? 0) };
    });
  }

  async commit(positions?: readonly TopicPartitionOffset[]): Promise<void> {
    for (const { topic, partition, offset } of positions ?? this.positions()) {
      // A consumer commits only partitions it owns: a stale commit after a rebalance is ignored.
      if (this.group.owner.get(tpKey(topic, partition)) !== this) continue;
      this.group.committed.set(tpKey(topic, partition), Number(offset));
      this.buffer.trim(topic, partition);
    }
    this.buffer.readersAdvanced();
  }

  assignment(): TopicPartition[] {
    return [...this.assigned];
  }

  /** Records behind the end of the assigned partitions (consumer lag). */
  lag(): number {
    let lag = 0;
    for (const tp of this.assigned) {
      const log = this.buffer.topicState(tp.topic)?.partitions[tp.partition];
      if (log === undefined) continue;
      lag += log.end() - (this.group.position.get(tpKey(tp.topic, tp.partition)) ?? log.base);
    }
    return lag;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.assigned = [];
    this.buffer.leave(this, this.group);
  }
}

/** Core's embedded default buffer as a component (`setBuffer(memoryBuffer, { ... })`). */
export const memoryBuffer = defineBuffer({
  name: 'memory',
  description:
    'In-process topics, partitions and consumer groups with Kafka semantics; the embedded default.',
  configSchema: memoryBufferConfigSchema,
  capabilities: { transactions: false, replay: true },
  create: (config) => new MemoryBuffer(config),
});
