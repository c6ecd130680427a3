// The conformance suites' crash-test child: a two-stage pipeline (an input component → an
// output component) run by core's runtime in inline mode with a file checkpoint store, in its
// own process so the suite can SIGKILL it at any moment. Settings arrive as JSON in
// CODEFEEDR_TESTKIT_PIPELINE; progress leaves as JSON lines on stdout:
//
//   { event: 'ready', commits }          the source is open (commits: it has commit())
//   { event: 'progress', written }       after each sink write: records written by this run
//   { event: 'checkpoint', id, written } a checkpoint is saved; `written` records are covered
//   { event: 'committed', written }      the source committed that checkpoint's position
//   { event: 'finished', status, ... }   the run ended (bounded input, or SIGTERM)
//   { event: 'failed', error }           the run failed (exit code 1)
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const settings = JSON.parse(process.env.CODEFEEDR_TESTKIT_PIPELINE ?? 'null');
if (settings === null) {
  process.stderr.write('pipeline-worker: CODEFEEDR_TESTKIT_PIPELINE is not set\n');
  process.exit(2);
}

const emit = (event) => process.stdout.write(`${JSON.stringify(event)}\n`);
const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// A file URL or path imports as is. A package name is tried from here first, then from the
// working directory (the plugin's own project, where its tests run).
async function load(specifier) {
  try {
    return await import(specifier);
  } catch (error) {
    if (error?.code !== 'ERR_MODULE_NOT_FOUND' || /^(file:|\.|\/)/.test(specifier)) throw error;
    const fromProject = createRequire(join(process.cwd(), 'package.json')).resolve(specifier);
    return import(pathToFileURL(fromProject).href);
  }
}

async function component(spec, kind) {
  const loaded = await load(spec.module);
  const found = loaded[spec.export];
  if (found?.kind !== kind || typeof found.create !== 'function') {
    process.stderr.write(
      `pipeline-worker: ${spec.module} export "${spec.export}" is not an ${kind} component\n`,
    );
    process.exit(2);
  }
  return found;
}

const core = await load('@codefeedr/core');
const input = (await component(settings.input, 'input')).create(
  settings.input.id,
  settings.input.config,
);
const output = (await component(settings.output, 'output')).create(
  settings.output.id,
  settings.output.config,
);

let written = 0;
let flushed = 0;
let saved = 0;

// The stages as built, with their source and sink wrapped to report progress (and to pace the
// run, so a kill lands mid-stream rather than after the end).
const observedInput = {
  ...input,
  async createSource(ctx) {
    const source = await input.createSource(ctx);
    const commits = typeof source.commit === 'function';
    emit({ event: 'ready', commits });
    return {
      poll: (maxRecords, signal) => source.poll(maxRecords, signal),
      position: () => source.position(),
      restore: (position) => source.restore(position),
      ...(commits
        ? {
            async commit(position) {
              await source.commit(position);
              emit({ event: 'committed', written: saved });
            },
          }
        : {}),
      close: () => source.close(),
    };
  },
};
const observedOutput = {
  ...output,
  async createSink(ctx) {
    const sink = await output.createSink(ctx);
    return {
      async write(batch) {
        const result = await sink.write(batch);
        written += batch.length;
        emit({ event: 'progress', written });
        if (settings.pauseMs > 0) await pause(settings.pauseMs);
        return result;
      },
      async flush() {
        const covered = written;
        const result = await sink.flush();
        flushed = covered;
        return result;
      },
      close: () => sink.close(),
    };
  },
};

const files = new core.FileCheckpointStore(settings.checkpointDir);
const checkpointStore = {
  load: (pipeline, unit, instance) => files.load(pipeline, unit, instance),
  async save(checkpoint) {
    const covered = flushed;
    await files.save(checkpoint);
    saved = covered;
    emit({ event: 'checkpoint', id: checkpoint.id, written: covered });
  },
};

const pipeline = new core.PipelineBuilder(settings.pipeline)
  .append(observedInput)
  .append(observedOutput)
  .build();
try {
  const summary = await pipeline.run({
    mode: 'inline',
    checkpointStore,
    checkpointIntervalMs: settings.checkpointIntervalMs,
    batchSize: settings.batchSize,
    handleSignals: true,
    logger: new core.ConsoleLogger({ level: 'warn', format: 'json' }),
  });
  const deadLettered = summary.metrics.stages.reduce((n, s) => n + s.deadLettered, 0);
  emit({ event: 'finished', status: summary.status, written, deadLettered });
  process.exit(0);
} catch (error) {
  emit({ event: 'failed', error: core.redactText(String(error?.stack ?? error)) });
  process.exit(1);
}
