// bench:github — GH Archive replay → typed transforms → summary (the main job's path) against a
// hand-written loop doing the same work (not a test); then the main job over a day of hour files
// in one thread and in two splits (worker threads). Run: npm run build (the bench imports the
// builds), then   npm run bench:github [-- --copies 19 --hours 4 --rounds 1]
//
// The input hour is built from the repo's shipped fixture (test/fixtures/github/events.ndjson.gz):
// its one full GH Archive hour (8,273 real events) repeated `copies` times (19: 157,187 events) with fresh unique ids, interleaved so the file
// stays in event-time order, then shuffled within blocks of 64 lines (GH Archive hours are
// nearly sorted, not sorted), gzipped into .tmp/. Each side runs in its own child process, so
// its CPU time and peak RSS (process.resourceUsage()) are its own:
//
//   pipeline  githubSummaryPipeline (inline): replay (event-time order, bounded reorder buffer)
//             → push-events (typed check) → activity → summary, every event to an NDJSON file
//   loop      gunzip stream → split lines → JSON.parse → the same event-shape and PushEvent
//             checks → the same counts → JSON.stringify of every event to an NDJSON file
//
//   splits    githubSummaryPipeline over `hours` hour files (the big hour moved to each hour),
//             run({ splits: 1 | 2 }): wall time of one thread against two splits
//   loop-day  the hand-written loop over the same files in 1 and in 2 worker threads (each its
//             share of the files, nothing shared): the speed-up two cores allow this work here
//
// Both must report the same counts, or the run fails. Ratios are printed last:
// CPU ratio = loop CPU / pipeline CPU (target ≥ 0.7), pipeline peak RSS: the larger of the hour's
// and the day's in one thread (target < 200 MB), 2 splits / 1 = wall time of one thread / wall
// time of two splits (target ≥ 1.7 on 2 cores), beside the hand-written loop's 2 threads / 1.
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import {
  createReadStream,
  createWriteStream,
  existsSync,
  mkdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { loadavg } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { createGunzip, gunzipSync, gzipSync } from 'node:zlib';
import { benchRun, peakRssMb } from './bench-results.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const tmp = join(root, '.tmp');

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : Number(process.argv[i + 1]);
}

interface Counts {
  events: number;
  pushes: number;
  commits: number;
  repositories: number;
}
interface Result extends Counts {
  cpuMs: number;
  wallMs: number;
  maxRssMb: number;
}

function finish(counts: Counts, began: number): void {
  const usage = process.resourceUsage();
  const result: Result = {
    ...counts,
    cpuMs: (usage.userCPUTime + usage.systemCPUTime) / 1000,
    wallMs: performance.now() - began,
    maxRssMb: peakRssMb(),
  };
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
}

/**
 * The main job's path, as `npm start` runs it: over the big hour (`splits` 1), or over a day of
 * hour files in `splits` worker threads (1: no threads). Process CPU time covers every thread.
 */
async function runPipeline(paths: string, splits: number, output: string): Promise<void> {
  const began = performance.now();
  const { githubSummaryPipeline, GitHubSummary } =
    await import('@codefeedr/pipelines-github/summary');
  const summary = new GitHubSummary();
  const sink = { write: () => true } as unknown as NodeJS.WritableStream; // the printed summary
  await githubSummaryPipeline({
    paths,
    output: join(tmp, output),
    out: sink,
    tty: false,
    summary,
  }).run({
    mode: 'inline',
    ...(splits > 1 ? { splits } : {}),
  });
  finish(
    {
      events: summary.events,
      pushes: summary.pushes,
      commits: summary.commits,
      repositories: summary.repositories.size,
    },
    began,
  );
}

/** What the hand-written loop counts over its files; repositories by name, to merge threads. */
interface LoopCounts {
  events: number;
  pushes: number;
  commits: number;
  repositories: string[];
}

/**
 * The same work written by hand (what the pipeline should cost at most 1/0.7 of), over `files`
 * one after the other, every event to one NDJSON file.
 */
