// Stages are components with a typed config; message types flow through the generics, so
// `push.repo.name` is typed and wiring a stage whose input type does not match does not compile.
// Run from the repository root: node docs-site/examples/ts/commits-per-repo.ts
import {
  PipelineBuilder,
  defineMessageType,
  defineTransform,
  printerOutput,
  z,
} from '@codefeedr/core';
import { gitHubEventMessageTypes, pushEvents, replayInput } from '@codefeedr/plugin-github';

const RepoCommits = defineMessageType(
  'example.RepoCommits',
  1,
  z.object({ repo: z.string(), commits: z.number() }),
);

const commitsPerRepo = defineTransform({
  name: 'commits-per-repo',
  description: 'Running total of pushed commits per repository.',
  configSchema: z.object({ minCommits: z.number().int().default(1) }),
  inputTypes: [gitHubEventMessageTypes.PushEvent],
  outputType: RepoCommits,
  transform: ([pushes], config) =>
    pushes
      .map((push) => ({ repo: push.repo.name, commits: push.payload.size ?? 0 }))
      .filter((r) => r.commits >= config.minCommits)
      .keyBy((r) => r.repo)
      .reduce((total, r) => ({ repo: r.repo, commits: total.commits + r.commits })),
});

const pipeline = new PipelineBuilder('commits')
  .append(replayInput.create('events', { paths: 'test/fixtures/github/events.ndjson.gz' }))
  .append(pushEvents.create('pushes')) // github.Event@1 → github.PushEvent@1, checked per record
  .append(commitsPerRepo.create('totals', { minCommits: 1 }))
  .append(printerOutput.create('print', { format: 'json' }))
  .build(); // reports every problem at once: cycles, type mismatches input by input, bad config

const summary = await pipeline.run({ mode: 'inline' }); // or 'local': every edge through the buffer
console.error(summary.status);
