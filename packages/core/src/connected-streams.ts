import type {
  Collector,
  DataStream,
  KeyedStateAccess,
  OnTimerContext,
  OutputTag,
  TimeWindow,
  TimerService,
  WindowAssigner,
} from './datastream.js';

/*
 * Two-input operators (Flink's ConnectedStreams, CoProcessFunction, KeyedCoProcessFunction
 * and the window join), built as the interval join is: each side is tagged, the two are
 * unioned — so the operator sees the minimum of both sides' watermarks, as Flink's two-input
 * operators do — and handled by one process, keyed process or window function. State,
 * timers, checkpoints, partition shards and dead letters are therefore those of the
 * one-input operators. A record that fails is dead-lettered as the original record of its
 * input (the chain keeps each input record, not the tagged form the operator sees).
 */

/** What both elements functions of a CoProcessFunction get (Flink's CoProcessFunction.Context). */
export interface CoProcessContext {
  /** The element's event time. */
  readonly timestamp: number;
  readonly currentWatermark: number;
  output<U>(tag: OutputTag<U>, value: U): void;
}

/** `a.connect(b).process(fn)`: one function over two streams of different types. */
export interface CoProcessFunction<A, B, O> {
  processElement1(value: A, ctx: CoProcessContext, out: Collector<O>): void;
  processElement2(value: B, ctx: CoProcessContext, out: Collector<O>): void;
}

/** The context of a keyed co-process function: the key, its keyed state and timers. */
export interface KeyedCoProcessContext extends CoProcessContext, KeyedStateAccess {
  readonly key: string;
  readonly timerService: TimerService;
}

/**
 * `a.connect(b).keyBy(keyA, keyB).process(fn)`: both sides share each key's state and timers
 * (Flink's KeyedCoProcessFunction), e.g. a rules stream and an events stream by account.
 */
export interface KeyedCoProcessFunction<A, B, O> {
  processElement1(value: A, ctx: KeyedCoProcessContext, out: Collector<O>): void;
  processElement2(value: B, ctx: KeyedCoProcessContext, out: Collector<O>): void;
  onTimer?(timestamp: number, ctx: OnTimerContext, out: Collector<O>): void;
}

export interface ConnectedStreams<A, B> {
  /** Keys each side with its own selector; elements of both with one key meet in one state. */
  keyBy(keyA: (value: A) => string, keyB: (value: B) => string): KeyedConnectedStreams<A, B>;
  process<O>(fn: CoProcessFunction<A, B, O>): DataStream<O>;
}

export interface KeyedConnectedStreams<A, B> {
  process<O>(fn: KeyedCoProcessFunction<A, B, O>): DataStream<O>;
}

/** `a.join(b).where(keyA).equalTo(keyB).window(assigner).apply(fn)` (Flink's window join). */
export interface JoinedStreams<A, B> {
  where(keyA: (value: A) => string): {
    equalTo(keyB: (value: B) => string): {
      window(assigner: WindowAssigner): WindowJoin<A, B>;
    };
  };
}

export interface WindowJoin<A, B> {
  /**
   * Every pair of a first-side and a second-side element with the same key in the same
   * window, when the window fires; emitted at the window's last timestamp. A window with
   * elements of one side only emits nothing (an inner join).
   */
  apply<O>(fn: (first: A, second: B, window: TimeWindow) => O): DataStream<O>;
}

/** An element of either side: which side (0 first, 1 second) and its value. */
interface Tagged {
  s: 0 | 1;
  v: unknown;
}

const checkFunction = (fn: unknown, what: string, error: (message: string) => Error): void => {
  if (typeof fn !== 'function') throw error(`${what} must be a function, got ${typeof fn}.`);
};

function tagged<A, B>(first: DataStream<A>, second: DataStream<B>): DataStream<Tagged> {
  return first.map((v): Tagged => ({ s: 0, v })).union(second.map((v): Tagged => ({ s: 1, v })));
}

/** The builder behind `connect()`, on the public DataStream API only. */
export class ConnectedStreamsBuilder<A, B> implements ConnectedStreams<A, B> {
  constructor(
    private readonly first: DataStream<A>,
    private readonly second: DataStream<B>,
    private readonly graphError: (message: string) => Error,
  ) {}

  keyBy(keyA: (value: A) => string, keyB: (value: B) => string): KeyedConnectedStreams<A, B> {
    checkFunction(keyA, 'connect().keyBy(keyA, keyB): keyA', this.graphError);
    checkFunction(keyB, 'connect().keyBy(keyA, keyB): keyB', this.graphError);
    const { first, second, graphError } = this;
    return {
      process<O>(fn: KeyedCoProcessFunction<A, B, O>): DataStream<O> {
        checkFunction(fn?.processElement1, 'connect().process: processElement1', graphError);
        checkFunction(fn.processElement2, 'connect().process: processElement2', graphError);
        const onTimer = fn.onTimer;
        return tagged(first, second)
          .keyBy((t) => (t.s === 0 ? keyA(t.v as A) : keyB(t.v as B)))
          .process<O>({
            processElement: (t, ctx, out) =>
              t.s === 0
                ? fn.processElement1(t.v as A, ctx, out)
                : fn.processElement2(t.v as B, ctx, out),
            ...(onTimer === undefined
              ? {}
              : { onTimer: (time: number, ctx, out) => onTimer.call(fn, time, ctx, out) }),
          });
      },
    };
  }

  process<O>(fn: CoProcessFunction<A, B, O>): DataStream<O> {
    checkFunction(fn?.processElement1, 'connect().process: processElement1', this.graphError);
    checkFunction(fn.processElement2, 'connect().process: processElement2', this.graphError);
    return tagged(this.first, this.second).process<O>({
      processElement: (t, ctx, out) =>
        t.s === 0 ? fn.processElement1(t.v as A, ctx, out) : fn.processElement2(t.v as B, ctx, out),
    });
  }
}

/** The builder behind `join()`: a keyed window over both sides, pairs per window. */
export class JoinBuilder<A, B> implements JoinedStreams<A, B> {
  constructor(
    private readonly first: DataStream<A>,
    private readonly second: DataStream<B>,
    private readonly graphError: (message: string) => Error,
  ) {}

  where(keyA: (value: A) => string) {
    const { first, second, graphError } = this;
    checkFunction(keyA, 'join().where(keyA)', graphError);
    return {
      equalTo(keyB: (value: B) => string) {
        checkFunction(keyB, 'join().where().equalTo(keyB)', graphError);
        return {
          window(assigner: WindowAssigner): WindowJoin<A, B> {
            return {
              apply<O>(fn: (first: A, second: B, window: TimeWindow) => O): DataStream<O> {
                checkFunction(fn, 'join()...apply(fn)', graphError);
                return tagged(first, second)
                  .keyBy((t) => (t.s === 0 ? keyA(t.v as A) : keyB(t.v as B)))
                  .window(assigner)
                  .process<O>((_key, window, values, out) => {
                    // Pairs in arrival order of each side, first side outermost (as Flink).
                    const seconds: unknown[] = [];
                    for (const t of values) if (t.s === 1) seconds.push(t.v);
                    if (seconds.length === 0) return;
                    for (const t of values) {
                      if (t.s !== 0) continue;
                      for (const b of seconds) out.collect(fn(t.v as A, b as B, window));
                    }
                  });
              },
            };
          },
        };
      },
    };
  }
}
