import type {
  AggregateFunction,
  AllWindowedStream,
  Collector,
  DataStream,
  KeyedProcessFunction,
  KeyedStream,
  OutputTag,
  ProcessFunction,
  TimeWindow,
  WatermarkStrategy,
  WindowAssigner,
  WindowedStream,
} from './datastream.js';
import { CodefeedrError } from './errors.js';
import {
  ConnectedStreamsBuilder,
  JoinBuilder,
  type ConnectedStreams,
  type JoinedStreams,
} from './connected-streams.js';
import { IntervalJoinBuilder, type IntervalJoin } from './interval-join.js';
import type {
  BroadcastConnectedStream,
  BroadcastProcessFunction,
  BroadcastStream,
  BroadcastTagged,
  KeyedBroadcastConnectedStream,
  KeyedBroadcastProcessFunction,
} from './broadcast-state.js';
import type { MessageType } from './message-type.js';
import type { StreamRecord } from './record.js';

/*
 * The DataStream API only describes a graph: every call appends a node to the stage's
 * StreamGraph. compile-transform.ts turns the graph into fused operators once, when the
 * stage starts. Functions are stored untyped here because a graph mixes element types.
 */

/** A DataStream graph is wrong (foreign stream, bad window settings, ...). Fix the transform's code. */
export class DataflowGraphError extends CodefeedrError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('DATAFLOW_GRAPH_INVALID', message, details);
  }
}

/** Creates a typed tag for side outputs (`ctx.output(tag, value)`, `getSideOutput(tag)`). */
export function outputTag<T>(id: string): OutputTag<T> {
  if (typeof id !== 'string' || id.length === 0) {
    throw new DataflowGraphError(
      'outputTag(id) needs a non-empty string id, e.g. outputTag("late").',
    );
  }
  return Object.freeze({ id }) as OutputTag<T>;
}

/* eslint-disable @typescript-eslint/no-explicit-any -- graph nodes hold functions of every element type */
type AnyFn = (...args: any[]) => any;

export type KeySelector = (value: any) => string;

/** What a reduce/aggregate window hands its result to when it fires, if anything. */
export type ResultWindowFunction = (
  key: string,
  window: TimeWindow,
  result: any,
  out: Collector<any>,
) => void;

export type WindowFunction =
  | { type: 'reduce'; fn: (accumulator: any, value: any) => any; window?: ResultWindowFunction }
  | { type: 'aggregate'; fn: AggregateFunction<any, any, any>; window?: ResultWindowFunction }
  | {
      type: 'process';
      fn: (key: string, window: TimeWindow, values: readonly any[], out: Collector<any>) => void;
    };
/* eslint-enable @typescript-eslint/no-explicit-any */

export interface WindowSpec {
  assigner: WindowAssigner;
  /** Fire-and-purge every `count` elements instead of at the window's end. */
  countTrigger?: number;
  allowedLatenessMs: number;
  lateTag?: string;
  /** windowAll(): one constant key inside, results emitted without a key. */
  nonKeyed?: true;
}

export type StreamNode =
  | { kind: 'source'; inputIndex: number }
  | { kind: 'map'; parent: number; fn: AnyFn }
  | { kind: 'filter'; parent: number; fn: AnyFn }
  | { kind: 'flatMap'; parent: number; fn: AnyFn }
  | { kind: 'process'; parent: number; fn: ProcessFunction<unknown, unknown> }
  | { kind: 'sideOutput'; parent: number; tag: string }
  | { kind: 'union'; parents: number[] }
  | { kind: 'watermarks'; parent: number; strategy: WatermarkStrategy<unknown> }
  | { kind: 'validate'; parent: number; type: MessageType }
  | { kind: 'keyedReduce'; parent: number; keySelector: KeySelector; fn: AnyFn }
  | {
      kind: 'keyedAggregate';
      parent: number;
      keySelector: KeySelector;
      fn: AggregateFunction<unknown, unknown, unknown>;
    }
  | {
      kind: 'keyedProcess';
      parent: number;
      keySelector: KeySelector;
      fn: KeyedProcessFunction<unknown, unknown>;
    }
  | {
      kind: 'window';
      parent: number;
      keySelector: KeySelector;
      spec: WindowSpec;
      fn: WindowFunction;
    }
  /** `.broadcast()`: the stage inputs above it are read whole by every worker. */
  | { kind: 'broadcast'; parent: number }
  | {
      kind: 'broadcastProcess';
      parent: number;
      fn: BroadcastProcessFunction<unknown, unknown, unknown>;
    }
  | {
      kind: 'keyedBroadcastProcess';
      parent: number;
      keySelector: KeySelector;
      fn: KeyedBroadcastProcessFunction<unknown, unknown, unknown>;
    };

