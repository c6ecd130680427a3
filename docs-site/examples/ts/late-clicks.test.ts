// Named outputs: a transform hands its late records (or any split of its input) to a stage of
// their own. Here page views are counted per minute and the clicks that came too late go to a
// second sink instead of being dropped, first through the test kit's harness, then in a pipeline.
// Run from the repository root: npx vitest run docs-site/examples/ts/late-clicks.test.ts
import {
  defineInput,
  defineMessageType,
  defineOutput,
  defineTransform,
  outputTag,
  PipelineBuilder,
  silentLogger,
  z,
  type StreamRecord,
} from '@codefeedr/core';
import { transformHarness } from '@codefeedr/testkit';
import { expect, it } from 'vitest';

const Click = defineMessageType('demo.Click', 1, z.object({ page: z.string(), at: z.number() }));
type Click = z.infer<typeof Click.schema>;
const Views = defineMessageType(
  'demo.Views',
  1,
  z.object({ minute: z.number(), views: z.number() }),
);

const late = outputTag<Click>('late');
const viewsPerMinute = defineTransform({
  name: 'views-per-minute',
  description: 'Page views per minute of event time; late clicks to the `late` output.',
  configSchema: z.object({}),
  inputTypes: [Click] as const,
  outputType: Views,
  outputs: { late: Click }, // each named output has its own message type and topic
  transform: ([clicks]) => {
    const views = clicks
      .assignTimestampsAndWatermarks({ timestampAssigner: (c) => c.at, maxOutOfOrdernessMs: 0 })
      .keyBy(() => 'all')
      .window({ type: 'tumbling', sizeMs: 60_000 })
      .sideOutputLateData(late)
      .aggregate({
        createAccumulator: () => ({ minute: 0, views: 0 }),
        add: (c, acc) => ({ minute: Math.floor(c.at / 60_000), views: acc.views + 1 }),
        getResult: (acc) => acc,
      });
    return { main: views, late: views.getSideOutput(late) };
  },
});

const clicks: Click[] = [
  { page: '/', at: 1_000 },
  { page: '/docs', at: 30_000 },
  { page: '/', at: 61_000 }, // the watermark passes the first minute
  { page: '/late', at: 59_000 }, // behind it: late
  { page: '/', at: 62_000 },
];

it('keeps the late output apart in the harness', () => {
  const h = transformHarness(viewsPerMinute, {});
  for (const click of clicks) h.send([click]);
  h.finish();
  expect(h.values).toEqual([
    { minute: 0, views: 2 },
    { minute: 1, views: 2 },
  ]);
  expect(h.namedOutput<Click>('late').map((r) => r.value.page)).toEqual(['/late']);
});

it('feeds the late clicks to their own stage: `views:late` in edge(), `from: views:late` in a file', async () => {
  const stored = { views: [] as unknown[], late: [] as unknown[] };
  const collect = (id: 'views' | 'late', type: typeof Views | typeof Click) =>
    defineOutput({
      name: `collect-${id}`,
      description: 'keeps what it gets',
      configSchema: z.object({}),
      inputTypes: [type] as const,
      createSink: () => ({
        write: (batch: readonly StreamRecord<unknown>[]) => {
          stored[id].push(...batch.map((r) => r.value));
        },
        flush: async () => {},
        close: async () => {},
      }),
    }).create(`${id}-sink`);
  const source = defineInput({
    name: 'clicks',
    description: 'the clicks above, one per poll',
    configSchema: z.object({}),
    outputType: Click,
    createSource: () => {
      let next = 0;
      return {
        poll: async () =>
          next < clicks.length ? [{ value: clicks[next]!, timestamp: clicks[next++]!.at }] : null,
        position: () => next,
        restore: (p) => void (next = p as number),
        close: async () => {},
      };
    },
  }).create('clicks');

  const summary = await new PipelineBuilder('late-clicks')
    .append(source)
    .append(viewsPerMinute.create('views'))
    .append(collect('views', Views))
    .edge('views:late', collect('late', Click))
    .build()
    // Inline, each poll is one batch, so the late click always follows the watermark that
    // passed it; through a buffer (local mode, workers) its topic is `views.late`.
    .run({ logger: silentLogger });
  expect(summary.status).toBe('finished');
  expect(stored.views).toEqual([
    { minute: 0, views: 2 },
    { minute: 1, views: 2 },
  ]);
  expect(stored.late).toEqual([{ page: '/late', at: 59_000 }]);
});
