import type { z } from 'zod';
import type { DataStream } from './datastream.js';
import type { Logger } from './logger.js';
import type { MessageType } from './message-type.js';
import type { Sink } from './sink.js';
import type { Source } from './source.js';

export type StageKind = 'input' | 'transform' | 'output';

/**
 * Which share of its input one instance of a stage handles in a split run (`run({ splits })`):
 * split `index` of `count`. Outside split runs, `{ index: 0, count: 1 }`: all of it.
 */
export interface SplitShare {
  /** This instance's split, from 0. */
  readonly index: number;
  /** How many splits the run has. */
  readonly count: number;
}

/** What a stage's logic gets from the runtime when it starts. */
export interface StageContext {
  readonly stageId: string;
  readonly pipelineName: string;
  readonly logger: Logger;
  /** Aborted when the stage must stop (SIGINT/SIGTERM, pipeline failure). */
  readonly signal: AbortSignal;
  /**
   * The share of the input this instance reads (a splittable source) or writes (a sink that
   * keeps one file per split); `{ index: 0, count: 1 }` outside split runs.
   */
  readonly split?: SplitShare;
}

/** Message types of a stage's inputs, in order. */
export type MessageTypes<In extends readonly unknown[]> = {
  readonly [K in keyof In]: MessageType<In[K]>;
};
/** One DataStream per input, in order. */
export type DataStreams<In extends readonly unknown[]> = {
  readonly [K in keyof In]: DataStream<In[K]>;
};

interface StageBase {
  /** Unique in a pipeline; also the stage's buffer topic and consumer group. */
  readonly id: string;
  /** `<package>:<component>` when the stage came from a plugin; informative. */
  readonly component?: string | undefined;
  /** Version of the plugin package the component came from, when known (dead letters, metrics). */
  readonly componentVersion?: string | undefined;
  /** Validated config (secrets included: never log it). */
  readonly config: unknown;
}

export interface InputStage<Out = unknown> extends StageBase {
  readonly kind: 'input';
  readonly inputTypes: readonly [];
  readonly outputType: MessageType<Out>;
  /**
   * The source reads only `ctx.split`'s share of its input, so a split run can give each
   * worker thread one share (a file range, a partition set). Sources without it refuse splits.
   */
  readonly splittable?: boolean;
  createSource(ctx: StageContext): Source<Out> | Promise<Source<Out>>;
}

/** Message types of a transform's named outputs, by name. */
export type NamedOutputTypes = Readonly<Record<string, MessageType<unknown>>>;

/**
 * What `transform()` returns when its stage declares named outputs: the main stream and one
 * stream per declared name (a side output such as late data or a split), each of which can
 * feed its own stages (`'<stage>:<name>'` in `edge()`, `from:` of a pipeline file).
 */
export type TransformOutputs<Out> = {
  readonly main: DataStream<Out>;
  readonly [name: string]: DataStream<unknown>;
};

export interface TransformStage<
  In extends readonly unknown[] = readonly unknown[],
  Out = unknown,
> extends StageBase {
  readonly kind: 'transform';
  readonly inputTypes: MessageTypes<In>;
  readonly outputType: MessageType<Out>;
  /** Named outputs besides the main one, with their types; each has its own topic `<topic>.<name>`. */
  readonly outputs?: NamedOutputTypes | undefined;
  transform(inputs: DataStreams<In>, ctx: StageContext): DataStream<Out> | TransformOutputs<Out>;
}

export interface OutputStage<In extends readonly unknown[] = readonly unknown[]> extends StageBase {
  readonly kind: 'output';
  readonly inputTypes: MessageTypes<In>;
  readonly outputType?: undefined;
  createSink(ctx: StageContext): Sink<In[number]> | Promise<Sink<In[number]>>;
}

// `any` here lets heterogeneous stages sit in one collection; the builder keeps precise types.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyStage = InputStage<any> | TransformStage<any, any> | OutputStage<any>;

/**
 * Components are what plugins export: a named, documented stage factory with a config
 * schema. `create(id, config)` validates the config (every problem at once, as a
 * ConfigError) and returns a Stage ready for a PipelineBuilder.
 */
interface ComponentBase<Schema extends z.ZodType> {
  readonly name: string;
  readonly description: string;
  readonly configSchema: Schema;
  /** What the component promises end to end (shown in the plugin catalogue and manifests). */
  readonly guarantees?: readonly DeliveryGuarantee[];
}

/** The kinds of component a plugin can export (the `kind` of a manifest entry). */
export type ComponentKind = 'input' | 'transform' | 'output' | 'buffer' | 'pipeline' | 'keymanager';
export const COMPONENT_KINDS: readonly ComponentKind[] = [
  'input',
  'transform',
  'output',
  'buffer',
  'pipeline',
  'keymanager',
];

/**
 * `at-least-once`: nothing is lost, a crash may replay records. `exactly-once`: every record's
 * effect happens once (a transactional buffer, or a sink that stores positions with its rows).
 */
export type DeliveryGuarantee = 'at-least-once' | 'exactly-once';

export interface InputComponent<
  Schema extends z.ZodType = z.ZodType,
  Out = unknown,
> extends ComponentBase<Schema> {
  readonly kind: 'input';
  readonly outputType: MessageType<Out>;
  create(id: string, config?: z.input<Schema>): InputStage<Out>;
}

export interface TransformComponent<
  Schema extends z.ZodType = z.ZodType,
  In extends readonly unknown[] = readonly unknown[],
  Out = unknown,
> extends ComponentBase<Schema> {
  readonly kind: 'transform';
  readonly inputTypes: MessageTypes<In>;
  readonly outputType: MessageType<Out>;
  /** Named outputs besides the main one, with their types (see TransformOutputs). */
  readonly outputs?: NamedOutputTypes;
  create(id: string, config?: z.input<Schema>): TransformStage<In, Out>;
}

export interface OutputComponent<
  Schema extends z.ZodType = z.ZodType,
  In extends readonly unknown[] = readonly unknown[],
> extends ComponentBase<Schema> {
  readonly kind: 'output';
  readonly inputTypes: MessageTypes<In>;
  create(id: string, config?: z.input<Schema>): OutputStage<In>;
}
