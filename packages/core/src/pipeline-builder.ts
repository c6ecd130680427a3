import type { Buffer, StartPosition } from './buffer.js';
import type { BufferComponent } from './component.js';
import { messageTypeAccepts, type MessageType } from './message-type.js';
import { Pipeline, type PipelineEdge } from './pipeline.js';
import {
  CycleProblem,
  DanglingStageProblem,
  DuplicateEdgeProblem,
  DuplicateStageIdProblem,
  EdgeFromOutputProblem,
  EdgeIntoInputProblem,
  EmptyPipelineProblem,
  InputCountMismatchProblem,
  PipelineValidationError,
  TypeMismatchProblem,
  UnknownStageProblem,
  type PipelineProblem,
} from './pipeline-errors.js';
import type { AnyStage, InputStage, OutputStage, TransformStage } from './stage.js';

/** Per-stage runtime settings; `setStageOptions(stageId, ...)` overrides the defaults. */
export interface StageOptions {
  /** Buffer topic this stage writes to (default: the stage id). */
  topic?: string;
  /** Consumer group this stage reads with (default: the stage id). */
  group?: string;
  /** Partitions of this stage's output topic (default 1; the unit of worker parallelism). */
  partitions?: number;
  /** Serde of this stage's output topic (default `json`). */
  serde?: string;
  /** Topic settings passed to the buffer's ensureTopic (retention, MAXLEN, ...). */
  bufferConfig?: Record<string, string>;
  /** Where this stage's consumer starts in a partition with no committed offset. */
  start?: StartPosition;
  /** `exactly-once` uses buffer transactions when the buffer has them. */
  guarantee?: 'at-least-once' | 'exactly-once';
  /** Check records entering this stage against its input types: all, 1 in `validationSampleRate`, or never. */
  validation?: 'off' | 'sample' | 'all';
  validationSampleRate?: number;
  /** Records per poll / batch (default: the run's batchSize). */
  batchSize?: number;
}

export interface DeadLetterOptions {
  /** Extra attempts for a record whose user code throws, before it is dead-lettered. */
  retries: number;
  /** Dead-letter topic = `<stageId><topicSuffix>`. */
  topicSuffix: string;
}

export type BufferSetting = { component: BufferComponent; config: unknown } | { instance: Buffer };

/** Everything `build()` hands to a Pipeline: validated, stages in topological order. */
export interface PipelineDefinition {
  readonly name: string;
  readonly stages: readonly AnyStage[];
  /** stage id -> parent ids in input order. */
  readonly parents: ReadonlyMap<string, readonly string[]>;
  readonly edges: readonly PipelineEdge[];
  readonly buffer: BufferSetting | undefined;
  readonly stageOptions: ReadonlyMap<string, StageOptions>;
  readonly deadLetter: DeadLetterOptions;
}

/** Output value type of a stage (never for output stages). */
export type StageOutput<S> = S extends { kind: 'output' }
  ? never
  : S extends { outputType: MessageType<infer O> }
    ? O
    : never;

/** A stage whose output can feed an input of type T. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type StageEmitting<T> = InputStage<T> | TransformStage<any, T>;

/** Shown by the compiler when append() joins a stage to a parent of the wrong type. */
export interface AppendTypeMismatch<Expected, Actual> {
  readonly __error: 'append(): the stage input type does not accept the previous stage output';
  readonly expected: Expected;
  readonly actual: Actual;
}

type Accepts<In, Last> = [Last] extends [In] ? unknown : AppendTypeMismatch<In, Last>;

type StageRef = AnyStage | string;

/** Parent i must emit what input i accepts (or be named by id, checked at build()). */
export type ParentsFor<In extends readonly unknown[]> = {
  readonly [K in keyof In]: StageEmitting<In[K]> | string;
};

/**
 * Builds a pipeline DAG fluently. Types flow through `append`: appending a
 * `TransformStage<[A], B>` after a stage emitting `C` is a compile error unless C is an A.
 *
 * @example
 * const pipeline = new PipelineBuilder('demo').append(numbers).append(double).append(printer).build();
 * await pipeline.run();
 */
export class PipelineBuilder<Last = never> {
  readonly name: string;
  private readonly stageList: AnyStage[] = [];
  private readonly edgeList: { from: string; to: string }[] = [];
  private last: AnyStage | undefined;
  private buffer: BufferSetting | undefined;
  private readonly stageOptions = new Map<string, StageOptions>();
  private deadLetter: DeadLetterOptions = { retries: 0, topicSuffix: '.dlq' };

  constructor(name: string) {
    this.name = name;
  }

  /** Adds a stage without edges (connect it later with edge() or addParents()). */
  add<S extends AnyStage>(stage: S): PipelineBuilder<StageOutput<S>> {
    this.addStage(stage);
    this.last = stage;
    return this as unknown as PipelineBuilder<StageOutput<S>>;
  }

