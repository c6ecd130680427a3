/**
 * The Buffer contract: what sits between two stages. Topics have partitions; a producer
 * sends batches partitioned by record key; consumers in a group share a topic's
 * partitions, poll batches, expose positions and commit them. Topic = producing stage's
 * id, group = consuming stage's id (both overridable), as in CodeFeedr.
 *
 * Offsets are strings so every implementation can use its native form (Kafka int64
 * offsets, Redis stream ids). A committed offset is the NEXT offset to read.
 */
import type { StateStore } from './state-store.js';

export interface BufferMessage {
  key?: string | undefined;
  value: Uint8Array;
  /** Event time, epoch ms. */
  timestamp: number;
  headers?: Record<string, string> | undefined;
  /**
   * Explicit partition, overriding key partitioning. The runtime uses it only for control
   * messages (end-of-stream markers go to every partition); buffers must honour it.
   */
  partition?: number | undefined;
}

export interface ConsumedMessage extends BufferMessage {
  topic: string;
  partition: number;
  offset: string;
}

export interface TopicPartition {
  topic: string;
  partition: number;
}

export interface TopicPartitionOffset extends TopicPartition {
  /** The next offset to read in that partition. */
  offset: string;
}

export interface TopicSpec {
  name: string;
  partitions: number;
  replicationFactor?: number;
  /** Implementation-specific topic settings (Kafka topic configs, Redis MAXLEN, ...). */
  config?: Record<string, string>;
}

export interface TopicDescription {
  name: string;
  partitions: number;
}

export interface BufferCapabilities {
  /** Outputs and consumer offsets can be committed atomically (exactly-once). */
  readonly transactions: boolean;
  /** Consumers can start from the earliest retained record or a timestamp. */
  readonly replay: boolean;
}

export type StartPosition = 'committed' | 'earliest' | 'latest' | { timestamp: number };

export interface ConsumerOptions {
  /** Consumer group; defaults to the consuming stage's id. */
  group: string;
  topics: readonly string[];
  /** Where to start in a partition with no committed offset (`committed` falls back to earliest). */
  start?: StartPosition;
  /** Upper bound of records held in memory by the consumer (backpressure). */
  maxBufferedRecords?: number;
  /** Upper bound of their bytes (values and keys), where the buffer supports it. */
  maxBufferedBytes?: number;
  /** Called after partitions are assigned or revoked (rebalance). */
  onAssignmentChange?: (assigned: readonly TopicPartition[]) => void;
}

export interface ProducerOptions {
  /** Stable id of the producing stage instance; used for transactional ids. */
  clientId: string;
  /** Ask for a transactional producer (only when capabilities.transactions). */
  transactional?: boolean;
}

export interface BufferAdmin {
  ensureTopic(spec: TopicSpec): Promise<void>;
  describeTopic(name: string): Promise<TopicDescription | undefined>;
  deleteTopic(name: string): Promise<void>;
}

export interface BufferTransaction {
  send(topic: string, messages: readonly BufferMessage[]): Promise<void>;
  /** Commit the consumer group's positions as part of this transaction. */
  sendOffsets(group: string, positions: readonly TopicPartitionOffset[]): Promise<void>;
  commit(): Promise<void>;
  abort(): Promise<void>;
}

export interface BufferProducer {
  /** Sends a batch; resolves when the buffer has accepted it durably (acks=all for Kafka). */
  send(topic: string, messages: readonly BufferMessage[]): Promise<void>;
  /** Only on buffers with `capabilities.transactions` and a producer made `transactional`. */
  beginTransaction?(): Promise<BufferTransaction>;
  close(): Promise<void>;
}

export interface BufferConsumer {
  /**
   * Up to `maxRecords` messages, waiting at most `maxWaitMs` for the first; `[]` if none.
   * Per partition, messages come in offset order.
   */
  poll(maxRecords: number, maxWaitMs: number, signal?: AbortSignal): Promise<ConsumedMessage[]>;
  /** Next offsets after everything returned by `poll` so far, for assigned partitions. */
  positions(): TopicPartitionOffset[];
  /** Commit positions (default: `positions()`). Only call after the records are durable downstream. */
  commit(positions?: readonly TopicPartitionOffset[]): Promise<void>;
  /**
   * Partitions currently assigned to this consumer, from the moment they are assigned (also
   * those with nothing to read yet) until they are revoked. The runtime reads it after every
   * poll: each partition listed holds the stage's event time back until it delivers or goes
   * idle, so a partition must be listed before `poll` returns any of its records.
   */
  assignment(): TopicPartition[];
  /**
   * Forgets what was fetched and not committed: the next `poll` delivers every assigned
   * partition from its committed offset again (after an aborted transaction). Optional: a
   * buffer without it fails a stage whose transaction was fenced.
   */
  rewind?(): Promise<void>;
  /** Records behind the end of the assigned partitions, where the buffer knows it (metrics). */
  lag?(): number | undefined;
  close(): Promise<void>;
}

export interface Buffer {
  /** `memory`, `kafka`, `redis`, ... */
  readonly kind: string;
  readonly capabilities: BufferCapabilities;
  readonly admin: BufferAdmin;
  producer(options: ProducerOptions): Promise<BufferProducer>;
  consumer(options: ConsumerOptions): Promise<BufferConsumer>;
  /**
   * A state store on the buffer's own servers, shared by every worker (RunOptions
   * `stateStore: 'buffer'`). Optional: buffers without one use the file store.
   */
  stateStore?(): Promise<StateStore>;
  close(): Promise<void>;
}