/** Node kinds whose operators can emit to side outputs. */
const SIDE_OUTPUT_KINDS = new Set<StreamNode['kind']>([
  'process',
  'keyedProcess',
  'window',
  'broadcastProcess',
  'keyedBroadcastProcess',
]);

export function nodeParents(node: StreamNode): readonly number[] {
  if (node.kind === 'source') return [];
  if (node.kind === 'union') return node.parents;
  return [node.parent];
}

/** A short human name for errors: `map #3`. */
export function describeNode(graph: StreamGraph, id: number): string {
  return `${graph.nodes[id]?.kind ?? 'node'} #${id}`;
}

/** The operator graph of one transform stage, built by DataStream calls. */
export class StreamGraph {
  readonly nodes: StreamNode[] = [];

  add(node: StreamNode): number {
    this.nodes.push(node);
    return this.nodes.length - 1;
  }

  source<T>(inputIndex: number): DataStream<T> {
    return new DataStreamNode<T>(this, this.add({ kind: 'source', inputIndex }));
  }
}

function checkFunction(value: unknown, what: string): void {
  if (typeof value !== 'function') {
    throw new DataflowGraphError(`${what} needs a function, got ${typeof value}.`);
  }
}

export class DataStreamNode<T> implements DataStream<T> {
  constructor(
    readonly graph: StreamGraph,
    readonly nodeId: number,
  ) {}

  private then<U>(node: StreamNode): DataStream<U> {
    return new DataStreamNode<U>(this.graph, this.graph.add(node));
  }

  map<U>(fn: (value: T, record: StreamRecord<T>) => U): DataStream<U> {
    checkFunction(fn, 'map');
    return this.then({ kind: 'map', parent: this.nodeId, fn });
  }

  filter<S extends T>(fn: (value: T, record: StreamRecord<T>) => value is S): DataStream<S>;
  filter(fn: (value: T, record: StreamRecord<T>) => boolean): DataStream<T>;
  filter(fn: (value: T, record: StreamRecord<T>) => boolean): DataStream<T> {
    checkFunction(fn, 'filter');
    return this.then({ kind: 'filter', parent: this.nodeId, fn });
  }

  flatMap<U>(fn: (value: T, out: Collector<U>, record: StreamRecord<T>) => void): DataStream<U> {
    checkFunction(fn, 'flatMap');
    return this.then({ kind: 'flatMap', parent: this.nodeId, fn });
  }

  keyBy(fn: (value: T) => string): KeyedStream<T> {
    checkFunction(fn, 'keyBy');
    return new KeyedStreamNode<T>(this.graph, this.nodeId, fn as (value: unknown) => string);
  }

  windowAll(assigner: WindowAssigner): AllWindowedStream<T> {
    checkAssigner(assigner);
    // The keyed path with one key: same operator, state and checkpoints as keyBy(() => '').
    return new AllWindowedStreamNode<T>(
      new WindowedStreamNode<T>(this.graph, this.nodeId, ALL_KEY, {
        assigner,
        allowedLatenessMs: 0,
        nonKeyed: true,
      }),
    );
  }

