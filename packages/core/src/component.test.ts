import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineBuffer, defineTransform, parseConfig } from './component.js';
import { ConfigError } from './errors.js';
import { Any } from './message-type.js';

function problemsOf(schema: z.ZodType, config: unknown): readonly string[] {
  try {
    parseConfig('stage', schema, config);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

describe('parseConfig', () => {
  it('refuses unknown keys of a plain z.object (which zod would drop), with a suggestion', () => {
    const schema = z.object({ factor: z.number().default(1) });
    expect(problemsOf(schema, { factr: 5 })).toEqual([
      'factr: unknown key (did you mean "factor"?); known keys: factor',
    ]);
    expect(parseConfig('stage', schema, { factor: 5 })).toEqual({ factor: 5 });
    expect(parseConfig('stage', schema, undefined)).toEqual({ factor: 1 });
  });

  it('looks into nested objects, arrays, records, defaults, pipes and the union option that matches', () => {
    const schema = z
      .object({
        auth: z.object({ user: z.string() }).optional(),
        targets: z.array(z.object({ host: z.string() })).default([]),
        labels: z.record(z.string(), z.object({ value: z.string() })).optional(),
        mode: z.union([
          z.object({ kind: z.literal('a') }),
          z.object({ kind: z.literal('b'), n: z.number() }),
        ]),
        size: z
          .object({ min: z.number() })
          .transform((v) => v.min)
          .optional(),
      })
      .refine(() => true);
    const problems = problemsOf(schema, {
      auth: { user: 'ann', pasword: 'x' },
      targets: [{ host: 'h', prot: 1 }],
      labels: { a: { value: 'v', extra: true } },
      mode: { kind: 'b', n: 1, m: 2 },
      size: { min: 1, max: 2 },
    });
    expect(problems.map((p) => p.split(':')[0])).toEqual([
      'auth.pasword',
      'targets.0.prot',
      'labels.a.extra',
      'mode.m',
      'size.max',
    ]);
  });

  it('keeps the keys of objects that allow them, and reports zod problems beside unknown keys', () => {
    expect(parseConfig('s', z.object({ a: z.number() }).loose(), { a: 1, b: 2 })).toEqual({
      a: 1,
      b: 2,
    });
    expect(
      parseConfig('s', z.object({ a: z.number() }).catchall(z.string()), { a: 1, b: 'x' }),
    ).toEqual({ a: 1, b: 'x' });
    // .strict() objects are reported once, by zod itself.
    expect(problemsOf(z.object({ a: z.number().optional() }).strict(), { b: 1 })).toHaveLength(1);
    expect(problemsOf(z.object({ a: z.number() }), { a: 'x', b: 1 })).toEqual([
      'b: unknown key; known keys: a',
      'a: Invalid input: expected number, received string',
    ]);
  });

  it('applies to every kind of component', () => {
    const transform = defineTransform({
      name: 'scale',
      description: 'Scales.',
      configSchema: z.object({ factor: z.number().default(2) }),
      inputTypes: [Any],
      outputType: Any,
      transform: ([input]) => input,
    });
    expect(() => transform.create('scale', { factr: 5 } as never)).toThrow(/factr: unknown key/);
    const buffer = defineBuffer({
      name: 'b',
      description: 'B.',
      configSchema: z.object({ url: z.string().default('x') }),
      capabilities: { transactions: false, replay: true },
      create: () => {
        throw new Error('not reached');
      },
    });
    expect(() => buffer.create({ ulr: 'y' } as never)).toThrow(
      /ulr: unknown key \(did you mean "url"\?\)/,
    );
  });
});
