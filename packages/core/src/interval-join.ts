import type {
  Collector,
  DataStream,
  KeyedProcessContext,
  KeyedProcessFunction,
  OutputTag,
  ValueState,
} from './datastream.js';

/*
 * Event-time interval join (Flink's KeyedStream.intervalJoin and IntervalJoinOperator), built
 * on the existing machinery rather than a second runtime: each side is tagged, the two are
 * unioned (so the join sees the minimum of both sides' watermarks, as Flink's two-input
 * operator does), keyed by the side's own key selector, and joined in a keyed process
 * function. The buffers are that operator's ValueState and the cleanup timers its event-time
 * timers, so checkpoints, restores, key refusal and dead letters are those of keyBy().process.
 */

/** What `process` gets with each joined pair besides the values (Flink's ProcessJoinFunction.Context). */
export interface ProcessJoinContext {
  /** The join key both elements share. */
  readonly key: string;
  readonly leftTimestamp: number;
  readonly rightTimestamp: number;
  /** max(leftTimestamp, rightTimestamp): the timestamp of what `collect` and `output` emit. */
  readonly timestamp: number;
  readonly currentWatermark: number;
  /** Emits to a side output, with the pair's timestamp. */
  output<U>(tag: OutputTag<U>, value: U): void;
}

/** Called once per joined pair; emits through `out` (Flink's ProcessJoinFunction). */
export interface ProcessJoinFunction<L, R, O> {
  processElement(left: L, right: R, ctx: ProcessJoinContext, out: Collector<O>): void;
}

/** `keyedA.intervalJoin(keyedB)`: set the bounds with `between`. */
export interface IntervalJoin<L, R> {
  /**
   * Joins a left element at time `a` with each right element of the same key at time `b`
   * with `a + lowerMs <= b <= a + upperMs` (both bounds inclusive unless made exclusive).
   */
  between(lowerMs: number, upperMs: number): IntervalJoined<L, R>;
}

export interface IntervalJoined<L, R> {
  lowerBoundExclusive(): IntervalJoined<L, R>;
  upperBoundExclusive(): IntervalJoined<L, R>;
  /** Left elements behind the watermark on arrival go here instead of being dropped. */
  sideOutputLeftLateData(tag: OutputTag<L>): IntervalJoined<L, R>;
  /** Right elements behind the watermark on arrival go here instead of being dropped. */
  sideOutputRightLateData(tag: OutputTag<R>): IntervalJoined<L, R>;
  process<O>(fn: ProcessJoinFunction<L, R, O>): DataStream<O>;
}

/** One side of the join as the graph gives it: the stream before keyBy and its key selector. */
export interface IntervalJoinSide<T> {
  stream: DataStream<T>;
  key: (value: T) => string;
}

/** The join's settings once `between` and the modifiers are applied. */
export interface IntervalJoinSettings {
  lowerMs: number;
  upperMs: number;
  lowerInclusive: boolean;
  upperInclusive: boolean;
  leftLateTag?: string;
  rightLateTag?: string;
}

/** An element of either side inside the join: which side (0 left, 1 right) and its value. */
interface Tagged {
  s: 0 | 1;
  v: unknown;
}

/** A buffered element: [timestamp, value] (state must be JSON). */
type Entry = [number, unknown];

/**
 * The builder behind `intervalJoin().between()...`. It uses only the public DataStream API;
 * `graphError` comes from the stream graph so misuse is its DataflowGraphError.
 */
export class IntervalJoinBuilder<L, R> implements IntervalJoin<L, R>, IntervalJoined<L, R> {
  constructor(
    private readonly left: IntervalJoinSide<L>,
    private readonly right: IntervalJoinSide<R>,
    private readonly graphError: (message: string) => Error,
    private readonly settings?: IntervalJoinSettings,
  ) {}

  private with(change: Partial<IntervalJoinSettings>): IntervalJoinBuilder<L, R> {
    const settings = this.settings;
    if (settings === undefined) {
      throw this.graphError('intervalJoin(): call between(lowerMs, upperMs) first.');
    }
    return new IntervalJoinBuilder(this.left, this.right, this.graphError, {
      ...settings,
      ...change,
    });
  }

  between(lowerMs: number, upperMs: number): IntervalJoined<L, R> {
    if (!Number.isSafeInteger(lowerMs) || !Number.isSafeInteger(upperMs) || lowerMs > upperMs) {
      throw this.graphError(
        `intervalJoin().between(lowerMs, upperMs) needs integers with lowerMs <= upperMs (Flink's rule), got ${lowerMs} and ${upperMs}.`,
      );
    }
    return new IntervalJoinBuilder(this.left, this.right, this.graphError, {
      lowerMs,
      upperMs,
      lowerInclusive: true,
      upperInclusive: true,
    });
  }

  lowerBoundExclusive(): IntervalJoined<L, R> {
    return this.with({ lowerInclusive: false });
  }

  upperBoundExclusive(): IntervalJoined<L, R> {
    return this.with({ upperInclusive: false });
  }

  sideOutputLeftLateData(tag: OutputTag<L>): IntervalJoined<L, R> {
    return this.with({ leftLateTag: tag.id });
  }

  sideOutputRightLateData(tag: OutputTag<R>): IntervalJoined<L, R> {
    return this.with({ rightLateTag: tag.id });
  }