  connect<U>(other: BroadcastStream<U>): BroadcastConnectedStream<T, U>;
  connect<U>(other: DataStream<U>): ConnectedStreams<T, U>;
  connect<U>(
    other: DataStream<U> | BroadcastStream<U>,
  ): ConnectedStreams<T, U> | BroadcastConnectedStream<T, U> {
    if (other instanceof BroadcastStreamNode) {
      const tagged = broadcastTagged(this, other, this.graph);
      return {
        process: <O>(fn: BroadcastProcessFunction<T, U, O>): DataStream<O> => {
          checkBroadcastFunction(fn, 'connect(broadcast).process');
          return new DataStreamNode<O>(
            this.graph,
            this.graph.add({
              kind: 'broadcastProcess',
              parent: tagged,
              fn: fn as BroadcastProcessFunction<unknown, unknown, unknown>,
            }),
          );
        },
      };
    }
    return new ConnectedStreamsBuilder<T, U>(
      this,
      this.sameGraph(other as DataStream<U>, 'connect') as unknown as DataStream<U>,
      (message) => new DataflowGraphError(message),
    );
  }

  join<U>(other: DataStream<U>): JoinedStreams<T, U> {
    return new JoinBuilder<T, U>(
      this,
      this.sameGraph(other, 'join') as unknown as DataStream<U>,
      (message) => new DataflowGraphError(message),
    );
  }

  broadcast(): BroadcastStream<T> {
    return new BroadcastStreamNode<T>(
      this.graph,
      this.graph.add({ kind: 'broadcast', parent: this.nodeId }),
    );
  }

  union(...others: DataStream<T>[]): DataStream<T> {
    const parents = [this.nodeId];
    for (const other of others) parents.push(this.sameGraph(other, 'union').nodeId);
    return this.then({ kind: 'union', parents });
  }

  process<U>(fn: ProcessFunction<T, U>): DataStream<U> {
    checkFunction(fn?.processElement, 'process (processElement)');
    return this.then({
      kind: 'process',
      parent: this.nodeId,
      fn: fn as ProcessFunction<unknown, unknown>,
    });
  }

  getSideOutput<U>(tag: OutputTag<U>): DataStream<U> {
    const node = this.graph.nodes[this.nodeId]!;
    if (!SIDE_OUTPUT_KINDS.has(node.kind)) {
      throw new DataflowGraphError(
        `getSideOutput("${tag.id}") was called on a ${node.kind} stream; only process(), keyBy().process() and window() streams have side outputs.`,
      );
    }
    return this.then({ kind: 'sideOutput', parent: this.nodeId, tag: tag.id });
  }

  assignTimestampsAndWatermarks(strategy: WatermarkStrategy<T>): DataStream<T> {
    if (!(strategy.maxOutOfOrdernessMs >= 0)) {
      throw new DataflowGraphError(
        'assignTimestampsAndWatermarks needs maxOutOfOrdernessMs >= 0 (e.g. { maxOutOfOrdernessMs: 5000 }).',
      );
    }
    if (strategy.idleTimeoutMs !== undefined && !(strategy.idleTimeoutMs > 0)) {
      throw new DataflowGraphError('idleTimeoutMs must be > 0 when set.');
    }
    return this.then({
      kind: 'watermarks',
      parent: this.nodeId,
      strategy: strategy as WatermarkStrategy<unknown>,
    });
  }

  validate(type: MessageType<T>): DataStream<T> {
    return this.then({ kind: 'validate', parent: this.nodeId, type: type as MessageType });
  }

  private sameGraph(other: DataStream<unknown>, what: string): DataStreamNode<unknown> {
    if (!(other instanceof DataStreamNode) || other.graph !== this.graph) {
      throw new DataflowGraphError(
        `${what}() got a stream from another stage; streams can only be combined inside one transform.`,
      );
    }
    return other;
  }
}

export class KeyedStreamNode<T> implements KeyedStream<T> {
  constructor(
    readonly graph: StreamGraph,
    readonly parent: number,
    readonly keySelector: KeySelector,
  ) {}

  private then<U>(node: StreamNode): DataStream<U> {
    return new DataStreamNode<U>(this.graph, this.graph.add(node));
  }

