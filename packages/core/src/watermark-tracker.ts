import type { WatermarkStrategy } from './datastream.js';
import { CodefeedrError } from './errors.js';
import { decodeTime, encodeTime, FAILED, type FailureHandler, Operator } from './operators.js';
import type { JsonValue, StreamRecord } from './record.js';

/** A timestamp assigner returned something that is not a finite number. */
export class InvalidTimestampError extends CodefeedrError {
  constructor(stageId: string, timestamp: unknown) {
    super(
      'TIMESTAMP_INVALID',
      `Stage "${stageId}": the timestamp assigner returned ${String(timestamp)}, not epoch milliseconds. The record went to the dead-letter topic; fix the assigner or the data.`,
      { stageId },
    );
  }
}

interface ChannelWatermark {
  maxTimestamp: number;
  lastActiveMs: number;
  idle: boolean;
}

/**
 * assignTimestampsAndWatermarks(): bounded out-of-orderness per channel (a buffer partition
 * or an upstream stage), the minimum over channels that are not idle, as Flink's Kafka
 * source does per partition. Like Flink, watermark = max timestamp - bound - 1, emitted
 * once per batch (Flink emits periodically); upstream watermarks are swallowed, except the
 * end-of-input one.
 */
export class WatermarkAssignerOperator extends Operator {
  private readonly channels = new Map<string, ChannelWatermark>();
  private current: ChannelWatermark = { maxTimestamp: -Infinity, lastActiveMs: 0, idle: false };
  private seenInBatch = 0;
  private batchNowMs = 0;

  constructor(
    failures: FailureHandler,
    name: string,
    private readonly strategy: WatermarkStrategy<unknown>,
  ) {
    super(failures, name);
  }

  /** Called by the chain before a batch from `channel` reaches this operator. */
  beginBatch(channel: string): void {
    this.batchNowMs = Date.now();
    let state = this.channels.get(channel);
    if (state === undefined) {
      // A new channel holds the watermark back until it delivers (or goes idle).
      state = { maxTimestamp: -Infinity, lastActiveMs: this.batchNowMs, idle: false };
      this.channels.set(channel, state);
    }
    this.current = state;
    this.seenInBatch = 0;
  }

  protected override receive(r: StreamRecord): void {
    const assign = this.strategy.timestampAssigner;
    let timestamp = r.timestamp;
    if (assign !== undefined) {
      try {
        timestamp = assign(r.value, r.timestamp);
      } catch (error) {
        const retried = this.failures.recover(
          error,
          () => assign(r.value, r.timestamp),
          this.name,
          r,
        );
        if (retried === FAILED) return;
        timestamp = retried;
      }
    }
    if (typeof timestamp !== 'number' || !Number.isFinite(timestamp)) {
      this.failures.fail(new InvalidTimestampError(this.failures.stageId, timestamp), 1, r);
      return;
    }
    const current = this.current;
    if (timestamp > current.maxTimestamp) current.maxTimestamp = timestamp;
    this.seenInBatch++;
    this.emit(r.value, r.key, timestamp, r.headers);
  }

  /** Called by the chain after the batch: emits the new watermark, if it moved. */
  endBatch(): void {
    if (this.seenInBatch > 0) {
      this.current.lastActiveMs = this.batchNowMs;
      this.current.idle = false;
      super.markIdle(false);
    }
    this.emitWatermark();
  }

  /** Processing time: channels silent for idleTimeoutMs stop holding the watermark back. */
  tick(nowMs: number): void {
    const timeout = this.strategy.idleTimeoutMs;
    if (timeout === undefined) return;
    let idle = 0;
    for (const channel of this.channels.values()) {
      if (!channel.idle && nowMs - channel.lastActiveMs >= timeout) channel.idle = true;
      if (channel.idle) idle++;
    }
    // Every channel silent: tell downstream unions to stop waiting for this stream.
    if (idle > 0 && idle === this.channels.size) super.markIdle(true);
    this.emitWatermark();
  }

  private emitWatermark(): void {
    let min = Infinity;
    for (const channel of this.channels.values()) {
      if (channel.idle) continue;
      const w = channel.maxTimestamp - this.strategy.maxOutOfOrdernessMs - 1;
      if (w < min) min = w;
    }
    // Every channel idle: hold the watermark where it is (Flink marks the stream idle).
    if (min === Infinity) return;
    super.advanceWatermark(min);
  }

  override advanceWatermark(watermark: number): void {
    if (watermark === Infinity) super.advanceWatermark(watermark);
  }

  /** This operator decides idleness from its own channels; upstream status is ignored. */
  override markIdle(): void {}

  override snapshot(): JsonValue {
    const channels: JsonValue[] = [];
    for (const [name, c] of this.channels) {
      channels.push([name, encodeTime(c.maxTimestamp), c.lastActiveMs, c.idle]);
    }
    return { watermark: encodeTime(this.watermark), channels };
  }

  override restore(state: JsonValue): void {
    const s = state as { watermark: JsonValue; channels: [string, JsonValue, number, boolean][] };
    this.watermark = decodeTime(s.watermark);
    this.channels.clear();
    for (const [name, max, lastActiveMs, idle] of s.channels) {
      this.channels.set(name, { maxTimestamp: decodeTime(max), lastActiveMs, idle });
    }
  }
}
