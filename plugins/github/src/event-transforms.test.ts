import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import {
  Any,
  MemoryBuffer,
  PipelineBuilder,
  decodeDeadLetter,
  defineOutput,
  z,
  type BufferMessage,
  type StreamRecord,
} from '@codefeedr/core';
import { afterAll, describe, expect, it } from 'vitest';
import { gitHubEventTypeNames, type GitHubEvent } from './event-types.js';
import { eventTransformName, eventTransforms } from './event-transforms.js';
import { replayInput } from './replay-input.js';

const fixture = new URL('../../../test/fixtures/github/events.ndjson.gz', import.meta.url).pathname;
const events = gunzipSync(readFileSync(fixture))
  .toString('utf8')
  .split('\n')
  .filter(Boolean)
  .map((line) => JSON.parse(line) as GitHubEvent);
const dir = mkdtempSync(join(tmpdir(), 'cf-github-transforms-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** An output stage that keeps what it was given, per stage id. */
function collecting(id: string, into: Map<string, unknown[]>) {
  const values: unknown[] = [];
  into.set(id, values);
  return defineOutput({
    name: 'collect',
    description: 'Collects values in memory for the test.',
    configSchema: z.object({}),
    inputTypes: [Any] as const,
    createSink: () => ({
      write: (batch: readonly StreamRecord<unknown>[]) => {
        for (const record of batch) values.push(record.value);
      },
      flush: async () => {},
      close: async () => {},
    }),
  }).create(id);
}

async function readTopic(buffer: MemoryBuffer, topic: string): Promise<BufferMessage[]> {
  const consumer = await buffer.consumer({
    group: `reader-${topic}`,
    topics: [topic],
    start: 'earliest',
  });
  const out: BufferMessage[] = [];
  for (;;) {
    const batch = await consumer.poll(1000, 20);
    if (batch.length === 0) break;
    out.push(...batch);
  }
  await consumer.close();
  return out;
}

describe('typed GitHub event transforms', () => {
  it('names components after the event type', () => {
    expect(eventTransformName('PushEvent')).toBe('push-events');
    expect(eventTransformName('PullRequestReviewCommentEvent')).toBe(
      'pull-request-review-comment-events',
    );
    expect(eventTransforms.PushEvent.outputType.id).toBe('github.PushEvent@1');
  });

  it('types every real event of each of the 15 types, through the inline runtime', async () => {
    const collected = new Map<string, unknown[]>();
    const builder = new PipelineBuilder('typed-events').add(
      replayInput.create('events', { paths: fixture }),
    );
    for (const type of gitHubEventTypeNames) {
      const transform = eventTransforms[type].create(eventTransformName(type));
      builder.edge('events', transform).edge(transform, collecting(`${type}-out`, collected));
    }
    const buffer = new MemoryBuffer();
    const summary = await builder
      .setBuffer(buffer)
      .build()
      .run({ mode: 'inline', batchSize: 1000 });
    expect(summary.status).toBe('finished');
    for (const type of gitHubEventTypeNames) {
      const expected = events
        .filter((e) => e.type === type)
        .map((e) => e.id)
        .sort();
      const got = (collected.get(`${type}-out`) as GitHubEvent[]).map((e) => e.id).sort();
      expect(got, type).toEqual(expected);
      expect(got.length, type).toBeGreaterThan(0);
    }
    const deadLettered = summary.metrics.stages.reduce((n, s) => n + s.deadLettered, 0);
    expect(deadLettered).toBe(0);
    await buffer.close();
  });

  it('sends an event whose payload breaks its schema to the dead-letter topic; the rest flows on', async () => {
    const pushes = events.filter((e) => e.type === 'PushEvent').slice(0, 50);
    const broken = { ...pushes[7]!, payload: { ...pushes[7]!.payload, size: 'lots' } };
    const path = join(dir, 'with-broken.ndjson');
    writeFileSync(
      path,
      [...pushes.slice(0, 7), broken, ...pushes.slice(8)].map((e) => JSON.stringify(e)).join('\n'),
    );
    const collected = new Map<string, unknown[]>();
    const buffer = new MemoryBuffer();
    const summary = await new PipelineBuilder('broken-push')
      .append(replayInput.create('events', { paths: path }))
      .append(eventTransforms.PushEvent.create('push-events'))
      .append(collecting('out', collected))
      .setBuffer(buffer)
      .build()
      .run({ mode: 'inline' });
    expect(summary.status).toBe('finished');
    expect((collected.get('out') as GitHubEvent[]).map((e) => e.id)).toEqual(
      pushes.filter((_, i) => i !== 7).map((e) => e.id),
    );
    const letters = (await readTopic(buffer, 'push-events.dlq')).map((m) =>
      decodeDeadLetter(m.value),
    );
    expect(letters).toHaveLength(1);
    expect(letters[0]!.error.message).toMatch(/github\.PushEvent@1.*payload\.size/);
    expect((letters[0]!.original as unknown as { value: { id: string } }).value.id).toBe(broken.id);
    await buffer.close();
  });
});