  /** Adds `stage` with the previously appended stage as its single input. */
  append<Out>(stage: InputStage<Out>): PipelineBuilder<Out>;
  append<In, Out>(
    stage: TransformStage<readonly [In], Out> & Accepts<In, Last>,
  ): PipelineBuilder<Out>;
  append<In>(stage: OutputStage<readonly [In]> & Accepts<In, Last>): PipelineBuilder<never>;
  append(stage: AnyStage): PipelineBuilder<unknown> {
    const previous = this.last;
    this.addStage(stage);
    if (previous !== undefined) this.edgeList.push({ from: previous.id, to: stage.id });
    this.last = stage;
    return this as PipelineBuilder<unknown>;
  }

  /**
   * Connects `from` to the next free input of `to` (input order = order of edge() calls).
   * Stages passed as objects are added if new; ids must name stages added elsewhere.
   */
  edge<To extends StageRef>(from: StageRef, to: To): PipelineBuilder<RefOutput<To>> {
    const fromId = this.ref(from);
    const toId = this.ref(to);
    this.edgeList.push({ from: fromId, to: toId });
    if (typeof to !== 'string') this.last = to;
    return this as unknown as PipelineBuilder<RefOutput<To>>;
  }

  /** Sets `parents` as the inputs of `stage`, in order (parent i feeds input i). */
  addParents<In extends readonly unknown[], Out>(
    stage: TransformStage<In, Out>,
    parents: ParentsFor<In>,
  ): PipelineBuilder<Out>;
  addParents<In extends readonly unknown[]>(
    stage: OutputStage<In>,
    parents: ParentsFor<In>,
  ): PipelineBuilder<never>;
  addParents(stage: AnyStage, parents: readonly StageRef[]): PipelineBuilder<unknown> {
    this.addStage(stage);
    for (const parent of parents) this.edgeList.push({ from: this.ref(parent), to: stage.id });
    this.last = stage;
    return this as PipelineBuilder<unknown>;
  }

  /** The buffer every edge goes through in `local`/`worker` mode (default: core's memory buffer). */
  setBuffer(buffer: BufferComponent | Buffer, config?: unknown): this {
    this.buffer = isBufferComponent(buffer) ? { component: buffer, config } : { instance: buffer };
    return this;
  }

  setStageOptions(stageId: string, options: StageOptions): this {
    this.stageOptions.set(stageId, { ...this.stageOptions.get(stageId), ...options });
    return this;
  }

  setDeadLetter(options: Partial<DeadLetterOptions>): this {
    this.deadLetter = { ...this.deadLetter, ...options };
    return this;
  }

  /** Validates the DAG (every problem at once, as a PipelineValidationError) and returns it. */
  build(): Pipeline {
    const problems = validatePipeline(this.name, this.stageList, this.edgeList);
    if (problems.length > 0) throw new PipelineValidationError(this.name, problems);
    const order = topologicalOrder(this.stageList, this.edgeList);
    const position = new Map(order.map((s, i) => [s.id, i]));
    const parents = new Map<string, string[]>(order.map((s) => [s.id, []]));
    const edges: PipelineEdge[] = [];
    for (const { from, to } of this.edgeList) {
      const list = parents.get(to)!;
      edges.push({ from, to, inputIndex: list.length });
      list.push(from);
    }
    edges.sort(
      (a, b) =>
        position.get(a.from)! - position.get(b.from)! ||
        position.get(a.to)! - position.get(b.to)! ||
        a.inputIndex - b.inputIndex,
    );
    return new Pipeline({
      name: this.name,
      stages: order,
      parents,
      edges,
      buffer: this.buffer,
      stageOptions: new Map(this.stageOptions),
      deadLetter: this.deadLetter,
    });
  }

  private addStage(stage: AnyStage): void {
    // Re-adding the same object is a no-op; another object with the same id is a DUPLICATE_STAGE_ID.
    if (!this.stageList.includes(stage)) this.stageList.push(stage);
  }

