// The greetings input runs the testkit's source conformance suite: every value once and in
// order, position()/restore() resume exactly, a pipeline child SIGKILLed mid-run and restarted
// from its checkpoints loses nothing, and the run ends at the end of input.
//
// A source reading a real system appends the suite's values there (rows, messages, lines).
// Greetings are generated, so this target maps the values onto them instead: a source
// configured with `count` = the number of values appended emits greeting n for the n-th
// value, and the greeting word carries the values' id prefix (`kill-41` ↔ "kill, world" #42).
import { sourceConformanceSuite } from '@codefeedr/testkit';
import type { GreetingValue } from './index.js';

sourceConformanceSuite({
  name: 'greetings',
  input: { module: new URL('./index.ts', import.meta.url), export: 'greetingsInput' },
  target: async () => {
    const ids: string[] = [];
    const prefix = () => ids[0]?.slice(0, ids[0].lastIndexOf('-')) ?? 'none';
    return {
      // Read by the suite after it appended (this source is bounded).
      get config() {
        return { to: 'world', count: ids.length, greeting: prefix() };
      },
      append: async (values) => {
        for (const value of values) {
          ids.push(value.id);
          if (value.id !== `${prefix()}-${ids.length - 1}`) {
            throw new Error(`greetings can only stand for ids <prefix>-0, -1, …; got ${value.id}`);
          }
        }
      },
      drop: async () => {},
    };
  },
  bounded: true,
  idOf: (value) => {
    const greeting = value as GreetingValue;
    return `${greeting.text.slice(0, greeting.text.indexOf(','))}-${greeting.n - 1}`;
  },
});
