// The issue-response-time-stats stage driven batch by batch through the chain core compiles for
// a run, where the replay (which sorts each file by event time) cannot reach: answers arriving
// out of order within the watermark's bound, and a restart from a checkpoint between batches.
import { silentLogger, type JsonValue, type StreamRecord } from '@codefeedr/core';
import { compileTransform, type OperatorChain } from '@codefeedr/core/internal';
import { describe, expect, it } from 'vitest';
import { issueResponseTimeTransform, type IssueResponseTime } from './issue-response-time-stats.js';
import { bundledEvents, type FixtureEvent } from './windowed-test-support.js';

const MINUTE = 60_000;

interface ThreadEvent extends FixtureEvent {
  actor: { login: string };
  payload: FixtureEvent['payload'] & { issue?: { number: number; user?: { login: string } } };
}

const events = bundledEvents() as ThreadEvent[];
const issue = events.find((e) => e.type === 'IssuesEvent' && e.payload.action === 'opened')!;
const commentTemplate = events.find((e) => e.type === 'IssueCommentEvent')!;
const openedAt = Date.parse(issue.created_at);
const author = issue.payload.issue!.user?.login ?? issue.actor.login;

/** A copy of a real comment event, moved onto the issue, `afterMs` after its opening. */
function comment(login: string, afterMs: number): ThreadEvent {
  const copy = structuredClone(commentTemplate);
  copy.actor = { ...copy.actor, login };
  copy.repo = issue.repo;
  copy.created_at = new Date(openedAt + afterMs).toISOString();
  copy.payload.issue = issue.payload.issue;
  return copy;
}

function chain(state?: JsonValue): { chain: OperatorChain; deadLetters: unknown[] } {
  const deadLetters: unknown[] = [];
  const stage = issueResponseTimeTransform.create('response-times', {
    responseWithinMs: 10 * MINUTE,
    outOfOrdernessMs: MINUTE,
  });
  const compiled = compileTransform(
    stage,
    {
      stageId: stage.id,
      pipelineName: 'test',
      logger: silentLogger,
      signal: new AbortController().signal,
    },
    { retries: 0, deadLetter: (record) => deadLetters.push(record.value) },
  );
  if (state !== undefined) compiled.restoreState(state);
  return { chain: compiled, deadLetters };
}

const records = (values: ThreadEvent[]): StreamRecord[] =>
  values.map((value) => ({ key: undefined, value, timestamp: 0 }));

const rows = (out: StreamRecord[]) => out.map((r) => r.value as IssueResponseTime);

describe('issue-response-time-stats', () => {
  it('keeps the earliest answer by someone else even when it arrives after a later one', () => {
    const { chain: c, deadLetters } = chain();
    const out: StreamRecord[] = [];
    out.push(...c.processBatch(0, 'issues', records([issue])));
    out.push(...c.processBatch(1, 'comments', records([comment(author, MINUTE)]))); // own reply
    out.push(...c.processBatch(1, 'comments', records([comment('late-helper', 5.5 * MINUTE)])));
    // 30 s older than the comment before it: within the watermark's minute, so still counted.
    out.push(...c.processBatch(1, 'comments', records([comment('helper', 5 * MINUTE)])));
    out.push(...c.finish());
    expect(deadLetters).toEqual([]);
    expect(rows(out)).toEqual([
      expect.objectContaining({
        repo: issue.repo.name,
        issuesOpened: 1,
        answered: 1,
        unanswered: 0,
        p50ResponseMs: 5 * MINUTE,
        p90ResponseMs: 5 * MINUTE,
      }),
    ]);
  });

  it('gives the same row after a restart from the state taken between any two batches', () => {
    const batches: [number, ThreadEvent[]][] = [
      [0, [issue]],
      [1, [comment('helper', 7 * MINUTE)]],
      [1, [comment('other', 6.5 * MINUTE)]],
      [1, [comment('third', 9 * MINUTE)]],
    ];
    const whole = chain();
    const expected = [
      ...batches.flatMap(([input, values]) =>
        whole.chain.processBatch(input, `in-${input}`, records(values)),
      ),
      ...whole.chain.finish(),
    ];
    expect(rows(expected)).toEqual([
      expect.objectContaining({ answered: 1, p50ResponseMs: 6.5 * MINUTE }),
    ]);
    for (let cut = 0; cut <= batches.length; cut++) {
      const first = chain();
      const out = batches
        .slice(0, cut)
        .flatMap(([input, values]) =>
          first.chain.processBatch(input, `in-${input}`, records(values)),
        );
      const state = JSON.parse(JSON.stringify(first.chain.snapshotState())) as JsonValue;
      const second = chain(state);
      out.push(
        ...batches
          .slice(cut)
          .flatMap(([input, values]) =>
            second.chain.processBatch(input, `in-${input}`, records(values)),
          ),
        ...second.chain.finish(),
      );
      expect(rows(out)).toEqual(rows(expected));
    }
  });
});
