// A transform alone in the testkit's harness: no pipeline, no buffer, no clock to wait on.
// Run from the repository root: npx vitest run docs-site/examples/ts/totals.test.ts
import { SchemaMismatchError, defineMessageType, defineTransform, z } from '@codefeedr/core';
import { transformHarness } from '@codefeedr/testkit';
import { expect, it } from 'vitest';

const Reading = defineMessageType(
  'demo.Reading',
  1,
  z.object({ sensor: z.string(), value: z.number() }),
);

const totals = defineTransform({
  name: 'totals',
  description: 'Running sum per sensor.',
  configSchema: z.object({}),
  inputTypes: [Reading] as const,
  outputType: Reading,
  transform: ([readings]) =>
    readings.keyBy((r) => r.sensor).reduce((a, b) => ({ ...b, value: a.value + b.value })),
});

it('sums per sensor, across a restart', () => {
  const h = transformHarness(totals, {});
  h.send([
    { sensor: 'a', value: 1 },
    { sensor: 'a', value: 2 },
  ]);
  expect(h.values).toEqual([
    { sensor: 'a', value: 1 },
    { sensor: 'a', value: 3 },
  ]);
  const restarted = h.restarted(); // a fresh chain restored from h's checkpointed state
  restarted.send([{ sensor: 'a', value: 4 }]);
  expect(restarted.values).toEqual([{ sensor: 'a', value: 7 }]);
});

it('turns a record that is not a demo.Reading@1 into a dead letter, and goes on', () => {
  const h = transformHarness(totals, {});
  h.send([{ sensor: 'a', value: 'x' } as never, { sensor: 'a', value: 5 }]);
  expect(h.deadLetters).toHaveLength(1);
  expect(h.deadLetters[0]!.error).toBeInstanceOf(SchemaMismatchError);
  expect(h.values).toEqual([{ sensor: 'a', value: 5 }]);
});
