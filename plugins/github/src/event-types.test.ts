import { readFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { SchemaMismatchError } from '@codefeedr/core';
import { describe, expect, it } from 'vitest';
import {
  GitHubEventType,
  gitHubEventMessageTypes,
  gitHubEventTypeNames,
  payloadSchemas,
} from './event-types.js';

const fixture = new URL('../../../test/fixtures/github/events.ndjson.gz', import.meta.url);
const events = gunzipSync(readFileSync(fixture))
  .toString('utf8')
  .split('\n')
  .filter((line) => line.length > 0)
  .map(
    (line) => JSON.parse(line) as { id: string; type: string; payload: Record<string, unknown> },
  );

describe('GitHub event message types', () => {
  it('accepts every real event of 2012–2023 as github.Event@1', () => {
    expect(events.length).toBe(10_557);
    const rejected = events.filter((event) => !GitHubEventType.schema.safeParse(event).success);
    expect(rejected.map((event) => event.id)).toEqual([]);
  });

  it.each(gitHubEventTypeNames)('accepts every real %s in the fixture', (type) => {
    const messageType = gitHubEventMessageTypes[type];
    const ofType = events.filter((event) => event.type === type);
    expect(ofType.length, `the fixture has ${type}s`).toBeGreaterThan(0);
    const problems: string[] = [];
    for (const event of ofType) {
      const result = messageType.schema.safeParse(event);
      if (!result.success) problems.push(`${event.id}: ${result.error.message}`);
      // Unknown fields are kept, not stripped: the typed value serialises like the input.
      else if (!isDeepStrictEqual(result.data, event)) problems.push(`${event.id}: changed`);
    }
    expect(problems).toEqual([]);
  });

  it("accepts the events API's shrunken shapes of October 2025 on (pushes without commits, minimal pull requests)", () => {
    // Today's live shapes, made from the real events: the push payload keeps push_id, ref,
    // head and before; a pull request keeps url, id, node_id, number, head and base.
    const minimalPullRequest = (pr: Record<string, unknown>) => {
      const side = (
        s:
          | { ref?: string; sha?: string; repo?: { id: number; url: string; name: string } }
          | undefined,
      ) =>
        s && {
          ref: s.ref,
          sha: s.sha,
          repo: s.repo && { id: s.repo.id, url: s.repo.url, name: s.repo.name },
        };
      return {
        url: pr.url,
        id: pr.id,
        node_id: pr.node_id,
        number: pr.number,
        head: side(pr.head as never),
        base: side(pr.base as never),
      };
    };
    const shrunk = events.flatMap((event) => {
      if (event.type === 'PushEvent') {
        const { commits: _c, size: _s, distinct_size: _d, ...payload } = event.payload;
        return [{ ...event, payload }];
      }
      if (
        ['PullRequestEvent', 'PullRequestReviewEvent', 'PullRequestReviewCommentEvent'].includes(
          event.type,
        ) &&
        event.payload.pull_request !== undefined
      ) {
        const pull_request = minimalPullRequest(
          event.payload.pull_request as Record<string, unknown>,
        );
        return [{ ...event, payload: { ...event.payload, pull_request } }];
      }
      return [];
    });
    const byType = (type: string) => shrunk.filter((e) => e.type === type);
    expect(byType('PushEvent').length).toBeGreaterThan(1000);
    expect(byType('PullRequestEvent').length).toBeGreaterThan(100);
    const problems: string[] = [];
    for (const event of shrunk) {
      const type = gitHubEventMessageTypes[event.type as keyof typeof gitHubEventMessageTypes];
      const result = type.schema.safeParse(event);
      if (!result.success) problems.push(`${event.type} ${event.id}: ${result.error.message}`);
    }
    expect(problems).toEqual([]);
  });

  it('names types name@version and emits a JSON Schema for each', () => {
    expect(gitHubEventMessageTypes.PushEvent.id).toBe('github.PushEvent@1');
    expect(gitHubEventTypeNames).toHaveLength(15);
    for (const type of gitHubEventTypeNames) {
      const schema = gitHubEventMessageTypes[type].jsonSchema();
      expect(schema.type).toBe('object');
      expect((schema.properties as Record<string, { const?: string }>).type?.const).toBe(type);
    }
  });

  it('rejects an event whose payload breaks its schema, naming the field', () => {
    const push = events.find((event) => event.type === 'PushEvent')!;
    const broken = { ...push, payload: { ...push.payload, size: 'many' } };
    expect(() => gitHubEventMessageTypes.PushEvent.check(broken)).toThrow(SchemaMismatchError);
    expect(() => gitHubEventMessageTypes.PushEvent.check(broken)).toThrow(/payload\.size/);
  });

  it('rejects an event of another type', () => {
    const watch = events.find((event) => event.type === 'WatchEvent')!;
    expect(() => gitHubEventMessageTypes.PushEvent.check(watch)).toThrow(SchemaMismatchError);
  });

  it('has a payload schema for exactly the typed event names', () => {
    expect(Object.keys(payloadSchemas).sort()).toEqual([...gitHubEventTypeNames].sort());
  });
});
