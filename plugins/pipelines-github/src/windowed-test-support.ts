// Shared by the windowed pipelines' tests: the fixture's events read plainly, and local-mode
// wiring over the real Kafka the test services run.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import type { Pipeline, PipelineBuilder } from '@codefeedr/core';
import { silentLogger } from '@codefeedr/core';
import { kafkaBuffer } from '@codefeedr/plugin-kafka';
import { expect } from 'vitest';
import { BUNDLED_EVENTS } from './github-summary-pipeline.js';

export interface FixtureEvent {
  id: string;
  type: string;
  created_at: string;
  repo: { name: string };
  payload: { action?: string; size?: number; commits?: unknown[] };
}

/** Every event of the bundled GH Archive file, parsed line by line, nothing else. */
export function bundledEvents(): FixtureEvent[] {
  return gunzipSync(readFileSync(BUNDLED_EVENTS))
    .toString('utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as FixtureEvent);
}

export function readNdjson<T>(path: string): T[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as T);
}

export const iso = (ms: number): string => new Date(ms).toISOString();

/** Every edge through Kafka, on topics, groups and dead-letter topics no other run uses. */
export function overKafka(builder: PipelineBuilder): Pipeline {
  const brokers = process.env.CODEFEEDR_KAFKA_BROKERS?.split(',');
  if (!brokers)
    throw new Error(
      'CODEFEEDR_KAFKA_BROKERS is not set: run through vitest (its global setup starts Kafka) or `npm run services:up`.',
    );
  const run = randomBytes(4).toString('hex');
  builder.setBuffer(kafkaBuffer, { brokers, logLevel: 'nothing' });
  builder.setDeadLetter({ topicSuffix: `.${run}.dlq` });
  const pipeline = builder.build();
  for (const stage of pipeline.stages) {
    const name = `${run}.${builder.name}.${stage.id}`;
    builder.setStageOptions(stage.id, { topic: name, group: name });
  }
  return builder.build();
}

/** Runs `builder` in local mode over Kafka and returns the NDJSON rows it wrote to `path`. */
export async function rowsOverKafka<T>(builder: PipelineBuilder, path: string): Promise<T[]> {
  const summary = await overKafka(builder).run({
    mode: 'local',
    logger: silentLogger,
    batchSize: 1000,
  });
  expect(summary.status).toBe('finished');
  expect(summary.metrics.stages.reduce((n, s) => n + s.deadLettered, 0)).toBe(0);
  return readNdjson<T>(path);
}

/** Runs `pipeline` inline and returns the NDJSON rows it wrote to `path`; in-order input leaves no dead letters. */
export async function rowsInline<T>(pipeline: Pipeline, path: string): Promise<T[]> {
  const summary = await pipeline.run({ mode: 'inline', logger: silentLogger });
  expect(summary.status).toBe('finished');
  // In-order input: no event is late, none dead-lettered.
  expect(summary.deadLetters).toEqual([]);
  return readNdjson<T>(path);
}
