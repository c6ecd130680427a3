// The child of github-to-databases.e2e.test.ts: the prebuilt github-to-postgres and
// github-to-mongo pipelines run side by side in one process (inline, or local over Kafka)
// with a file checkpoint store, so the test can SIGKILL it at any moment and start it again.
// Settings arrive as JSON in GITHUB_TO_DATABASES_CHILD; progress leaves as JSON lines:
//
//   { event: 'checkpoint', pipeline, unit, id }   a checkpoint was saved
//   { event: 'finished', pipeline, status, deadLetters, outputs }   a pipeline ended
//   { event: 'failed', error }                     a pipeline failed (exit code 1)
import {
  ConsoleLogger,
  FileCheckpointStore,
  redactText,
  type CheckpointStore,
  type Pipeline,
  type PipelineBuilder,
} from '@codefeedr/core';
import {
  githubToMongoBuilder,
  githubToMongoPipeline,
  githubToPostgresBuilder,
  githubToPostgresPipeline,
} from '@codefeedr/pipelines-github';
import { kafkaBuffer } from '@codefeedr/plugin-kafka';

interface ChildSettings {
  mode: 'inline' | 'local';
  /** Unique per test run: names topics, consumer groups and dead-letter topics. */
  run: string;
  paths: string;
  postgresUrl: string;
  mongoUrl: string;
  database: string;
  prefix: string;
  checkpointDir: string;
  brokers?: string[];
  batchSize: number;
}

const settings = JSON.parse(process.env.GITHUB_TO_DATABASES_CHILD ?? 'null') as ChildSettings;
const emit = (event: Record<string, unknown>): void => {
  process.stdout.write(`${JSON.stringify(event)}\n`);
};

const files = new FileCheckpointStore(settings.checkpointDir);
const checkpointStore: CheckpointStore = {
  load: (pipeline, unit, instance) => files.load(pipeline, unit, instance),
  async save(checkpoint) {
    await files.save(checkpoint);
    emit({
      event: 'checkpoint',
      pipeline: checkpoint.pipeline,
      unit: checkpoint.unit,
      id: checkpoint.id,
    });
  },
};

/** In local mode every edge goes through Kafka, on topics and groups no other run uses. */
function prepare(builder: PipelineBuilder, stageIds: readonly string[]): Pipeline {
  if (settings.mode === 'local') {
    builder.setBuffer(kafkaBuffer, {
      brokers: settings.brokers,
      // A killed run's consumers must leave their groups quickly for the next run to start.
      sessionTimeoutMs: 6_000,
      heartbeatIntervalMs: 500,
      logLevel: 'nothing',
    });
    builder.setDeadLetter({ topicSuffix: `.${settings.run}.dlq` });
    for (const id of stageIds) {
      const name = `${settings.run}.${builder.name}.${id}`;
      builder.setStageOptions(id, { topic: name, group: name });
    }
  }
  return builder.build();
}

const source = { paths: settings.paths, prefix: settings.prefix };
const postgresOptions = { ...source, url: settings.postgresUrl };
const mongoOptions = { ...source, url: settings.mongoUrl, database: settings.database };
const pipelines = [
  prepare(
    githubToPostgresBuilder(postgresOptions),
    githubToPostgresPipeline(postgresOptions).stages.map((s) => s.id),
  ),
  prepare(
    githubToMongoBuilder(mongoOptions),
    githubToMongoPipeline(mongoOptions).stages.map((s) => s.id),
  ),
];

try {
  await Promise.all(
    pipelines.map(async (pipeline) => {
      const summary = await pipeline.run({
        mode: settings.mode,
        checkpointStore,
        checkpointIntervalMs: 250,
        batchSize: settings.batchSize,
        handleSignals: true,
        logger: new ConsoleLogger({ level: 'warn', format: 'json' }),
      });
      emit({
        event: 'finished',
        pipeline: pipeline.name,
        status: summary.status,
        deadLetters: summary.deadLetters,
        outputs: summary.metrics.stages
          .filter((s) => s.kind === 'output')
          .reduce((n, s) => n + s.recordsIn, 0),
      });
    }),
  );
  process.exit(0);
} catch (error) {
  emit({ event: 'failed', error: redactText(String((error as Error)?.stack ?? error)) });
  process.exit(1);
}
