import { CodefeedrError } from './errors.js';
import {
  KeyedAggregateOperator,
  KeyedProcessOperator,
  KeyedReduceOperator,
} from './keyed-operators.js';
import type { CompileOptions, CompileTransform, OperatorChain } from './operator-chain.js';
import {
  FailureHandler,
  FanOut,
  FilterOperator,
  FlatMapOperator,
  ForwardOperator,
  MapOperator,
  type Operator,
  OutputCollector,
  ProcessOperator,
  UnionOperator,
  ValidateOperator,
  type Downstream,
  type StateFilter,
} from './operators.js';
import type { JsonValue, StreamRecord } from './record.js';
import { freshCopy } from './operator-specialization.js';
import {
  type KeyedMap,
  memoryStateBackend,
  type OperatorStateBackend,
  type StateBackend,
} from './keyed-map.js';
import { SOURCE_ERROR_HEADER } from './reserved-headers.js';
import type { DataStreams, StageContext, TransformStage } from './stage.js';
import {
  DataflowGraphError,
  DataStreamNode,
  describeNode,
  nodeParents,
  StreamGraph,
  type StreamNode,
} from './stream-graph.js';
import { WatermarkAssignerOperator } from './watermark-assigner.js';
import { WindowOperator } from './windows.js';
import { NamedOutputError } from './named-outputs.js';
import { BroadcastProcessOperator, KeyedBroadcastProcessOperator } from './broadcast-state.js';

/** A checkpoint does not fit this transform's operator graph (the code changed). */
export class StateRestoreError extends CodefeedrError {
  constructor(stageId: string, problem: string) {
    super(
      'STATE_INCOMPATIBLE',
      `Stage "${stageId}" cannot restore its checkpoint: ${problem}. The transform's operators changed since the checkpoint was taken; restore with the code that wrote it, or start the stage without its old state.`,
      { stageId },
    );
  }
}

const NO_DOWNSTREAM: Downstream = { push() {}, advanceWatermark() {}, markIdle() {} };
const STATE_VERSION = 1;

/**
 * Builds the stage's DataStream graph once and fuses it into operators that push records
 * into each other synchronously (see operators.ts). Only nodes that feed the stage's output
 * are compiled.
 */
export const compileTransform: CompileTransform = (stage, ctx, options) => {
  const graph = new StreamGraph();
  const inputs = stage.inputTypes.map((_, i) => graph.source(i));
  const result = (stage as TransformStage<readonly unknown[], unknown>).transform(
    inputs as unknown as DataStreams<readonly unknown[]>,
    ctx,
  );
  const { main, named } = outputNodes(stage, graph, result);
  return new CompiledChain(graph, main, named, stage.inputTypes.length, ctx, options);
};

/** The node of the main output and, in declared order, those of the named outputs. */
function outputNodes(
  stage: TransformStage,
  graph: StreamGraph,
  result: unknown,
): { main: number; named: { name: string; node: number }[] } {
  const nodeOf = (stream: unknown, what: string): number => {
    if (!(stream instanceof DataStreamNode) || stream.graph !== graph) {
      throw new DataflowGraphError(
        `Stage "${stage.id}": transform() must return a DataStream derived from its inputs${what} (got ${typeof stream}).`,
      );
    }
    return stream.nodeId;
  };
  const declared = Object.keys(stage.outputs ?? {});
  if (declared.length === 0) {
    if (typeof result === 'object' && result !== null && 'main' in result)
      throw new NamedOutputError(
        `Stage "${stage.id}"`,
        'transform() returned several outputs but the stage declares no named outputs',
      );
    return { main: nodeOf(result, ''), named: [] };
  }
  if (result instanceof DataStreamNode || typeof result !== 'object' || result === null)
    throw new NamedOutputError(
      `Stage "${stage.id}"`,
      `it declares the outputs ${declared.join(', ')} but transform() returned ${result instanceof DataStreamNode ? 'a single stream' : typeof result}`,
    );
  const returned = result as Record<string, unknown>;
  const extra = Object.keys(returned).filter((n) => n !== 'main' && !declared.includes(n));
  const missing = declared.filter((n) => returned[n] === undefined);
  if (!('main' in returned) || extra.length > 0 || missing.length > 0)
    throw new NamedOutputError(
      `Stage "${stage.id}"`,
      [
        'main' in returned ? '' : 'transform() returned no `main` stream',
        extra.length > 0 ? `it returned undeclared outputs ${extra.join(', ')}` : '',
        missing.length > 0 ? `it returned no stream for the declared ${missing.join(', ')}` : '',
      ]
        .filter((p) => p !== '')
        .join('; '),
    );
  return {
    main: nodeOf(returned.main, ' as `main`'),
    named: declared.map((name) => ({ name, node: nodeOf(returned[name], ` as \`${name}\``) })),
  };
}

