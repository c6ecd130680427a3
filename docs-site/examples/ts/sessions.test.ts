// Event time, watermarks and windows, driven by the testkit's harness: a session per user
// (a gap of 30 s of event time closes it), a watermark 5 s behind the newest click, and
// clicks that arrive after their window fired sent to a side output instead of being lost.
// Run from the repository root: npx vitest run docs-site/examples/ts/sessions.test.ts
import { defineMessageType, defineTransform, outputTag, z } from '@codefeedr/core';
import { transformHarness } from '@codefeedr/testkit';
import { expect, it } from 'vitest';

const Click = defineMessageType(
  'demo.Click',
  1,
  z.object({ user: z.string(), page: z.string(), at: z.number() }),
);
type Click = z.infer<typeof Click.schema>;
const Session = defineMessageType(
  'demo.Session',
  1,
  z.object({ user: z.string(), start: z.number(), end: z.number(), clicks: z.number() }),
);

const late = outputTag<Click>('late-clicks');

const sessions = defineTransform({
  name: 'sessions',
  description: 'Clicks per user session (30 s of inactivity ends a session).',
  configSchema: z.object({ gapMs: z.number().int().positive().default(30_000) }),
  inputTypes: [Click] as const,
  outputType: Session,
  transform: ([clicks], config) =>
    clicks
      .assignTimestampsAndWatermarks({
        timestampAssigner: (click) => click.at, // event time: when the click happened
        maxOutOfOrdernessMs: 5_000, // the watermark trails the newest click by 5 s
      })
      .keyBy((click) => click.user)
      .window({ type: 'session', gapMs: config.gapMs })
      .sideOutputLateData(late)
      .process((user, window, values, out) =>
        out.collect({ user, start: window.start, end: window.end, clicks: values.length }),
      ),
});

it('closes a session when the watermark passes its end, and keeps late clicks aside', () => {
  const h = transformHarness(sessions, {}, { sideOutputs: [late] });
  h.send([
    { user: 'ann', page: '/', at: 1_000 },
    { user: 'ann', page: '/docs', at: 12_000 },
    { user: 'bob', page: '/', at: 15_000 },
  ]);
  expect(h.values).toEqual([]); // nothing has closed yet: the watermark is at 10 s

  h.send([{ user: 'cid', page: '/', at: 80_000 }]); // event time moves on: watermark 75 s
  expect(h.values).toEqual([
    { user: 'ann', start: 1_000, end: 42_000, clicks: 2 },
    { user: 'bob', start: 15_000, end: 45_000, clicks: 1 },
  ]);

  h.send([{ user: 'ann', page: '/late', at: 20_000 }]); // behind the watermark: too late
  expect(h.sideOutput(late).map((r) => r.value.page)).toEqual(['/late']);

  h.finish(); // the end of input fires the windows still open
  expect(h.values.at(-1)).toEqual({ user: 'cid', start: 80_000, end: 110_000, clicks: 1 });
});
