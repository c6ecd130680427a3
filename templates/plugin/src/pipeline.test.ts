// The components tested the way users run them: a real pipeline on core's runtime,
// inline (in-memory edges) and local (every edge through the memory buffer).
import {
  Any,
  defineOutput,
  PipelineBuilder,
  silentLogger,
  z,
  type StreamRecord,
} from '@codefeedr/core';
import { describe, expect, it } from 'vitest';
import { greetingsInput, shoutTransform, type GreetingValue } from './index.js';

function collector() {
  const records: StreamRecord<unknown>[] = [];
  const output = defineOutput({
    name: 'collect',
    description: 'Keeps what it receives, for assertions.',
    configSchema: z.object({}),
    inputTypes: [Any] as const,
    createSink: () => ({
      write: (batch) => void records.push(...batch),
      flush: async () => {},
      close: async () => {},
    }),
  });
  return { records, output };
}

describe.each(['inline', 'local'] as const)('greetings → shout (%s)', (mode) => {
  it('emits count greetings, shouted, in order', async () => {
    const { records, output } = collector();
    const count = 1200; // more than one batch
    const pipeline = new PipelineBuilder('hello-test')
      .append(greetingsInput.create('greetings', { to: 'world', count, greeting: 'Hi' }))
      .append(shoutTransform.create('shout', { exclamations: 2 }))
      .append(output.create('out'))
      .build();
    const summary = await pipeline.run({ mode, logger: silentLogger });
    expect(summary.status).toBe('finished');
    const values = records.map((r) => r.value as GreetingValue);
    expect(values).toHaveLength(count);
    values.forEach((value, i) => {
      expect(value).toEqual({ n: i + 1, to: 'world', text: 'HI, WORLD!!' });
    });
  });
});

describe('config', () => {
  it('rejects a config without `to`, naming the field', () => {
    expect(() => greetingsInput.create('greetings', {} as never)).toThrow(/to/);
  });
  it('applies defaults', () => {
    expect(greetingsInput.create('greetings', { to: 'x' }).config).toEqual({
      to: 'x',
      count: 3,
      greeting: 'Hello',
    });
  });
});