  reduce(fn: (accumulator: T, value: T) => T): DataStream<T> {
    checkFunction(fn, 'reduce');
    return this.then({
      kind: 'keyedReduce',
      parent: this.parent,
      keySelector: this.keySelector,
      fn,
    });
  }

  aggregate<A, R>(fn: AggregateFunction<T, A, R>): DataStream<R> {
    checkAggregate(fn);
    return this.then({
      kind: 'keyedAggregate',
      parent: this.parent,
      keySelector: this.keySelector,
      fn: fn as AggregateFunction<unknown, unknown, unknown>,
    });
  }

  process<U>(fn: KeyedProcessFunction<T, U>): DataStream<U> {
    checkFunction(fn?.processElement, 'keyBy().process (processElement)');
    return this.then({
      kind: 'keyedProcess',
      parent: this.parent,
      keySelector: this.keySelector,
      fn: fn as KeyedProcessFunction<unknown, unknown>,
    });
  }

  window(assigner: WindowAssigner): WindowedStream<T> {
    checkAssigner(assigner);
    return new WindowedStreamNode<T>(this.graph, this.parent, this.keySelector, {
      assigner,
      allowedLatenessMs: 0,
    });
  }

  connect<U>(other: BroadcastStream<U>): KeyedBroadcastConnectedStream<T, U> {
    if (!(other instanceof BroadcastStreamNode))
      throw new DataflowGraphError(
        'keyBy().connect() takes a broadcast stream (`input.broadcast()`); to connect two keyed streams use `a.connect(b).keyBy(keyA, keyB)`.',
      );
    const main = new DataStreamNode<T>(this.graph, this.parent);
    const tagged = broadcastTagged(main, other, this.graph);
    const keySelector = this.keySelector;
    return {
      process: <O>(fn: KeyedBroadcastProcessFunction<T, U, O>): DataStream<O> => {
        checkBroadcastFunction(fn, 'keyBy().connect(broadcast).process');
        return new DataStreamNode<O>(
          this.graph,
          this.graph.add({
            kind: 'keyedBroadcastProcess',
            parent: tagged,
            keySelector,
            fn: fn as KeyedBroadcastProcessFunction<unknown, unknown, unknown>,
          }),
        );
      },
    };
  }

  intervalJoin<U>(other: KeyedStream<U>): IntervalJoin<T, U> {
    if (!(other instanceof KeyedStreamNode) || other.graph !== this.graph) {
      throw new DataflowGraphError(
        'intervalJoin() got a keyed stream from another stage; streams can only be joined inside one transform.',
      );
    }
    return new IntervalJoinBuilder<T, U>(
      { stream: new DataStreamNode<T>(this.graph, this.parent), key: this.keySelector },
      { stream: new DataStreamNode<U>(this.graph, other.parent), key: other.keySelector },
      (message) => new DataflowGraphError(message),
    );
  }
}

/** `input.broadcast()`: the second argument of `connect()`. */
export class BroadcastStreamNode<T> implements BroadcastStream<T> {
  readonly kind = 'broadcast' as const;
  constructor(
    readonly graph: StreamGraph,
    readonly nodeId: number,
  ) {}
}

/** Both sides tagged (0 the stream, 1 the broadcast one) and unioned: the node id of the union. */
function broadcastTagged(
  main: DataStreamNode<unknown>,
  broadcast: BroadcastStreamNode<unknown>,
  graph: StreamGraph,
): number {
  if (broadcast.graph !== graph)
    throw new DataflowGraphError(
      'connect() got a broadcast stream from another stage; streams can only be combined inside one transform.',
    );
  const first = graph.add({
    kind: 'map',
    parent: main.nodeId,
    fn: (v: unknown): BroadcastTagged => ({ s: 0, v }),
  });
  const second = graph.add({
    kind: 'map',
    parent: broadcast.nodeId,
    fn: (v: unknown): BroadcastTagged => ({ s: 1, v }),
  });
  return graph.add({ kind: 'union', parents: [first, second] });
}

function checkBroadcastFunction(
  fn: { processElement?: unknown; processBroadcastElement?: unknown } | undefined,
  what: string,
): void {
  checkFunction(fn?.processElement, `${what} (processElement)`);
  checkFunction(fn?.processBroadcastElement, `${what} (processBroadcastElement)`);
}

