import type { WatermarkStrategy } from './datastream.js';
import { CodefeedrError } from './errors.js';
import {
  decodeTime,
  encodeTime,
  FAILED,
  type FailureHandler,
  Operator,
  restoredTime,
  type StateFilter,
} from './operators.js';
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
  /** The stage input the channel feeds: assignments are per input. */
  input: number;
  maxTimestamp: number;
  /** Processing time of its last records, or of its assignment: its idle timer starts there. */
  lastActiveMs: number;
  idle: boolean;
}

const channelKey = (input: number, channel: string): string => `${input}:${channel}`;

/**
 * assignTimestampsAndWatermarks(): bounded out-of-orderness per channel (a buffer partition
 * or an upstream stage), the minimum over channels that are not idle, as Flink's Kafka
 * source does per split. Like Flink, watermark = max timestamp - bound - 1, emitted once per
 * batch (Flink emits periodically); upstream watermarks are swallowed, except the end-of-input
 * one. A channel counts from its assignment (`assignChannels`; at -inf until it delivers or
 * goes idle) or, if never assigned, from its first batch; a revoked channel stops counting.
 * Idleness is timed from the assignment, and with no channel at all from creation (Flink's
 * withIdleness), so an input that never delivers stops holding a union back.
 */
export class WatermarkAssignerOperator extends Operator {
  private readonly channels = new Map<string, ChannelWatermark>();
  private current: ChannelWatermark = {
    input: -1,
    maxTimestamp: -Infinity,
    lastActiveMs: 0,
    idle: false,
  };
  private seenInBatch = 0;
  private batchNowMs = 0;
  /** Since when there has been no channel (creation, or the revocation of the last one). */
  private noChannelsSinceMs: number;

  constructor(
    failures: FailureHandler,
    name: string,
    private readonly strategy: WatermarkStrategy<unknown>,
    private readonly clock: () => number = Date.now,
  ) {
    super(failures, name);
    this.noChannelsSinceMs = clock();
  }

  /** Called by the chain before a batch from `channel` of stage input `input` reaches this operator. */
  beginBatch(input: number, channel: string): void {
    this.batchNowMs = this.clock();
    const key = channelKey(input, channel);
    let state = this.channels.get(key);
    if (state === undefined) {
      // Never assigned: it counts from now, and holds the watermark back until it delivers.
      state = this.addChannel(key, input, this.batchNowMs);
    }
    this.current = state;
    this.seenInBatch = 0;
  }

  /**
   * The channels of stage input `input` now (partitions assigned to this consumer, or the
   * upstream stage): new ones count from now at -inf, channels no longer listed are dropped.
   */
  assignChannels(input: number, channels: readonly string[]): void {
    const now = this.clock();
    const hadChannels = this.channels.size > 0;
    const wanted = new Set(channels.map((c) => channelKey(input, c)));
    for (const [key, channel] of this.channels) {
      if (channel.input === input && !wanted.has(key)) this.channels.delete(key);
    }
    for (const key of wanted) if (!this.channels.has(key)) this.addChannel(key, input, now);
    if (hadChannels && this.channels.size === 0) this.noChannelsSinceMs = now;
    this.updateStatus(now);
    // A revoked channel may have been the one holding event time back.
    this.emitWatermark();
  }

  private addChannel(key: string, input: number, nowMs: number): ChannelWatermark {
    const state = { input, maxTimestamp: -Infinity, lastActiveMs: nowMs, idle: false };
    this.channels.set(key, state);
    return state;
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
    for (const channel of this.channels.values()) {
      if (!channel.idle && nowMs - channel.lastActiveMs >= timeout) channel.idle = true;
    }
    this.updateStatus(nowMs);
    this.emitWatermark();
  }

  /**
   * Tells downstream unions whether to wait for this stream: not when every channel is idle,
   * nor when there has been no channel for idleTimeoutMs (an input with nothing assigned).
   */
  private updateStatus(nowMs: number): void {
    let idle = true;
    if (this.channels.size === 0) {
      const timeout = this.strategy.idleTimeoutMs;
      idle = timeout !== undefined && nowMs - this.noChannelsSinceMs >= timeout;
    } else {
      for (const channel of this.channels.values()) {
        if (!channel.idle) {
          idle = false;
          break;
        }
      }
    }
    super.markIdle(idle);
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

  override snapshot(filter?: StateFilter): JsonValue {
    const channels: JsonValue[] = [];
    for (const [name, c] of this.channels) {
      if (filter !== undefined && !filter.channel(name.slice(name.indexOf(':') + 1))) continue;
      channels.push([name, encodeTime(c.maxTimestamp), c.lastActiveMs, c.idle]);
    }
    return { watermark: encodeTime(this.watermark), channels };
  }

  override restore(state: JsonValue, merge = false): void {
    const s = state as { watermark: JsonValue; channels: [string, JsonValue, number, boolean][] };
    this.watermark = restoredTime(this.watermark, s.watermark, merge);
    if (!merge) this.channels.clear();
    // Idleness is timed from the restore (as from creation), not from the processing time
    // written in the checkpoint: a restarted stage gives every channel its full timeout.
    const now = this.clock();
    for (const [name, max] of s.channels) {
      const held = this.channels.get(name);
      if (held !== undefined && held.maxTimestamp >= decodeTime(max)) continue;
      const input = Number(name.slice(0, name.indexOf(':')));
      this.channels.set(name, {
        input,
        maxTimestamp: decodeTime(max),
        lastActiveMs: now,
        idle: false,
      });
    }
    this.noChannelsSinceMs = now;
  }
}
