// A windowed transform written the way a plugin's would be (in plain JavaScript, so the
// example needs no build). Its manifest in package.json is derived: `codefeedr manifest`.
import { Any, defineMessageType, defineTransform, z } from '@codefeedr/core';

/** Views of one page in one event-time window. */
export const PageViews = defineMessageType(
  'example.PageViews',
  1,
  z.object({
    page: z.string(),
    windowStart: z.number(),
    windowEnd: z.number(),
    views: z.number().int(),
  }),
);

export const pageViews = defineTransform({
  name: 'page-views',
  description:
    'Views per page in tumbling event-time windows; clicks later than the watermark are dropped.',
  configSchema: z.object({
    windowMs: z.number().int().positive().default(60_000).describe('Window length, in ms.'),
    maxOutOfOrdernessMs: z
      .number()
      .int()
      .min(0)
      .default(0)
      .describe('How late a click may arrive and still count (the watermark lags this much).'),
  }),
  inputTypes: [Any],
  outputType: PageViews,
  transform: ([clicks], config) =>
    clicks
      // Event time is the record's timestamp (ndjson-file's timestampField sets it).
      .assignTimestampsAndWatermarks({ maxOutOfOrdernessMs: config.maxOutOfOrdernessMs })
      .keyBy((click) => {
        // A click without a page cannot be counted: it goes to the dead letters, with its value.
        if (typeof click?.page !== 'string') throw new Error('a click needs a string "page"');
        return click.page;
      })
      .window({ type: 'tumbling', sizeMs: config.windowMs })
      .process((page, window, views, out) =>
        out.collect({
          page,
          windowStart: window.start,
          windowEnd: window.end,
          views: views.length,
        }),
      ),
});