/** Node kinds whose operators keep state per key (what partition state shards split). */
const KEYED_KINDS = new Set([
  'keyedReduce',
  'keyedAggregate',
  'keyedProcess',
  'window',
  'keyedBroadcastProcess',
]);
/** Node kinds a broadcast input may pass through on its way to `broadcast()`: stateless ones. */
const BROADCAST_PATH_KINDS = new Set([
  'source',
  'map',
  'filter',
  'flatMap',
  'process',
  'union',
  'watermarks',
  'validate',
]);

class CompiledChain implements OperatorChain {
  private readonly failures: FailureHandler;
  private readonly collector = new OutputCollector();
  /** One per named output, in declared order. */
  private readonly namedCollectors: OutputCollector[];
  readonly outputNames: readonly string[];
  private readonly operators = new Map<number, Operator>();
  /** inputIndex -> where its records enter (undefined: the input does not reach the output). */
  private readonly heads: (Operator | undefined)[];
  /** inputIndex -> watermark assigners its records reach. */
  private readonly assignersByInput: WatermarkAssignerOperator[][];
  private readonly assigners: WatermarkAssignerOperator[] = [];
  /** Operators with processing-time timers or windows, ticked after the assigners. */
  private readonly processingTimeOperators: (KeyedProcessOperator | WindowOperator)[] = [];
  private loops: (((records: readonly StreamRecord[]) => void) | undefined)[] = [];
  private readonly clock: () => number;
  private readonly stateBackend: StateBackend;
  /** One per keyed operator: closed with the chain. */
  private readonly backends: OperatorStateBackend[] = [];
  /** The state of the chain as built: what `reset` goes back to. */
  private initialState: JsonValue = null;
  /** Inputs every worker reads whole, for broadcast(): see OperatorChain.broadcastInputs. */
  broadcastInputs: readonly number[] = [];

  constructor(
    private readonly graph: StreamGraph,
    outputNode: number,
    namedOutputs: readonly { name: string; node: number }[],
    private readonly inputCount: number,
    private readonly ctx: StageContext,
    options: CompileOptions,
  ) {
    this.clock = options.clock ?? Date.now;
    this.stateBackend = options.stateBackend ?? memoryStateBackend;
    this.failures = new FailureHandler(
      ctx.stageId,
      options.deadLetter,
      Math.max(0, options.retries),
    );
    this.heads = new Array<Operator | undefined>(inputCount).fill(undefined);
    this.assignersByInput = Array.from({ length: inputCount }, () => []);
    this.outputNames = namedOutputs.map((o) => o.name);
    this.namedCollectors = namedOutputs.map(() => new OutputCollector());
    this.build(outputNode, namedOutputs);
  }

