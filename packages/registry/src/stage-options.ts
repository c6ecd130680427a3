import { z, type StageOptions } from '@codefeedr/core';

/** A whole-number setting; a `${VAR}` arrives as a string of digits and is read as its number. */
const count = (min: number) =>
  z.preprocess(
    (v) => (typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v),
    z.number().int().min(min),
  );

/**
 * `options:` of a stage in a pipeline file: core's StageOptions (how the stage runs on the
 * buffer), not the component's config (that is `with:`). Strict, so a typo is an error.
 */
export const stageOptionsSchema = z
  .object({
    /** Partitions of the stage's output topic: how many workers the stages reading it can use. */
    partitions: count(1).optional(),
    topic: z.string().min(1).optional(),
    group: z.string().min(1).optional(),
    serde: z.string().min(1).optional(),
    guarantee: z.enum(['at-least-once', 'exactly-once']).optional(),
    batchSize: count(1).optional(),
    validation: z.enum(['off', 'sample', 'all']).optional(),
    validationSampleRate: count(1).optional(),
    start: z
      .union([
        z.enum(['committed', 'earliest', 'latest']),
        z.object({ timestamp: count(0) }).strict(),
      ])
      .optional(),
    bufferConfig: z.record(z.string(), z.string()).optional(),
  })
  .strict();

export type StageOptionsSpec = StageOptions;
