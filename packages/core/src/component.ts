import type { z } from 'zod';
import type { Buffer, BufferCapabilities } from './buffer.js';
import type { DataStream } from './datastream.js';
import { ConfigError } from './errors.js';
import { editDistance } from './internal-api.js';
import { checkOutputNames } from './named-outputs.js';
import type { MessageType } from './message-type.js';
import type { Sink } from './sink.js';
import type { Source } from './source.js';
import type {
  DeliveryGuarantee,
  DataStreams,
  InputComponent,
  MessageTypes,
  NamedOutputTypes,
  OutputComponent,
  StageContext,
  TransformComponent,
  TransformOutputs,
} from './stage.js';

/**
 * Validates `config` against `schema`, reporting every problem at once. Unknown keys are
 * errors whatever the schema says (a plain `z.object` would drop them silently, so a typo
 * like `factr: 5` would run with the default): only an object the author made `.loose()` /
 * `.passthrough()` (or gave a `.catchall()`) accepts keys it does not list.
 */
export function parseConfig<Schema extends z.ZodType>(
  owner: string,
  schema: Schema,
  config: unknown,
): z.output<Schema> {
  const input = config ?? {};
  const result = schema.safeParse(input);
  const problems: string[] = [];
  collectUnknownKeys(schema, input, [], problems);
  if (!result.success) {
    for (const issue of result.error.issues)
      problems.push(`${issue.path.join('.') || '(config)'}: ${issue.message}`);
  }
  if (problems.length === 0 && result.success) return result.data;
  throw new ConfigError(owner, problems);
}

/** The parts of zod's schema internals the unknown-key walk reads (stable in zod 4). */
interface SchemaDef {
  type: string;
  shape?: Record<string, z.ZodType>;
  catchall?: z.ZodType;
  innerType?: z.ZodType;
  in?: z.ZodType;
  options?: z.ZodType[];
  element?: z.ZodType;
  valueType?: z.ZodType;
  getter?: () => z.ZodType;
}

function defOf(schema: z.ZodType): SchemaDef | undefined {
  return (schema as unknown as { _zod?: { def?: SchemaDef } })._zod?.def;
}

const WRAPPERS = new Set([
  'optional',
  'nullable',
  'default',
  'prefault',
  'catch',
  'readonly',
  'nonoptional',
]);

/** Walks `value` along `schema`, reporting keys of strip-mode objects the schema does not declare. */
function collectUnknownKeys(
  schema: z.ZodType,
  value: unknown,
  path: readonly (string | number)[],
  problems: string[],
  depth = 0,
): void {
  const def = defOf(schema);
  if (def === undefined || depth > 64) return;
  if (WRAPPERS.has(def.type) && def.innerType) {
    collectUnknownKeys(def.innerType, value, path, problems, depth + 1);
  } else if (def.type === 'pipe' && def.in) {
    collectUnknownKeys(def.in, value, path, problems, depth + 1);
  } else if (def.type === 'lazy' && def.getter) {
    collectUnknownKeys(def.getter(), value, path, problems, depth + 1);
  } else if (def.type === 'union' && def.options) {
    // The option the value matches is the one whose keys count.
    const match = def.options.find((option) => option.safeParse(value).success);
    if (match) collectUnknownKeys(match, value, path, problems, depth + 1);
  } else if (def.type === 'array' && def.element && Array.isArray(value)) {
    value.forEach((item, i) =>
      collectUnknownKeys(def.element!, item, [...path, i], problems, depth + 1),
    );
  } else if (def.type === 'record' && def.valueType && isPlainObject(value)) {
    for (const [key, item] of Object.entries(value))
      collectUnknownKeys(def.valueType, item, [...path, key], problems, depth + 1);
  } else if (def.type === 'object' && def.shape && isPlainObject(value)) {
    const known = Object.keys(def.shape);
    for (const [key, item] of Object.entries(value)) {
      const field = def.shape[key];
      if (field !== undefined) {
        collectUnknownKeys(field, item, [...path, key], problems, depth + 1);
      } else if (def.catchall === undefined) {
        const where = [...path, key].join('.');
        const near = closest(key, known);
        problems.push(
          `${where}: unknown key${near ? ` (did you mean "${near}"?)` : ''}; ${known.length > 0 ? `known keys: ${known.join(', ')}` : 'this object takes no keys'}`,
        );
      } else {
        collectUnknownKeys(def.catchall, item, [...path, key], problems, depth + 1);
      }
    }
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The known key a typo most likely meant (a couple of edits, fewer than its length). */
function closest(key: string, known: readonly string[]): string | undefined {
  let best: { name: string; distance: number } | undefined;
  for (const name of known) {
    const distance = editDistance(key.toLowerCase(), name.toLowerCase());
    if (
      distance <= Math.max(2, Math.floor(name.length / 3)) &&
      distance < name.length &&
      distance < (best?.distance ?? Infinity)
    )
      best = { name, distance };
  }
  return best?.name;
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
  guarantees?: readonly DeliveryGuarantee[];
  outputType: MessageType<Out>;
  /** `createSource` reads only `ctx.split`'s share of the input (see InputStage.splittable). */
  splittable?: boolean;
  createSource(config: z.output<Schema>, ctx: StageContext): Source<Out> | Promise<Source<Out>>;
}): InputComponent<Schema, Out> {
  return {
    kind: 'input',
    name: spec.name,
    description: spec.description,
    configSchema: spec.configSchema,
    ...(spec.guarantees === undefined ? {} : { guarantees: spec.guarantees }),
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
        ...(spec.splittable === true ? { splittable: true } : {}),
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
  guarantees?: readonly DeliveryGuarantee[];
  inputTypes: MessageTypes<In>;
  outputType: MessageType<Out>;
  /** Named outputs besides the main one (see TransformOutputs); `transform` returns them all. */
  outputs?: NamedOutputTypes;
  transform(
    inputs: DataStreams<In>,
    config: z.output<Schema>,
    ctx: StageContext,
  ): DataStream<Out> | TransformOutputs<Out>;
}): TransformComponent<Schema, In, Out> {
  if (spec.outputs !== undefined) checkOutputNames(spec.name, spec.outputs);
  return {
    kind: 'transform',
    name: spec.name,
    description: spec.description,
    configSchema: spec.configSchema,
    ...(spec.guarantees === undefined ? {} : { guarantees: spec.guarantees }),
    inputTypes: spec.inputTypes,
    outputType: spec.outputType,
    ...(spec.outputs === undefined ? {} : { outputs: spec.outputs }),
    create(id, rawConfig) {
      const config = parseConfig(id, spec.configSchema, rawConfig);
      return {
        kind: 'transform',
        id,
        component: spec.name,
        config,
        inputTypes: spec.inputTypes,
        outputType: spec.outputType,
        ...(spec.outputs === undefined ? {} : { outputs: spec.outputs }),
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
  guarantees?: readonly DeliveryGuarantee[];
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
    ...(spec.guarantees === undefined ? {} : { guarantees: spec.guarantees }),
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
  /** Derived from the capabilities: exactly-once where the buffer has transactions. */
  readonly guarantees: readonly DeliveryGuarantee[];
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
    guarantees: spec.capabilities.transactions
      ? ['at-least-once', 'exactly-once']
      : ['at-least-once'],
    create: (rawConfig) =>
      spec.create(parseConfig(`buffer ${spec.name}`, spec.configSchema, rawConfig)),
  };
}
