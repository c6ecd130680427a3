// Broadcast state: per-event-type thresholds, broadcast to every worker of a stage that counts
// the pushes passing them per repository (keyBy().connect(rules.broadcast()).process(...)).
// Run from the repository root: npx vitest run docs-site/examples/ts/broadcast-rules.test.ts
import { Any, defineTransform, z, type DataStream } from '@codefeedr/core';
import { transformHarness } from '@codefeedr/testkit';
import { expect, it } from 'vitest';

interface Push {
  repo: string;
  commits: number;
}
interface Threshold {
  minCommits: number;
}

// Input 0: pushes; input 1: the threshold, read whole by every worker (`broadcast()`).
const bigPushes = defineTransform({
  name: 'big-pushes-per-repo',
  description: 'Per repository, how many pushes had at least the broadcast threshold of commits.',
  configSchema: z.object({}),
  inputTypes: [Any, Any] as const,
  outputType: Any,
  transform: ([pushes, thresholds]) =>
    (pushes as DataStream<Push>)
      .keyBy((push) => push.repo)
      .connect((thresholds as DataStream<Threshold>).broadcast())
      .process<{ repo: string; big: number }>({
        processElement(push, ctx, out) {
          const min = ctx.broadcastState<number>('rules').get('minCommits') ?? 1;
          if (push.commits < min) return;
          const big = ctx.state<number>('big');
          big.update((big.value() ?? 0) + 1);
          out.collect({ repo: ctx.key, big: big.value()! });
        },
        processBroadcastElement(threshold, ctx) {
          ctx.broadcastState<number>('rules').set('minCommits', threshold.minCommits);
        },
      }),
});

it('a broadcast threshold applies to every key from then on', () => {
  const h = transformHarness(bigPushes);
  h.send([{ repo: 'a/b', commits: 1 }], { input: 0 });
  h.send([{ minCommits: 3 }], { input: 1 });
  h.send(
    [
      { repo: 'a/b', commits: 2 }, // below the threshold now
      { repo: 'c/d', commits: 5 },
      { repo: 'a/b', commits: 4 },
    ],
    { input: 0 },
  );
  expect(h.values).toEqual([
    { repo: 'a/b', big: 1 },
    { repo: 'c/d', big: 1 },
    { repo: 'a/b', big: 2 },
  ]);
});
