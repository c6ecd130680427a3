import type { z } from 'zod';
import { parseConfig } from './component.js';
import type { Pipeline } from './pipeline.js';
import type { PipelineBuilder } from './pipeline-builder.js';

/** A whole prebuilt pipeline as plugins export it (kind `pipeline`): `codefeedr run <name>`. */
export interface PipelineComponent<Schema extends z.ZodType = z.ZodType> {
  readonly kind: 'pipeline';
  readonly name: string;
  readonly description: string;
  readonly configSchema: Schema;
  create(config?: z.input<Schema>): Pipeline | Promise<Pipeline>;
}

/**
 * Defines a prebuilt pipeline: a config schema and a function that builds the pipeline.
 *
 * @example
 * export const pipeline = definePipeline({
 *   name: 'counting', description: 'Counts to `to`.',
 *   configSchema: z.object({ to: z.number().int().default(10) }),
 *   create: (config) => new PipelineBuilder('counting')
 *     .append(sequenceInput.create('numbers', { to: config.to }))
 *     .append(printerOutput.create('print')),
 * });
 */
export function definePipeline<Schema extends z.ZodType>(spec: {
  name: string;
  description: string;
  configSchema: Schema;
  create(
    config: z.output<Schema>,
  ): Pipeline | PipelineBuilder | Promise<Pipeline | PipelineBuilder>;
}): PipelineComponent<Schema> {
  return {
    kind: 'pipeline',
    name: spec.name,
    description: spec.description,
    configSchema: spec.configSchema,
    async create(rawConfig) {
      const built = await spec.create(
        parseConfig(`pipeline ${spec.name}`, spec.configSchema, rawConfig),
      );
      return 'build' in built && typeof built.build === 'function'
        ? built.build()
        : (built as Pipeline);
    },
  };
}