  private build(outputNode: number, namedOutputs: readonly { node: number }[]): void {
    const nodes = this.graph.nodes;
    // Keep only nodes that feed an output (walk parents back from each).
    const outputs = [outputNode, ...namedOutputs.map((o) => o.node)];
    const live = new Set<number>(outputs);
    const stack = [...outputs];
    while (stack.length > 0) {
      for (const parent of nodeParents(nodes[stack.pop()!]!)) {
        if (!live.has(parent)) {
          live.add(parent);
          stack.push(parent);
        }
      }
    }
    const ids = [...live].sort((a, b) => a - b); // parents are always created before children
    for (const id of ids) this.operators.set(id, this.createOperator(id, nodes[id]!));

    // Which stage inputs reach each node (for per-input watermark assigners).
    const reach = new Map<number, Set<number>>();
    for (const id of ids) {
      const node = nodes[id]!;
      const set = new Set<number>();
      if (node.kind === 'source') set.add(node.inputIndex);
      for (const p of nodeParents(node)) for (const i of reach.get(p)!) set.add(i);
      reach.set(id, set);
      const op = this.operators.get(id)!;
      if (node.kind === 'source') this.heads[node.inputIndex] = op;
      if (op instanceof KeyedProcessOperator || op instanceof WindowOperator) {
        this.processingTimeOperators.push(op);
      }
      if (op instanceof WatermarkAssignerOperator) {
        this.assigners.push(op);
        for (const i of set) this.assignersByInput[i]!.push(op);
      }
    }

    this.broadcastInputs = this.checkBroadcast(ids, reach);

    // Wire: each node pushes into its children (fan-out when several) and side outputs.
    const targets = new Map<number, Downstream[]>();
    const sideTargets = new Map<number, Map<string, Downstream[]>>();
    const add = <K>(map: Map<K, Downstream[]>, key: K, d: Downstream) => {
      const list = map.get(key);
      if (list) list.push(d);
      else map.set(key, [d]);
    };
    for (const id of ids) {
      const node = nodes[id]!;
      const op = this.operators.get(id)!;
      if (node.kind === 'union') {
        node.parents.forEach((p, slot) => add(targets, p, (op as UnionOperator).input(slot)));
      } else if (node.kind === 'sideOutput') {
        let sides = sideTargets.get(node.parent);
        if (!sides) sideTargets.set(node.parent, (sides = new Map()));
        add(sides, node.tag, op);
      } else if (node.kind !== 'source') {
        add(targets, node.parent, op);
      }
    }
    add(targets, outputNode, this.collector);
    namedOutputs.forEach((o, i) => add(targets, o.node, this.namedCollectors[i]!));
    for (const [id, op] of this.operators) {
      op.next = combine(targets.get(id));
      for (const [tag, list] of sideTargets.get(id) ?? []) op.sideOutputs.set(tag, combine(list));
    }
    for (const op of this.operators.values()) op.specialize();
    this.collector.specialize();
    for (const collector of this.namedCollectors) collector.specialize();
    this.initialState = this.snapshotState();
    // Each input gets its own copy of the batch loop, entering straight at the source's children.
    this.loops = this.heads.map((head) =>
      head === undefined
        ? undefined
        : freshCopy(batchLoop)(head.next, this.failures, SOURCE_ERROR_HEADER),
    );
  }

  /**
   * The inputs that reach a live `broadcast()` node. Every worker reads them whole, so they
   * may reach it only through stateless operators and may feed nothing else: a record of
   * theirs anywhere else would be processed once per worker.
   */
  private checkBroadcast(
    ids: readonly number[],
    reach: ReadonlyMap<number, Set<number>>,
  ): number[] {
    const nodes = this.graph.nodes;
    const broadcastNodes = ids.filter((id) => nodes[id]!.kind === 'broadcast');
    if (broadcastNodes.length === 0) return [];
    const path = new Set<number>(); // nodes above a broadcast() node
    const stack = broadcastNodes.flatMap((id) => nodeParents(nodes[id]!));
    while (stack.length > 0) {
      const id = stack.pop()!;
      if (path.has(id)) continue;
      path.add(id);
      stack.push(...nodeParents(nodes[id]!));
    }
    const stage = this.ctx.stageId;
    for (const id of path) {
      const kind = nodes[id]!.kind;
      if (!BROADCAST_PATH_KINDS.has(kind))
        throw new DataflowGraphError(
          `Stage "${stage}": broadcast() is applied to a stream made by ${describeNode(this.graph, id)}, which keeps state; broadcast a stage input (or a stream made from inputs by map, filter, flatMap, process, union or watermarks) and keep state in the broadcast process function.`,
        );
    }
    for (const id of ids) {
      if (path.has(id) || nodes[id]!.kind === 'broadcast') continue;
      for (const parent of nodeParents(nodes[id]!))
        if (path.has(parent))
          throw new DataflowGraphError(
            `Stage "${stage}": ${describeNode(this.graph, parent)} feeds both broadcast() and ${describeNode(this.graph, id)}. Every worker reads a broadcast input whole, so its records may reach only the broadcast side; give the other use its own input.`,
          );
    }
    const inputs = new Set<number>();
    for (const id of broadcastNodes) for (const i of reach.get(id)!) inputs.add(i);
    return [...inputs].sort((a, b) => a - b);
  }