async function loopFiles(files: readonly string[], output: string): Promise<LoopCounts> {
  const { gitHubEventMessageTypes } = await import('@codefeedr/plugin-github');
  const push = gitHubEventMessageTypes.PushEvent;
  const byType = new Map<string, number>();
  const pushesByRepo = new Map<string, number>();
  const commitsByRepo = new Map<string, number>();
  const repositories = new Set<string>();
  let events = 0;
  let pushes = 0;
  let commits = 0;
  const out = createWriteStream(output);
  for (const file of files) {
    let rest = '';
    for await (const chunk of createReadStream(file).pipe(createGunzip())) {
      const text = rest + (chunk as Buffer).toString('utf8');
      const lines = text.split('\n');
      rest = lines.pop()!;
      let written = '';
      for (const line of lines) {
        if (line.length === 0) continue;
        const e = JSON.parse(line);
        if (
          typeof e?.id !== 'string' ||
          typeof e.type !== 'string' ||
          typeof e.created_at !== 'string' ||
          typeof e.repo?.name !== 'string' ||
          !Number.isFinite(Date.parse(e.created_at))
        ) {
          continue;
        }
        events++;
        byType.set(e.type, (byType.get(e.type) ?? 0) + 1);
        repositories.add(e.repo.name);
        if (e.type === 'PushEvent') {
          const p = push.check(e);
          const n = p.payload.size ?? p.payload.commits?.length ?? 0;
          pushes++;
          commits += n;
          pushesByRepo.set(p.repo.name, (pushesByRepo.get(p.repo.name) ?? 0) + 1);
          commitsByRepo.set(p.repo.name, (commitsByRepo.get(p.repo.name) ?? 0) + n);
        }
        written += `${JSON.stringify(e)}\n`;
      }
      if (!out.write(written)) await once(out, 'drain');
    }
  }
  out.end();
  await once(out, 'finish');
  return { events, pushes, commits, repositories: [...repositories] };
}

async function runLoop(file: string): Promise<void> {
  const began = performance.now();
  const counts = await loopFiles([file], join(tmp, 'github-bench-loop.ndjson'));
  finish({ ...counts, repositories: counts.repositories.length }, began);
}

/**
 * The hand-written loop over the day's hour files in `threads` worker threads, thread i taking
 * every threads-th file from the i-th (the split runs' splitFiles), with nothing shared and nothing
 * crossing but the counts at the end: how much two cores can speed this work up at best here.
 */
async function runLoopDay(dir: string, threads: number): Promise<void> {
  const began = performance.now();
  // The replay's own listing and split rule, so each thread reads what a split would.
  const { replayFiles, splitFiles } = await import('@codefeedr/plugin-github');
  const files = replayFiles(dir);
  const shares = Array.from({ length: threads }, (_, index) =>
    splitFiles(files, { index, count: threads }),
  );
  const parts = await Promise.all(
    shares.map((share, i) => {
      const output = join(tmp, `github-bench-loop-day-${i}.ndjson`);
      if (threads === 1) return loopFiles(share, output);
      const worker = new Worker(new URL(import.meta.url), {
        workerData: { files: share, output },
      });
      return new Promise<LoopCounts>((resolve, reject) => {
        worker.once('message', (counts: LoopCounts) => resolve(counts));
        worker.once('error', reject);
        worker.once('exit', (code) => code !== 0 && reject(new Error(`loop thread exit ${code}`)));
      });
    }),
  );
  const repositories = new Set(parts.flatMap((p) => p.repositories));
  finish(
    {
      events: parts.reduce((n, p) => n + p.events, 0),
      pushes: parts.reduce((n, p) => n + p.pushes, 0),
      commits: parts.reduce((n, p) => n + p.commits, 0),
      repositories: repositories.size,
    },
    began,
  );
}

/** Builds the big hour once: the fixture × copies, fresh ids, nearly sorted. */
function buildHour(copies: number): string {
  const file = join(tmp, `github-bench-hour-x${copies}.json.gz`);
  if (existsSync(file)) return file;
  mkdirSync(tmp, { recursive: true });
  const fixture = join(root, 'test/fixtures/github/events.ndjson.gz');
  // Its one full GH Archive hour (2015-01-01 12:00–12:59Z, 8,273 events); the rest span years.
  const lines = gunzipSync(readFileSync(fixture))
    .toString('utf8')
    .split('\n')
    .filter((line) => line.includes('"created_at":"2015-01-01T12:'));
  const out: string[] = [];
  let id = 90_000_000_000;
  for (const line of lines) {
    const event = JSON.parse(line) as { id: string };
    for (let k = 0; k < copies; k++) {
      event.id = String(id++);
      out.push(JSON.stringify(event));
    }
  }
  // Deterministic shuffle within blocks of 64 lines: a few seconds of disorder at most.
  let seed = 42;
  const random = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
  for (let start = 0; start < out.length; start += 64) {
    const end = Math.min(start + 64, out.length);
    for (let i = end - 1; i > start; i--) {
      const j = start + Math.floor(random() * (i - start + 1));
      [out[i], out[j]] = [out[j]!, out[i]!];
    }
  }
  writeFileSync(file, gzipSync(`${out.join('\n')}\n`));
  return file;
}

