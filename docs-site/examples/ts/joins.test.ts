// Two streams into one transform: a rules stream and an events stream by repository
// (connect + keyBy + a KeyedCoProcessFunction sharing one key's state), and a window join
// pairing each opened issue with the comments on it in the same hour.
// Run from the repository root: npx vitest run docs-site/examples/ts/joins.test.ts
import { Any, defineTransform, z, type DataStream } from '@codefeedr/core';
import { transformHarness } from '@codefeedr/testkit';
import { expect, it } from 'vitest';

interface Push {
  repo: string;
  commits: number;
  at: number;
}
interface Rule {
  repo: string;
  minCommits: number;
}

// Input 0: pushes; input 1: per-repository rules. A push passes when it has at least its
// repository's latest `minCommits`; both sides of one repository meet in one keyed state.
const bigPushes = defineTransform({
  name: 'big-pushes',
  description: 'Pushes with at least the commits their repository’s rule asks for.',
  configSchema: z.object({}),
  inputTypes: [Any, Any] as const,
  outputType: Any,
  transform: ([pushes, rules]) =>
    (pushes as DataStream<Push>)
      .connect(rules as DataStream<Rule>)
      .keyBy(
        (push) => push.repo,
        (rule) => rule.repo,
      )
      .process<Push>({
        processElement1(push, ctx, out) {
          const min = ctx.state<number>('minCommits').value() ?? 1;
          if (push.commits >= min) out.collect(push);
        },
        processElement2(rule, ctx) {
          ctx.state<number>('minCommits').update(rule.minCommits);
        },
      }),
});

it('connect().keyBy().process: a rule changes what passes from then on', () => {
  const h = transformHarness(bigPushes);
  h.send([{ repo: 'a/b', commits: 1, at: 1 }], { input: 0 });
  h.send([{ repo: 'a/b', minCommits: 3 }], { input: 1 });
  h.send(
    [
      { repo: 'a/b', commits: 2, at: 2 },
      { repo: 'a/b', commits: 5, at: 3 },
      { repo: 'c/d', commits: 1, at: 4 }, // no rule for c/d: the default, 1
    ],
    { input: 0 },
  );
  expect(h.values.map((push) => (push as Push).at)).toEqual([1, 3, 4]);
});

interface Opened {
  issue: string;
  at: number;
}
interface Comment {
  issue: string;
  by: string;
  at: number;
}

const hour = 3_600_000;
const commentedInTheHour = defineTransform({
  name: 'commented-in-the-hour',
  description: 'Each opened issue paired with the comments on it in the same event-time hour.',
  configSchema: z.object({}),
  inputTypes: [Any, Any] as const,
  outputType: Any,
  transform: ([opened, comments]) =>
    (opened as DataStream<Opened>)
      .join(comments as DataStream<Comment>)
      .where((o) => o.issue)
      .equalTo((c) => c.issue)
      .window({ type: 'tumbling', sizeMs: hour })
      .apply((o, c, window) => ({ issue: o.issue, by: c.by, hour: window.start })),
});

it('join().window(): pairs per key and window, when the slower input’s watermark passes the window', () => {
  const h = transformHarness(commentedInTheHour);
  h.send([{ issue: 'a/b#1', at: 1_000 }], { input: 0, timestamp: 1_000 });
  h.send(
    [
      { issue: 'a/b#1', by: 'ann', at: 60_000 },
      { issue: 'a/b#1', by: 'bob', at: hour + 1 }, // the next hour: no pair
    ],
    { input: 1, timestamp: (c) => (c as Comment).at },
  );
  h.advanceWatermark(hour, { input: 0 });
  expect(h.values).toEqual([]); // the comments' watermark still holds the join back
  h.advanceWatermark(hour, { input: 1 });
  expect(h.values).toEqual([{ issue: 'a/b#1', by: 'ann', hour: 0 }]);
});
