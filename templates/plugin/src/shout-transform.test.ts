// The transform tested on its own: the testkit's harness runs the operator chain core compiles
// for a real run, synchronously, with no pipeline around it.
import { SchemaMismatchError } from '@codefeedr/core';
import { transformHarness } from '@codefeedr/testkit';
import { describe, expect, it } from 'vitest';
import { shoutTransform, type GreetingValue } from './index.js';

const greetings: GreetingValue[] = Array.from({ length: 50 }, (_, i) => ({
  n: i + 1,
  to: `friend ${i}`,
  text: `Hello, friend ${i}`,
}));

describe('shout', () => {
  it('upper-cases each greeting and appends the configured exclamation marks', () => {
    const h = transformHarness(shoutTransform, { exclamations: 3 });
    h.send(greetings.slice(0, 20));
    h.send(greetings.slice(20));
    expect(h.values).toEqual(greetings.map((g) => ({ ...g, text: `${g.text.toUpperCase()}!!!` })));
    expect(h.deadLetters).toEqual([]);
  });

  it('sends a value that is not a hello.Greeting to the dead letters, and carries on', () => {
    const h = transformHarness(shoutTransform, {});
    const broken = { n: 0, to: 'nobody' };
    h.send([greetings[0]!, broken as never, greetings[1]!]);
    expect(h.values.map((g) => g.n)).toEqual([1, 2]);
    expect(h.deadLetters.map((d) => d.record.value)).toEqual([broken]);
    expect(h.deadLetters[0]!.error).toBeInstanceOf(SchemaMismatchError);
  });

  it('keeps no state: a restart from its snapshot carries on unchanged', () => {
    const h = transformHarness(shoutTransform, { exclamations: 0 });
    h.send(greetings.slice(0, 10));
    const restarted = h.restarted();
    restarted.send(greetings.slice(10));
    expect([...h.values, ...restarted.values]).toEqual(
      greetings.map((g) => ({ ...g, text: g.text.toUpperCase() })),
    );
  });
});