/**
 * A day of `hours` GH Archive hour files (2015-01-01-12 … ): the big hour each time, its
 * created_at moved to that hour, so each file is one hour of event time and the files follow
 * each other, as GH Archive's do.
 */
function buildDay(hourFile: string, hours: number): string {
  const dir = join(tmp, `github-bench-day-${basename(hourFile, '.json.gz')}-h${hours}`);
  if (existsSync(join(dir, 'complete'))) return dir;
  mkdirSync(dir, { recursive: true });
  const text = gunzipSync(readFileSync(hourFile)).toString('utf8');
  for (let h = 0; h < hours; h++) {
    const hour = String(12 + h).padStart(2, '0');
    const shifted = text.replaceAll(
      '"created_at":"2015-01-01T12:',
      `"created_at":"2015-01-01T${hour}:`,
    );
    writeFileSync(join(dir, `2015-01-01-${12 + h}.json.gz`), gzipSync(shifted));
  }
  writeFileSync(join(dir, 'complete'), '');
  return dir;
}

/** The hour is built in a child of its own: a forked child starts with its parent's peak RSS. */
function buildInChild(what: 'build' | 'build-day', ...args: string[]): string {
  const run = spawnSync(
    process.execPath,
    [fileURLToPath(import.meta.url), '--child', what, ...args],
    { encoding: 'utf8' },
  );
  const line = run.stdout.split('\n').find((l) => l.startsWith('BUILT '));
  if (run.status !== 0 || line === undefined)
    throw new Error(`building the input failed (${what}):\n${run.stderr}`);
  return line.slice('BUILT '.length);
}

/**
 * One side in a child of its own, both started as `npm start` starts the main job: with the V8
 * flags of every pipeline process (core's PIPELINE_V8_FLAGS), so the loop is judged alike.
 */