  private createOperator(id: number, node: StreamNode): Operator {
    const f = this.failures;
    const name = describeNode(this.graph, id);
    switch (node.kind) {
      case 'source':
        if (node.inputIndex >= this.inputCount) {
          throw new DataflowGraphError(`Input ${node.inputIndex} does not exist.`);
        }
        return new ForwardOperator(f, name);
      case 'sideOutput':
        return new ForwardOperator(f, name);
      case 'map':
        return new MapOperator(f, name, node.fn);
      case 'filter':
        return new FilterOperator(f, name, node.fn);
      case 'flatMap':
        return new FlatMapOperator(f, name, node.fn);
      case 'process':
        return new ProcessOperator(f, name, node.fn);
      case 'union':
        return new UnionOperator(f, name, node.parents.length);
      case 'watermarks':
        return new WatermarkAssignerOperator(f, name, node.strategy, this.clock);
      case 'validate':
        return new ValidateOperator(f, name, node.type);
      case 'keyedReduce':
        return new KeyedReduceOperator(f, name, node.keySelector, node.fn, this.keyedMap(name));
      case 'keyedAggregate':
        return new KeyedAggregateOperator(f, name, node.keySelector, node.fn, this.keyedMap(name));
      case 'keyedProcess':
        return new KeyedProcessOperator(
          f,
          name,
          node.keySelector,
          node.fn,
          this.clock,
          this.operatorBackend(name),
        );
      case 'window':
        return new WindowOperator(f, name, node.keySelector, node.spec, node.fn, this.clock);
      case 'broadcast':
        return new ForwardOperator(f, name);
      case 'broadcastProcess':
        return new BroadcastProcessOperator(f, name, node.fn);
      case 'keyedBroadcastProcess':
        return new KeyedBroadcastProcessOperator(
          f,
          name,
          node.keySelector,
          node.fn,
          this.clock,
          this.operatorBackend(name),
        );
    }
  }

  private operatorBackend(name: string): OperatorStateBackend {
    const backend = this.stateBackend.open(this.ctx.stageId, name);
    this.backends.push(backend);
    return backend;
  }

  private keyedMap(name: string): KeyedMap {
    return this.operatorBackend(name).map();
  }

  close(): void {
    for (const backend of this.backends.splice(0)) backend.close();
  }

  private checkInput(inputIndex: number): void {
    if (!(inputIndex >= 0 && inputIndex < this.inputCount)) {
      throw new DataflowGraphError(
        `Stage "${this.ctx.stageId}" has ${this.inputCount} input(s); got a batch for input ${inputIndex}.`,
      );
    }
  }

  processBatch(
    inputIndex: number,
    channel: string,
    records: readonly StreamRecord[],
  ): StreamRecord[] {
    this.checkInput(inputIndex);
    const head = this.heads[inputIndex];
    if (head === undefined) return []; // this input does not feed the output
    const failures = this.failures;
    failures.inputIndex = inputIndex;
    const assigners = this.assignersByInput[inputIndex]!;
    for (let i = 0; i < assigners.length; i++) assigners[i]!.beginBatch(inputIndex, channel);
    failures.batch = records;
    try {
      this.loops[inputIndex]!(records);
    } finally {
      failures.batch = undefined;
    }
    for (let i = 0; i < assigners.length; i++) assigners[i]!.endBatch();
    return this.collector.take();
  }

  assignChannels(inputIndex: number, channels: readonly string[]): StreamRecord[] {
    this.checkInput(inputIndex);
    for (const a of this.assignersByInput[inputIndex]!) a.assignChannels(inputIndex, channels);
    return this.collector.take();
  }

  tick(nowMs: number): StreamRecord[] {
    for (const a of this.assigners) a.tick(nowMs);
    for (const op of this.processingTimeOperators) op.onProcessingTime(nowMs);
    return this.collector.take();
  }