  private ref(ref: StageRef): string {
    if (typeof ref === 'string') return ref;
    this.addStage(ref);
    return ref.id;
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type RefOutput<R> = R extends string ? any : StageOutput<R>;

function isBufferComponent(value: BufferComponent | Buffer): value is BufferComponent {
  return (value as BufferComponent).kind === 'buffer' && 'create' in value;
}

/** Every problem with a pipeline's shape, in a stable order. */
export function validatePipeline(
  name: string,
  stages: readonly AnyStage[],
  edges: readonly { from: string; to: string }[],
): PipelineProblem[] {
  const problems: PipelineProblem[] = [];
  if (stages.length === 0) return [new EmptyPipelineProblem(name)];

  const byId = new Map<string, AnyStage>();
  const counts = new Map<string, number>();
  for (const stage of stages) {
    counts.set(stage.id, (counts.get(stage.id) ?? 0) + 1);
    if (!byId.has(stage.id)) byId.set(stage.id, stage);
  }
  for (const [id, count] of counts) {
    if (count > 1) problems.push(new DuplicateStageIdProblem(id, count));
  }

  const seen = new Set<string>();
  const parents = new Map<string, string[]>();
  const known: { from: string; to: string }[] = [];
  for (const edge of edges) {
    const key = `${edge.from}\u0000${edge.to}`;
    if (seen.has(key)) {
      problems.push(new DuplicateEdgeProblem(edge.from, edge.to));
      continue;
    }
    seen.add(key);
    let unknown = false;
    for (const id of [edge.from, edge.to]) {
      if (!byId.has(id)) {
        problems.push(new UnknownStageProblem(id, edge));
        unknown = true;
      }
    }
    if (unknown) continue;
    if (byId.get(edge.to)!.kind === 'input') {
      problems.push(new EdgeIntoInputProblem(edge.from, edge.to));
      continue;
    }
    if (byId.get(edge.from)!.kind === 'output') {
      problems.push(new EdgeFromOutputProblem(edge.from, edge.to));
      continue;
    }
    known.push(edge);
    const list = parents.get(edge.to) ?? [];
    list.push(edge.from);
    parents.set(edge.to, list);
  }

  for (const stage of byId.values()) {
    if (stage.kind === 'input') continue;
    const list = parents.get(stage.id) ?? [];
    if (list.length !== stage.inputTypes.length) {
      problems.push(new InputCountMismatchProblem(stage.id, stage.inputTypes.length, list.length));
    }
    // Input by input, in order: swapped parents of different types are caught.
    const n = Math.min(list.length, stage.inputTypes.length);
    for (let i = 0; i < n; i++) {
      const parent = byId.get(list[i]!)!;
      const expected = stage.inputTypes[i]!;
      const actual = parent.outputType;
      if (actual !== undefined && !messageTypeAccepts(expected, actual)) {
        problems.push(new TypeMismatchProblem(parent.id, stage.id, i, expected.id, actual.id));
      }
    }
  }

  for (const cycle of findCycles([...byId.keys()], known)) problems.push(new CycleProblem(cycle));

  // Dangling: not reachable from any input stage.
  const children = new Map<string, string[]>();
  for (const e of known) children.set(e.from, [...(children.get(e.from) ?? []), e.to]);
  const reached = new Set<string>();
  const stack = [...byId.values()].filter((s) => s.kind === 'input').map((s) => s.id);
  while (stack.length > 0) {
    const id = stack.pop()!;
    if (reached.has(id)) continue;
    reached.add(id);
    stack.push(...(children.get(id) ?? []));
  }
  for (const id of byId.keys()) {
    if (!reached.has(id)) problems.push(new DanglingStageProblem(id));
  }
  return problems;
}

/** Each elementary cycle found by DFS, as a path that ends where it starts. */
function findCycles(ids: readonly string[], edges: readonly { from: string; to: string }[]) {
  const children = new Map<string, string[]>(ids.map((id) => [id, []]));
  for (const e of edges) children.get(e.from)?.push(e.to);
  const state = new Map<string, 'active' | 'done'>();
  const path: string[] = [];
  const cycles: string[][] = [];
  const visit = (id: string): void => {
    state.set(id, 'active');
    path.push(id);
    for (const next of children.get(id) ?? []) {
      const s = state.get(next);
      if (s === 'active') cycles.push([...path.slice(path.indexOf(next)), next]);
      else if (s === undefined) visit(next);
    }
    path.pop();
    state.set(id, 'done');
  };
  for (const id of ids) if (!state.has(id)) visit(id);
  return cycles;
}

/** Kahn's algorithm; ties keep insertion order so describe() is deterministic. */
function topologicalOrder(
  stages: readonly AnyStage[],
  edges: readonly { from: string; to: string }[],
): AnyStage[] {
  const indegree = new Map(stages.map((s) => [s.id, 0]));
  for (const e of edges) indegree.set(e.to, (indegree.get(e.to) ?? 0) + 1);
  const order: AnyStage[] = [];
  const remaining = [...stages];
  while (remaining.length > 0) {
    const index = remaining.findIndex((s) => indegree.get(s.id) === 0);
    const stage = remaining.splice(index === -1 ? 0 : index, 1)[0]!;
    order.push(stage);
    for (const e of edges) if (e.from === stage.id) indegree.set(e.to, indegree.get(e.to)! - 1);
  }
  return order;
}
