import type { z } from 'zod';
import type { Buffer, BufferCapabilities } from './buffer.js';
import type { DataStream } from './datastream.js';
import { ConfigError } from './errors.js';
import type { MessageType } from './message-type.js';
import type { Sink } from './sink.js';
import type { Source } from './source.js';
import type {
  DataStreams,
  InputComponent,
  MessageTypes,
  OutputComponent,
  StageContext,
  TransformComponent,
} from './stage.js';

/** Validates `config` against `schema`, reporting every problem at once. */
export function parseConfig<Schema extends z.ZodType>(
  owner: string,
  schema: Schema,
  config: unknown,
): z.output<Schema> {
  const result = schema.safeParse(config ?? {});
  if (result.success) return result.data;
  throw new ConfigError(
    owner,
    result.error.issues.map((issue) => `${issue.path.join('.') || '(config)'}: ${issue.message}`),
  );
}

/**
 * Defines an input component.
 *
 * @example
 * const numbers = defineInput({
 *   name: 'numbers', description: 'Counts from 1 to `to`.',
 *   configSchema: z.object({ to: z.number().int().positive() }),
 *   outputType: defineMessageType('example.Number', 1, z.number()),
 *   createSource: (config) => sequenceSource(1, config.to),
 * });
 * const stage = numbers.create('numbers', { to: 10 });
 */
export function defineInput<Schema extends z.ZodType, Out>(spec: {
  name: string;
  description: string;
  configSchema: Schema;
  outputType: MessageType<Out>;
  createSource(config: z.output<Schema>, ctx: StageContext): Source<Out> | Promise<Source<Out>>;
}): InputComponent<Schema, Out> {
  return {
    kind: 'input',
    name: spec.name,
    description: spec.description,
    configSchema: spec.configSchema,
    outputType: spec.outputType,
    create(id, rawConfig) {
      const config = parseConfig(id, spec.configSchema, rawConfig);
      return {
        kind: 'input',
        id,
        component: spec.name,
        config,
        inputTypes: [],
        outputType: spec.outputType,
        createSource: (ctx) => spec.createSource(config, ctx),
      };
    },
  };
}

/** Defines a transform component: DataStream logic over one or more typed inputs. */
export function defineTransform<
  Schema extends z.ZodType,
  In extends readonly unknown[],
  Out,
>(spec: {
  name: string;
  description: string;
  configSchema: Schema;
  inputTypes: MessageTypes<In>;
  outputType: MessageType<Out>;
  transform(inputs: DataStreams<In>, config: z.output<Schema>, ctx: StageContext): DataStream<Out>;
}): TransformComponent<Schema, In, Out> {
  return {
    kind: 'transform',
    name: spec.name,
    description: spec.description,
    configSchema: spec.configSchema,
    inputTypes: spec.inputTypes,
    outputType: spec.outputType,
    create(id, rawConfig) {
      const config = parseConfig(id, spec.configSchema, rawConfig);
      return {
        kind: 'transform',
        id,
        component: spec.name,
        config,
        inputTypes: spec.inputTypes,
        outputType: spec.outputType,
        transform: (inputs, ctx) => spec.transform(inputs, config, ctx),
      };
    },
  };
}

/** Defines an output component: a sink over one or more typed inputs. */
export function defineOutput<Schema extends z.ZodType, In extends readonly unknown[]>(spec: {
  name: string;
  description: string;
  configSchema: Schema;
  inputTypes: MessageTypes<In>;
  createSink(
    config: z.output<Schema>,
    ctx: StageContext,
  ): Sink<In[number]> | Promise<Sink<In[number]>>;
}): OutputComponent<Schema, In> {
  return {
    kind: 'output',
    name: spec.name,
    description: spec.description,
    configSchema: spec.configSchema,
    inputTypes: spec.inputTypes,
    create(id, rawConfig) {
      const config = parseConfig(id, spec.configSchema, rawConfig);
      return {
        kind: 'output',
        id,
        component: spec.name,
        config,
        inputTypes: spec.inputTypes,
        createSink: (ctx) => spec.createSink(config, ctx),
      };
    },
  };
}

/** A buffer implementation as plugins export it. */
export interface BufferComponent<Schema extends z.ZodType = z.ZodType> {
  readonly kind: 'buffer';
  readonly name: string;
  readonly description: string;
  readonly configSchema: Schema;
  readonly capabilities: BufferCapabilities;
  create(config?: z.input<Schema>): Buffer | Promise<Buffer>;
}

export function defineBuffer<Schema extends z.ZodType>(spec: {
  name: string;
  description: string;
  configSchema: Schema;
  capabilities: BufferCapabilities;
  create(config: z.output<Schema>): Buffer | Promise<Buffer>;
}): BufferComponent<Schema> {
  return {
    kind: 'buffer',
    name: spec.name,
    description: spec.description,
    configSchema: spec.configSchema,
    capabilities: spec.capabilities,
    create: (rawConfig) =>
      spec.create(parseConfig(`buffer ${spec.name}`, spec.configSchema, rawConfig)),
  };
}