function checkAggregate(fn: AggregateFunction<unknown, unknown, unknown>): void {
  checkFunction(fn?.createAccumulator, 'aggregate (createAccumulator)');
  checkFunction(fn.add, 'aggregate (add)');
  checkFunction(fn.getResult, 'aggregate (getResult)');
}

function checkAssigner(assigner: WindowAssigner): void {
  const positive = (n: unknown): boolean => typeof n === 'number' && Number.isFinite(n) && n > 0;
  // Flink's bound: |offset| < size (tumbling) or slide (sliding).
  const offsetFits = (offset: unknown, below: number): boolean =>
    offset === undefined ||
    (typeof offset === 'number' && Number.isFinite(offset) && Math.abs(offset) < below);
  switch (assigner?.type) {
    case 'tumbling':
      if (!positive(assigner.sizeMs) || !offsetFits(assigner.offsetMs, assigner.sizeMs)) break;
      return;
    case 'sliding':
      if (!positive(assigner.sizeMs) || !positive(assigner.slideMs)) break;
      if (!offsetFits(assigner.offsetMs, assigner.slideMs)) break;
      return;
    case 'session':
      if (!positive(assigner.gapMs)) break;
      return;
    case 'global':
      return;
  }
  throw new DataflowGraphError(
    `Invalid window assigner ${JSON.stringify(assigner)}: use { type: 'tumbling', sizeMs, offsetMs? }, { type: 'sliding', sizeMs, slideMs, offsetMs? }, { type: 'session', gapMs } (sizes > 0, |offsetMs| < sizeMs or slideMs) or { type: 'global' }.`,
  );
}

export class WindowedStreamNode<T> implements WindowedStream<T> {
  constructor(
    readonly graph: StreamGraph,
    readonly parent: number,
    readonly keySelector: KeySelector,
    readonly spec: WindowSpec,
  ) {}

  private with(change: Partial<WindowSpec>): WindowedStream<T> {
    return new WindowedStreamNode<T>(this.graph, this.parent, this.keySelector, {
      ...this.spec,
      ...change,
    });
  }

  private then<U>(fn: WindowFunction): DataStream<U> {
    return new DataStreamNode<U>(
      this.graph,
      this.graph.add({
        kind: 'window',
        parent: this.parent,
        keySelector: this.keySelector,
        spec: this.spec,
        fn,
      }),
    );
  }

  countTrigger(count: number): WindowedStream<T> {
    if (!Number.isInteger(count) || count < 1) {
      throw new DataflowGraphError(`countTrigger(count) needs an integer >= 1, got ${count}.`);
    }
    return this.with({ countTrigger: count });
  }

  allowedLateness(ms: number): WindowedStream<T> {
    if (!(ms >= 0) || !Number.isFinite(ms)) {
      throw new DataflowGraphError(`allowedLateness(ms) needs a finite number >= 0, got ${ms}.`);
    }
    return this.with({ allowedLatenessMs: ms });
  }

  sideOutputLateData(tag: OutputTag<T>): WindowedStream<T> {
    return this.with({ lateTag: tag.id });
  }

  reduce(fn: (accumulator: T, value: T) => T): DataStream<T>;
  reduce<U>(
    fn: (accumulator: T, value: T) => T,
    windowFunction: (key: string, window: TimeWindow, result: T, out: Collector<U>) => void,
  ): DataStream<U>;
  reduce<U>(
    fn: (accumulator: T, value: T) => T,
    windowFunction?: (key: string, window: TimeWindow, result: T, out: Collector<U>) => void,
  ): DataStream<T> | DataStream<U> {
    checkFunction(fn, 'window reduce');
    if (windowFunction !== undefined) checkFunction(windowFunction, 'window reduce windowFunction');
    return this.then<T>({
      type: 'reduce',
      fn,
      ...(windowFunction === undefined ? {} : { window: windowFunction }),
    });
  }

