#!/usr/bin/env node
// `codefeedr-github-summary`: the README's first command. Replays the bundled real GitHub
// events (or polls GitHub live with --live) and prints the summary.
import { parseArgs } from 'node:util';
import { CodefeedrError, splitFilePath } from '@codefeedr/core';
import { githubSummaryPipeline } from './github-summary-pipeline.js';

const HELP = `Usage: codefeedr-github-summary [options] [files or folders...]

Replays real GitHub events (GH Archive) through CodeFeedr's typed GitHub transforms and
prints events per type and the top repositories by pushes and by commits.

Options:
  --live             poll GitHub's public events feed instead (uses GITHUB_TOKEN if set)
  --output <path>    also write every event as NDJSON here (default: github-events.ndjson)
  --speed <factor>   replay paced by event time (60 = one hour per minute); default: full speed
  --top <n>          rows in the top-repositories tables (default: 10)
  --splits <n>       replay in n worker threads, each every n-th hour file (many hour files:
                     one per core); the NDJSON output is then one file per split
  --base-url <url>   GitHub API URL for --live (GitHub Enterprise)
  -h, --help         show this help

Files are GH Archive hour files (2015-01-01-12.json.gz) or NDJSON, plain or gzip;
without any, the events bundled with @codefeedr/pipelines-github are replayed.
`;

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      live: { type: 'boolean', default: false },
      output: { type: 'string' },
      speed: { type: 'string' },
      top: { type: 'string' },
      splits: { type: 'string' },
      'base-url': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const token = process.env.GITHUB_TOKEN || undefined;
  if (values.live && !token) {
    process.stderr.write(
      'No GITHUB_TOKEN set: polling anonymously (60 requests/hour). Set GITHUB_TOKEN for 5,000.\n',
    );
  }
  const pipeline = githubSummaryPipeline({
    live: values.live,
    ...(token ? { token } : {}),
    ...(values['base-url'] ? { baseUrl: values['base-url'] } : {}),
    ...(positionals.length > 0 ? { paths: positionals } : {}),
    ...(values.speed ? { speed: Number(values.speed) } : {}),
    ...(values.top ? { top: Number(values.top) } : {}),
    ...(values.output ? { output: values.output } : {}),
  });
  const splits = values.splits === undefined ? 1 : Number(values.splits);
  if (!Number.isInteger(splits) || splits < 1) {
    process.stderr.write(
      `codefeedr-github-summary: --splits ${values.splits} is not a whole number of at least 1\n`,
    );
    return 2;
  }
  const path = values.output ?? 'github-events.ndjson';
  const output =
    splits === 1
      ? path
      : `${await splitFilePath(path, { index: 0, count: splits })} … (one file per split)`;
  const result = await pipeline.run({
    mode: 'inline',
    batchSize: 1000,
    handleSignals: true,
    ...(splits > 1 ? { splits } : {}),
  });
  const events = result.metrics.stages.find((s) => s.stage === 'events');
  const deadLettered = result.metrics.stages.reduce((n, s) => n + s.deadLettered, 0);
  process.stderr.write(
    `\n${result.status === 'finished' ? '✓ finished' : '■ stopped'}: ${(events?.recordsOut ?? 0).toLocaleString('en-US')} events in ${(result.durationMs / 1000).toFixed(1)} s` +
      `, ${deadLettered} dead-lettered; every event written to ${output}\n`,
  );
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    const message =
      error instanceof CodefeedrError
        ? `${error.code}: ${error.message}`
        : `${(error as Error)?.message ?? String(error)}`;
    process.stderr.write(`codefeedr-github-summary: ${message}\n`);
    // Invalid input (a bad option or config) is 2, a failure while running 1, as `codefeedr`.
    const invalid =
      error instanceof CodefeedrError &&
      ['CONFIG_INVALID', 'RUN_OPTIONS_INVALID'].includes(error.code);
    process.exit(invalid ? 2 : 1);
  },
);
