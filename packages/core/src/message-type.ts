import { z } from 'zod';
import { SchemaMismatchError } from './errors.js';

/**
 * A named, versioned message type (`github.PushEvent@1`) with a zod schema. Edges in a
 * pipeline are checked by `id` before anything runs; values can be checked at run time.
 * zod v4 is the one schema library used everywhere: it validates and emits JSON Schema.
 */
export interface MessageType<T = unknown> {
  /** `name@version`, e.g. `github.PushEvent@1`. */
  readonly id: string;
  readonly name: string;
  readonly version: number;
  readonly schema: z.ZodType<T>;
  /** JSON Schema (draft 2020-12) of the values, for manifests and docs. */
  jsonSchema(): Record<string, unknown>;
  /** Returns the parsed value or throws SchemaMismatchError. */
  check(value: unknown): T;
}

export type MessageValue<M> = M extends MessageType<infer T> ? T : never;

export function defineMessageType<S extends z.ZodType>(
  name: string,
  version: number,
  schema: S,
): MessageType<z.output<S>> {
  const id = `${name}@${version}`;
  let cached: Record<string, unknown> | undefined;
  return {
    id,
    name,
    version,
    schema: schema as unknown as z.ZodType<z.output<S>>,
    jsonSchema() {
      cached ??= z.toJSONSchema(schema, { unrepresentable: 'any' }) as Record<string, unknown>;
      return cached;
    },
    check(value: unknown) {
      const result = schema.safeParse(value);
      if (result.success) return result.data as z.output<S>;
      throw new SchemaMismatchError(
        id,
        result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`),
      );
    },
  };
}

/** The type of stages that accept or emit anything (printer output, ndjson files). */
const ANY_TYPE_ID = 'any@1';
export const Any: MessageType<unknown> = defineMessageType('any', 1, z.unknown());

/** True when a value of type `from` may flow into an input declared as `to`. */
export function messageTypeAccepts(to: MessageType, from: MessageType): boolean {
  return typeIdAccepts(to.id, from.id);
}

/** The one type rule of an edge: an input of type `any@1` takes every type, any other only itself. */
export function typeIdAccepts(expected: string, actual: string): boolean {
  return expected === ANY_TYPE_ID || expected === actual;
}
