import { defineMessageType, z } from '@codefeedr/core';

/**
 * The message type this plugin's stages exchange. Types are named and versioned
 * (`name@version`); bump the version when the shape changes incompatibly.
 */
export const Greeting = defineMessageType(
  'hello.Greeting',
  1,
  z.object({
    /** Position in the sequence, from 1. */
    n: z.number().int().positive(),
    to: z.string(),
    text: z.string(),
  }),
);

export type GreetingValue = z.output<typeof Greeting.schema>;