  finish(): StreamRecord[] {
    // End of input: watermark +infinity fires every window and timer (Flink's MAX_WATERMARK).
    for (const head of this.heads) head?.advanceWatermark(Infinity);
    return this.collector.take();
  }

  currentWatermark(): number {
    return this.collector.watermark;
  }

  takeNamedOutputs(): StreamRecord[][] {
    return this.namedCollectors.map((collector) => collector.take());
  }

  get keyed(): boolean {
    for (const id of this.operators.keys())
      if (KEYED_KINDS.has(this.graph.nodes[id]!.kind)) return true;
    return false;
  }

  trackChangedKeys(): Set<string> {
    let changed: Set<string> | undefined;
    for (const op of this.operators.values()) changed ??= op.changedKeys;
    changed ??= new Set();
    for (const op of this.operators.values()) op.changedKeys = changed;
    return changed;
  }

  snapshotState(filter?: StateFilter): JsonValue {
    const operators: Record<string, JsonValue> = {};
    for (const [id, op] of this.operators) {
      const state = op.snapshot(filter);
      if (state !== undefined) operators[id] = { kind: this.graph.nodes[id]!.kind, state };
    }
    return { version: STATE_VERSION, operators };
  }

  restoreState(snapshot: JsonValue, merge = false, fireDue = merge): void {
    const s = snapshot as {
      version?: unknown;
      operators?: Record<string, { kind: string; state: JsonValue }>;
    };
    if (
      s === null ||
      typeof s !== 'object' ||
      s.version !== STATE_VERSION ||
      typeof s.operators !== 'object'
    ) {
      throw new StateRestoreError(
        this.ctx.stageId,
        `unknown state format (expected version ${STATE_VERSION})`,
      );
    }
    for (const [id, entry] of Object.entries(s.operators ?? {})) {
      const op = this.operators.get(Number(id));
      const kind = this.graph.nodes[Number(id)]?.kind;
      if (op === undefined || kind !== entry.kind) {
        throw new StateRestoreError(
          this.ctx.stageId,
          `the checkpoint has state for ${entry.kind} #${id}, which this graph has as ${kind ?? 'nothing'}`,
        );
      }
    }
    for (const [id, entry] of Object.entries(s.operators ?? {})) {
      this.operators.get(Number(id))!.restore(entry.state, merge);
    }
    if (fireDue) {
      // What fires goes to the collector: emitted with the next batch or tick.
      const ids = [...this.operators.keys()].sort((a, b) => a - b);
      for (const id of ids) this.operators.get(id)!.fireDue();
    }
  }

  reset(): void {
    this.restoreState(this.initialState);
    // Stateless operators keep the last watermark they forwarded too: one left where an aborted
    // batch moved it would swallow the watermarks of the batches redone.
    for (const op of this.operators.values()) {
      op.watermark = -Infinity;
      op.idle = false;
    }
    for (const collector of [this.collector, ...this.namedCollectors]) {
      collector.take();
      collector.watermark = -Infinity;
    }
  }

  dropState(filter: StateFilter): void {
    const keep: StateFilter = {
      key: (key) => !filter.key(key),
      channel: (channel) => !filter.channel(channel),
      broadcast: filter.broadcast !== true,
    };
    // What stays, as a snapshot, restored in place of everything.
    this.restoreState(this.snapshotState(keep));
  }
}

/** The per-record loop of processBatch, self-contained for freshCopy. */
function batchLoop(
  head: Downstream,
  failures: FailureHandler,
  errorHeader: string,
): (records: readonly StreamRecord[]) => void {
  return function batchLoop(records: readonly StreamRecord[]): void {
    for (let i = 0; i < records.length; i++) {
      const r = records[i]!;
      failures.position = i;
      const headers = r.headers;
      if (headers !== undefined && headers[errorHeader] !== undefined) {
        failures.failBadSourceRecord(r);
        continue;
      }
      head.push(r);
    }
  };
}

function combine(list: Downstream[] | undefined): Downstream {
  if (list === undefined || list.length === 0) return NO_DOWNSTREAM;
  if (list.length === 1) return list[0]!;
  return new FanOut(list);
}