  aggregate<A, R>(fn: AggregateFunction<T, A, R>): DataStream<R>;
  aggregate<A, R, U>(
    fn: AggregateFunction<T, A, R>,
    windowFunction: (key: string, window: TimeWindow, result: R, out: Collector<U>) => void,
  ): DataStream<U>;
  aggregate<A, R, U>(
    fn: AggregateFunction<T, A, R>,
    windowFunction?: (key: string, window: TimeWindow, result: R, out: Collector<U>) => void,
  ): DataStream<R> | DataStream<U> {
    checkAggregate(fn as AggregateFunction<unknown, unknown, unknown>);
    if (this.spec.assigner.type === 'session' && typeof fn.merge !== 'function') {
      throw new DataflowGraphError(
        'Session windows merge, so aggregate() on them needs a merge(a, b) function in the AggregateFunction.',
      );
    }
    if (windowFunction !== undefined)
      checkFunction(windowFunction, 'window aggregate windowFunction');
    return this.then<R>({
      type: 'aggregate',
      fn,
      ...(windowFunction === undefined ? {} : { window: windowFunction }),
    });
  }

  process<U>(
    fn: (key: string, window: TimeWindow, values: readonly T[], out: Collector<U>) => void,
  ): DataStream<U> {
    checkFunction(fn, 'window process');
    return this.then({ type: 'process', fn });
  }
}

/** windowAll's key: every record gets it, so the keyed window operator holds one pane. */
const ALL_KEY: KeySelector = () => '';

/** windowAll(): the keyed WindowedStream with one key, its process function without the key. */
export class AllWindowedStreamNode<T> implements AllWindowedStream<T> {
  constructor(private readonly keyed: WindowedStream<T>) {}

  countTrigger(count: number): AllWindowedStream<T> {
    return new AllWindowedStreamNode<T>(this.keyed.countTrigger(count));
  }

  allowedLateness(ms: number): AllWindowedStream<T> {
    return new AllWindowedStreamNode<T>(this.keyed.allowedLateness(ms));
  }

  sideOutputLateData(tag: OutputTag<T>): AllWindowedStream<T> {
    return new AllWindowedStreamNode<T>(this.keyed.sideOutputLateData(tag));
  }

  reduce(fn: (accumulator: T, value: T) => T): DataStream<T>;
  reduce<U>(
    fn: (accumulator: T, value: T) => T,
    windowFunction: (window: TimeWindow, result: T, out: Collector<U>) => void,
  ): DataStream<U>;
  reduce<U>(
    fn: (accumulator: T, value: T) => T,
    windowFunction?: (window: TimeWindow, result: T, out: Collector<U>) => void,
  ): DataStream<T> | DataStream<U> {
    if (windowFunction === undefined) return this.keyed.reduce(fn);
    checkFunction(windowFunction, 'windowAll reduce windowFunction');
    return this.keyed.reduce<U>(fn, (_key, window, result, out) =>
      windowFunction(window, result, out),
    );
  }

  aggregate<A, R>(fn: AggregateFunction<T, A, R>): DataStream<R>;
  aggregate<A, R, U>(
    fn: AggregateFunction<T, A, R>,
    windowFunction: (window: TimeWindow, result: R, out: Collector<U>) => void,
  ): DataStream<U>;
  aggregate<A, R, U>(
    fn: AggregateFunction<T, A, R>,
    windowFunction?: (window: TimeWindow, result: R, out: Collector<U>) => void,
  ): DataStream<R> | DataStream<U> {
    if (windowFunction === undefined) return this.keyed.aggregate(fn);
    checkFunction(windowFunction, 'windowAll aggregate windowFunction');
    return this.keyed.aggregate<A, R, U>(fn, (_key, window, result, out) =>
      windowFunction(window, result, out),
    );
  }

  process<U>(
    fn: (window: TimeWindow, values: readonly T[], out: Collector<U>) => void,
  ): DataStream<U> {
    checkFunction(fn, 'windowAll process');
    return this.keyed.process((_key, window, values, out) => fn(window, values, out));
  }
}