  process<O>(fn: ProcessJoinFunction<L, R, O>): DataStream<O> {
    const settings = this.with({});
    if (typeof fn?.processElement !== 'function') {
      throw this.graphError(
        'intervalJoin().process needs { processElement(left, right, ctx, out) }.',
      );
    }
    const leftKey = this.left.key;
    const rightKey = this.right.key;
    const lefts = this.left.stream.map((v): Tagged => ({ s: 0, v }));
    const rights = this.right.stream.map((v): Tagged => ({ s: 1, v }));
    return lefts
      .union(rights)
      .keyBy((t) => (t.s === 0 ? leftKey(t.v as L) : rightKey(t.v as R)))
      .process(
        intervalJoinFunction(settings.settings!, fn as ProcessJoinFunction<unknown, unknown, O>),
      );
  }
}

/** KeyedContext.output takes the timestamp to emit with (core's keyed operator); others ignore it. */
type TimedOutput = (tag: OutputTag<unknown>, value: unknown, timestamp?: number) => void;

/** The pair's context and collector, repointed per pair (no allocation per pair). */
class PairContext<O> implements ProcessJoinContext, Collector<O> {
  key = '';
  leftTimestamp = 0;
  rightTimestamp = 0;
  timestamp = 0;
  currentWatermark = -Infinity;
  ctx: KeyedProcessContext<Tagged> | undefined;
  out: Collector<O> | undefined;

  output<U>(tag: OutputTag<U>, value: U): void {
    (this.ctx!.output as TimedOutput).call(this.ctx, tag, value, this.timestamp);
  }

  collect(value: O, timestamp?: number): void {
    this.out!.collect(value, timestamp ?? this.timestamp);
  }
}

/**
 * Flink's IntervalJoinOperator as a keyed process function over tagged elements. A pair
 * (a, b) joins when `a.ts + lower <= b.ts <= a.ts + upper` (exclusive bounds move by 1 ms).
 * An element behind the watermark on arrival (`ts < watermark`) is late: dropped, or sent to
 * its side's late tag. Each element waits in its side's buffer until the watermark reaches its
 * cleanup time — `ts + upper` on the left when upper > 0, `ts - lower` on the right when
 * lower < 0, else `ts` — after which no element that is not late can join it.
 */
export function intervalJoinFunction<O>(
  settings: IntervalJoinSettings,
  fn: ProcessJoinFunction<unknown, unknown, O>,
): KeyedProcessFunction<Tagged, O> {
  const lower = settings.lowerInclusive ? settings.lowerMs : settings.lowerMs + 1;
  const upper = settings.upperInclusive ? settings.upperMs : settings.upperMs - 1;
  const lateTags: [OutputTag<unknown> | undefined, OutputTag<unknown> | undefined] = [
    settings.leftLateTag === undefined ? undefined : { id: settings.leftLateTag },
    settings.rightLateTag === undefined ? undefined : { id: settings.rightLateTag },
  ];
  const names = ['left', 'right'] as const;
  // Relative bounds of the other side's timestamps, seen from each side (Flink's).
  const relLower = [lower, -upper];
  const relUpper = [upper, -lower];
  const cleanupAfter = (side: 0 | 1, ts: number): number =>
    relUpper[side]! > 0 ? ts + relUpper[side]! : ts;
  const pair = new PairContext<O>();

  return {
    processElement(tagged, ctx, out) {
      const side = tagged.s;
      const ts = ctx.timestamp;
      const watermark = ctx.currentWatermark;
      if (ts < watermark) {
        const tag = lateTags[side];
        if (tag !== undefined) ctx.output(tag, tagged.v);
        return;
      }
      const others = ctx.state<Entry[]>(names[1 - side]!).value();
      if (others !== undefined) {
        pair.key = ctx.key;
        pair.currentWatermark = watermark;
        pair.ctx = ctx;
        pair.out = out;
        const from = ts + relLower[side]!;
        const to = ts + relUpper[side]!;
        for (const [otherTs, other] of others) {
          if (otherTs < from || otherTs > to) continue;
          pair.leftTimestamp = side === 0 ? ts : otherTs;
          pair.rightTimestamp = side === 0 ? otherTs : ts;
          pair.timestamp = Math.max(ts, otherTs);
          if (side === 0) fn.processElement(tagged.v, other, pair, pair);
          else fn.processElement(other, tagged.v, pair, pair);
        }
      }
      // Buffered only once every pair went through: a retried call (the function threw)
      // neither buffers the element twice nor keeps one that ended as a dead letter.
      // A new array each time: a checkpoint may still hold the previous one.
      const ours = ctx.state<Entry[]>(names[side]!);
      ours.update([...(ours.value() ?? []), [ts, tagged.v]]);
      ctx.timerService.registerEventTimeTimer(cleanupAfter(side, ts));
    },
    onTimer(time, ctx) {
      for (const side of [0, 1] as const)
        prune(ctx.state<Entry[]>(names[side]), (ts) => cleanupAfter(side, ts) > time);
    },
  };

  function prune(state: ValueState<Entry[]>, keep: (ts: number) => boolean): void {
    const entries = state.value();
    if (entries === undefined) return;
    const kept = entries.filter(([ts]) => keep(ts));
    if (kept.length === entries.length) return;
    if (kept.length === 0) state.clear();
    else state.update(kept);
  }
}
