import type { Buffer, StartPosition } from './buffer.js';
import type { BufferComponent } from './component.js';
import type { MessageType } from './message-type.js';
import { Pipeline, type PipelineEdge } from './pipeline.js';
import { PipelineValidationError } from './pipeline-errors.js';
import { validateGraph } from './graph-validator.js';
import { outputTypeIdsOf, parseOutputRef } from './named-outputs.js';
import type { AnyStage, InputStage, OutputStage, TransformStage } from './stage.js';
import type { StateBackendChoice } from './disk-keyed-map.js';
import type { JsonValue } from './record.js';

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
  /** Where this stage keeps its keyed state (default: the run's `stateBackend`). */
  stateBackend?: StateBackendChoice;
  /**
   * In a split run (`run({ splits: n })`), this stage runs once per split, each in a worker
   * thread of its own; its parents must be parallel too (an input stage: a splittable one).
   * Records crossing from a parallel stage to a stage without it go to the main thread, where
   * each split is a channel of its own (the watermark is the minimum over splits). Ignored in
   * runs without splits.
   */
  parallel?: boolean;
}

/**
 * How a worker thread of a split run builds the pipeline again: `module`'s export `export`,
 * called with `config` (JSON: it crosses to the thread), must return the same DAG.
 */
export interface PipelineFactory {
  /** A module specifier or file URL the worker thread can import (`import.meta.url`). */
  readonly module: string;
  /** The name of the module's export that builds the pipeline. */
  readonly export: string;
  /** What it is called with. */
  readonly config?: JsonValue;
}

export interface DeadLetterOptions {
  /** Extra attempts for a record whose user code throws, before it is dead-lettered. */
  retries: number;
  /** Dead-letter topic = `<stageId><topicSuffix>`; dead-letter file = `<dir>/<stageId><topicSuffix>.ndjson`. */
  topicSuffix: string;
  /**
   * `topic`: `<stage>.dlq` topics of the pipeline's buffer. `file`: NDJSON files under `dir`.
   * `auto` (default): files when the buffer is the run's own memory buffer (it ends with the
   * run), topics otherwise.
   */
  destination?: 'auto' | 'topic' | 'file';
  /** Folder of dead-letter files (default `.codefeedr/dead-letters/<pipeline>` under the working directory). */
  dir?: string;
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
  /** Set by setFactory(): what split runs need to build the pipeline in a worker thread. */
  readonly factory?: PipelineFactory | undefined;
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

/**
 * A stage (as object or id); as a parent, `'<id>:<output>'` or `{ stage, output }` reads one of
 * its named outputs instead of its main one (see TransformOutputs).
 */
type StageRef = AnyStage | string;
type ParentRef = StageRef | { readonly stage: StageRef; readonly output: string };

/** Parent i must emit what input i accepts (or be named by id, checked at build()). */
export type ParentsFor<In extends readonly unknown[]> = {
  readonly [K in keyof In]:
    StageEmitting<In[K]> | string | { readonly stage: StageRef; readonly output: string };
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
  private readonly edgeList: { from: string; output?: string; to: string }[] = [];
  private last: AnyStage | undefined;
  private buffer: BufferSetting | undefined;
  private readonly stageOptions = new Map<string, StageOptions>();
  private deadLetter: DeadLetterOptions = { retries: 0, topicSuffix: '.dlq' };
  private factory: PipelineFactory | undefined;

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
  edge<To extends StageRef>(from: ParentRef, to: To): PipelineBuilder<RefOutput<To>> {
    const parent = this.parentRef(from);
    const toId = this.ref(to);
    this.edgeList.push({ ...parent, to: toId });
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
  addParents(stage: AnyStage, parents: readonly ParentRef[]): PipelineBuilder<unknown> {
    this.addStage(stage);
    for (const parent of parents) this.edgeList.push({ ...this.parentRef(parent), to: stage.id });
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

  /**
   * Names the function that builds this pipeline, so a split run can build it again in each
   * worker thread (stages are code, and code does not cross threads).
   *
   * @example
   * export function numbersPipeline(config: { to: number }): Pipeline {
   *   return new PipelineBuilder('numbers')
   *     .setFactory({ module: import.meta.url, export: 'numbersPipeline', config })
   *     // ... stages, with setStageOptions(id, { parallel: true }) on the per-split ones
   *     .build();
   * }
   */
  setFactory(factory: PipelineFactory): this {
    this.factory = factory;
    return this;
  }

  setDeadLetter(options: Partial<DeadLetterOptions>): this {
    this.deadLetter = { ...this.deadLetter, ...options };
    return this;
  }

  /** Validates the DAG (every problem at once, as a PipelineValidationError) and returns it. */
  build(): Pipeline {
    const problems = validateGraph({
      name: this.name,
      stages: this.stageList.map((s) => ({
        id: s.id,
        kind: s.kind,
        inputTypeIds: s.inputTypes.map((t) => t.id),
        outputTypeId: s.outputType?.id ?? null,
        outputTypeIds: outputTypeIdsOf(s),
      })),
      edges: this.edgeList,
      deadLetterSuffix: this.deadLetter.topicSuffix,
    });
    if (problems.length > 0) throw new PipelineValidationError(this.name, problems);
    const order = topologicalOrder(this.stageList, this.edgeList);
    const position = new Map(order.map((s, i) => [s.id, i]));
    const parents = new Map<string, string[]>(order.map((s) => [s.id, []]));
    const edges: PipelineEdge[] = [];
    for (const { from, output, to } of this.edgeList) {
      const list = parents.get(to)!;
      edges.push({
        from,
        ...(output === undefined ? {} : { output }),
        to,
        inputIndex: list.length,
      });
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
      factory: this.factory,
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

  private parentRef(ref: ParentRef): { from: string; output?: string } {
    if (typeof ref === 'string') {
      const { stage, output } = parseOutputRef(ref);
      return output === undefined ? { from: stage } : { from: stage, output };
    }
    if ('kind' in ref) return { from: this.ref(ref) };
    return { from: this.ref(ref.stage), output: ref.output };
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type RefOutput<R> = R extends string ? any : StageOutput<R>;

function isBufferComponent(value: BufferComponent | Buffer): value is BufferComponent {
  return (value as BufferComponent).kind === 'buffer' && 'create' in value;
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
