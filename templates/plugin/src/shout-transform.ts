import { defineTransform, z } from '@codefeedr/core';
import { Greeting } from './greeting.js';

const configSchema = z
  .object({
    exclamations: z.number().int().min(0).max(10).default(1).describe('How many `!` to append.'),
  })
  .strict();

/** Upper-cases each greeting: a plain synchronous map, fused with its neighbours by the runtime. */
export const shoutTransform = defineTransform({
  name: 'shout',
  description: 'Upper-cases greetings and appends exclamation marks.',
  configSchema,
  inputTypes: [Greeting] as const,
  outputType: Greeting,
  transform: ([greetings], config) =>
    greetings.map((g) => ({
      ...g,
      text: `${g.text.toUpperCase()}${'!'.repeat(config.exclamations)}`,
    })),
});