function child(
  side: 'pipeline' | 'loop' | 'splits' | 'loop-day',
  file: string,
  flags: readonly string[],
  ...rest: string[]
): Result {
  const run = spawnSync(
    process.execPath,
    [...flags, fileURLToPath(import.meta.url), '--child', side, file, ...rest],
    { encoding: 'utf8', maxBuffer: 64 * 2 ** 20 },
  );
  const line = run.stdout.split('\n').find((l) => l.startsWith('RESULT '));
  if (run.status !== 0 || line === undefined) {
    throw new Error(`${side} child failed (exit ${run.status}):\n${run.stderr}`);
  }
  return JSON.parse(line.slice('RESULT '.length)) as Result;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  if (!isMainThread) {
    const { files, output } = workerData as { files: string[]; output: string };
    parentPort!.postMessage(await loopFiles(files, output));
    return;
  }
  const childAt = process.argv.indexOf('--child');
  if (childAt !== -1) {
    const side = process.argv[childAt + 1];
    const file = process.argv[childAt + 2]!;
    if (side === 'build') process.stdout.write(`BUILT ${buildHour(Number(file))}\n`);
    else if (side === 'build-day')
      process.stdout.write(`BUILT ${buildDay(file, Number(process.argv[childAt + 3]))}\n`);
    else if (side === 'splits')
      await runPipeline(file, Number(process.argv[childAt + 3]), 'github-bench-splits.ndjson');
    else if (side === 'loop-day') await runLoopDay(file, Number(process.argv[childAt + 3]));
    else if (side === 'pipeline') await runPipeline(file, 1, 'github-bench-pipeline.ndjson');
    else await runLoop(file);
    return;
  }
  const bench = benchRun('github');
  const copies = arg('copies', 19);
  const rounds = arg('rounds', 1);
  const hours = arg('hours', 4);
  const file = buildInChild('build', String(copies));
  const day = buildInChild('build-day', file, String(hours));
  const { PIPELINE_V8_FLAGS: flags } = await import('@codefeedr/core');
  const pipeline: Result[] = [];
  const loop: Result[] = [];
  for (let r = 0; r < rounds; r++) {
    // Alternate which side goes first, so neither always gets the warmer machine.
    if (r % 2 === 0) {
      loop.push(child('loop', file, flags));
      pipeline.push(child('pipeline', file, flags));
    } else {
      pipeline.push(child('pipeline', file, flags));
      loop.push(child('loop', file, flags));
    }
  }
  const p = pipeline.at(-1)!;
  const l = loop.at(-1)!;
  for (const key of ['events', 'pushes', 'commits', 'repositories'] as const) {
    if (p[key] !== l[key])
      throw new Error(`counts differ: ${key} pipeline ${p[key]} loop ${l[key]}`);
  }
  const row = (name: string, rs: Result[]) =>
    `${name.padEnd(9)} cpu ${(median(rs.map((x) => x.cpuMs)) / 1000).toFixed(2).padStart(6)} s  wall ${(median(rs.map((x) => x.wallMs)) / 1000).toFixed(2).padStart(6)} s  peak RSS ${median(
      rs.map((x) => x.maxRssMb),
    )
      .toFixed(0)
      .padStart(4)} MB`;
  console.log(
    `bench:github — ${p.events.toLocaleString('en-US')} events (${copies} × the fixture, ${p.pushes.toLocaleString('en-US')} pushes, ${p.commits.toLocaleString('en-US')} commits), ${rounds} round(s), load ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
  );
  console.log(row('loop', loop));
  console.log(row('pipeline', pipeline));

  // A day of hour files, in one thread and in two splits, rounds alternating which goes first.
  const one: Result[] = [];
  const two: Result[] = [];
  const loopOne: Result[] = [];
  const loopTwo: Result[] = [];
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? [1, 2] : [2, 1];
    for (const n of order) (n === 1 ? one : two).push(child('splits', day, flags, String(n)));
    for (const n of order)
      (n === 1 ? loopOne : loopTwo).push(child('loop-day', day, flags, String(n)));
  }
  for (const key of ['events', 'pushes', 'commits', 'repositories'] as const) {
    for (const x of [...one, ...two, ...loopOne, ...loopTwo])
      if (x[key] !== one[0]![key])
        throw new Error(`the day's runs' counts differ: ${key} ${x[key]} vs ${one[0]![key]}`);
  }
  if (one[0]!.events !== hours * p.events)
    throw new Error(`the day holds ${one[0]!.events} events, not ${hours} × ${p.events}`);
  console.log(
    `day: ${hours} hour files, ${one[0]!.events.toLocaleString('en-US')} events (the big hour each, moved to its hour)`,
  );
  console.log(row('1 split', one));
  console.log(row('2 splits', two));
  console.log(row('loop ×1', loopOne));
  console.log(row('loop ×2', loopTwo));

  const cpuRatio = median(loop.map((x) => x.cpuMs)) / median(pipeline.map((x) => x.cpuMs));
  // "For any file size": the hour and the day of hours, in one thread; the larger one counts.
  const rssHour = median(pipeline.map((x) => x.maxRssMb));
  const rssDay = median(one.map((x) => x.maxRssMb));
  const rss = Math.max(rssHour, rssDay);
  const speedUp = median(one.map((x) => x.wallMs)) / median(two.map((x) => x.wallMs));
  // The ceiling two threads reach here on this work with nothing shared: what 2 cores allow.
  const loopSpeedUp = median(loopOne.map((x) => x.wallMs)) / median(loopTwo.map((x) => x.wallMs));
  console.log(
    `CPU ratio (loop / pipeline) ${cpuRatio.toFixed(2)} (target ≥ 0.7)   pipeline peak RSS ${rss.toFixed(0)} MB (hour ${rssHour.toFixed(0)}, day ${rssDay.toFixed(0)}; target < 200 MB)   2 splits / 1 (wall) ${speedUp.toFixed(2)}× (target ≥ 1.7; the hand-written loop in 2 threads / 1: ${loopSpeedUp.toFixed(2)}×)`,
  );
  const written = bench.write(
    [
      { name: 'CPU loop / pipeline', value: cpuRatio, target: '>= 0.7', met: cpuRatio >= 0.7 },
      { name: 'pipeline peak RSS MB (hour, day)', value: rss, target: '< 200', met: rss < 200 },
      {
        name: 'day wall 1 split / 2 splits',
        value: speedUp,
        target: '>= 1.7',
        met: speedUp >= 1.7,
      },
      { name: 'day wall loop 1 thread / 2 threads (the ceiling)', value: loopSpeedUp },
    ],
    {
      events: p.events,
      copies,
      rounds,
      hours,
      loop,
      pipeline,
      oneSplit: one,
      twoSplits: two,
      loopOneThread: loopOne,
      loopTwoThreads: loopTwo,
    },
  );
  console.log(`figures: ${written}`);
}

await main();
