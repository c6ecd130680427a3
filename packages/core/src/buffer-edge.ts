import type { BufferMessage, ConsumedMessage } from './buffer.js';
import { channelOf, type EndOfStreamTracker } from './end-of-stream.js';
import type { StreamRecord } from './record.js';
import type { Serde } from './serde.js';
import type { StageTask, TaskOutput } from './stage-task.js';

/**
 * The writing half of an edge through a buffer: a task's output records encoded with its
 * topic's serde and queued until the run sends them (after the batch, in one call, or inside
 * a transaction). A value the serde cannot encode is a dead letter of the emitting stage.
 */
export class BufferOutput implements TaskOutput {
  private pending: BufferMessage[] = [];
  /** Named output -> its messages queued since the last takeNamed(). */
  private pendingNamed = new Map<string, BufferMessage[]>();

  constructor(
    private readonly task: StageTask,
    private readonly serde: Serde,
  ) {}

  emit(records: readonly StreamRecord[], output?: string): void {
    let pending = this.pending;
    if (output !== undefined) {
      pending = this.pendingNamed.get(output) ?? [];
      this.pendingNamed.set(output, pending);
    }
    let bytes = 0;
    let failed = 0;
    for (const record of records) {
      let value: Uint8Array;
      try {
        value = this.serde.encode(record.value);
      } catch (error) {
        this.task.dlq.add(record, error, { attempts: 1, inputIndex: null });
        failed++;
        continue;
      }
      bytes += value.length;
      pending.push({
        key: record.key,
        value,
        timestamp: record.timestamp,
        headers: record.headers,
      });
    }
    this.task.metrics.bytesOut += bytes;
    this.task.metrics.recordsOut -= failed;
  }

  /** The main output's messages queued since the last call. */
  take(): BufferMessage[] {
    const out = this.pending;
    this.pending = [];
    return out;
  }

  /** Each named output's messages queued since the last call (outputs with none left out). */
  takeNamed(): [output: string, messages: BufferMessage[]][] {
    if (this.pendingNamed.size === 0) return [];
    const out = [...this.pendingNamed].filter(([, messages]) => messages.length > 0);
    this.pendingNamed = new Map();
    return out;
  }
}

/** One input topic of a consuming task: which input it feeds and how its values are decoded. */
export interface BufferInput {
  inputIndex: number;
  serde: Serde;
}

/**
 * The reading half of an edge through a buffer: one poll's messages, decoded and handed to
 * the task partition by partition (order kept per partition; the partition is the channel the
 * chain's watermarks are tracked by). Control messages go to the end-of-stream tracker; a
 * message that cannot be decoded is a dead letter with its original bytes and coordinates.
 */
export function deliverConsumed(
  task: StageTask,
  inputs: ReadonlyMap<string, BufferInput>,
  ends: EndOfStreamTracker,
  messages: readonly ConsumedMessage[],
  sinkPositions?: SinkPositions,
): void {
  const byChannel = new Map<string, ConsumedMessage[]>();
  for (const m of messages) {
    const channel = channelOf(m.topic, m.partition);
    const list = byChannel.get(channel);
    if (list === undefined) byChannel.set(channel, [m]);
    else list.push(m);
  }
  for (const [channel, list] of byChannel) {
    const input = inputs.get(list[0]!.topic);
    if (input === undefined) continue; // not ours (shared group misuse); never decoded, never committed past
    const records: StreamRecord[] = [];
    let bytes = 0;
    for (const m of list) {
      if (ends.isControl(m)) {
        ends.control(channel, m);
        continue;
      }
      ends.onData(channel);
      // Already stored by the sink with its position (a replay from an older commit): skip.
      // Control messages above are never skipped, so a stream still ends.
      if (sinkPositions !== undefined && sinkPositions.stored(channel, m.offset)) continue;
      bytes += m.value.length;
      let value: unknown;
      try {
        value = input.serde.decode(m.value);
      } catch (error) {
        task.dlq.add(
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
    task.metrics.bytesIn += bytes;
    const after = sinkPositions?.after.get(channel);
    task.onBatch(
      input.inputIndex,
      channel,
      records,
      after === undefined ? undefined : { [channel]: after },
    );
  }
}

/** The order of two offsets of one partition: Kafka-style integers or Redis-style `ms-seq` ids. */
export function compareOffsets(a: string, b: string): number | undefined {
  const pa = OFFSET.exec(a);
  const pb = OFFSET.exec(b);
  if (pa === null || pb === null || (pa[2] === undefined) !== (pb[2] === undefined))
    return undefined;
  const major = BigInt(pa[1]!) - BigInt(pb[1]!);
  if (major !== 0n) return major < 0n ? -1 : 1;
  const minor = BigInt(pa[2] ?? '0') - BigInt(pb[2] ?? '0');
  return minor === 0n ? 0 : minor < 0n ? -1 : 1;
}
const OFFSET = /^(\d+)(?:-(\d+))?$/;

/**
 * What a sink that stores its input positions (`Sink.positions`) has stored — or what restored
 * state shards already reflect (state-shards.ts) — and where this poll leaves each partition
 * (the positions to store with the batch it delivers).
 */
export class SinkPositions {
  private readonly storedNext = new Map<string, string>();
  /** Per channel: the consumer's next offset after this poll. */
  after = new Map<string, string>();

  /** @param positions what the sink stored: `topic/partition` → next offset */
  constructor(positions: Readonly<Record<string, unknown>>) {
    this.reset(positions);
  }

  /** Replaces the stored positions. */
  reset(positions: Readonly<Record<string, unknown>>): void {
    this.storedNext.clear();
    for (const [channel, offset] of Object.entries(positions))
      if (typeof offset === 'string' || typeof offset === 'number')
        this.storedNext.set(channel, String(offset));
  }

  /** True when the message at `offset` of `channel` is before the stored next offset. */
  stored(channel: string, offset: string): boolean {
    const next = this.storedNext.get(channel);
    if (next === undefined) return false;
    const order = compareOffsets(offset, next);
    return order !== undefined && order < 0;
  }
}
