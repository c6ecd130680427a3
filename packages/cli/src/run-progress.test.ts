import type { PipelineMetricsSnapshot } from '@codefeedr/core';
import { describe, expect, it } from 'vitest';
import { RunProgress } from './run-progress.js';

function metrics(input: number, output: number): PipelineMetricsSnapshot {
  const stage = (s: string, kind: 'input' | 'output', recordsIn: number, recordsOut: number) =>
    ({ stage: s, kind, recordsIn, recordsOut }) as PipelineMetricsSnapshot['stages'][number];
  return {
    pipeline: 'p',
    mode: 'inline',
    startedAt: 0,
    stages: [stage('numbers', 'input', 0, input), stage('print', 'output', output, output)],
  };
}

describe('RunProgress', () => {
  it('shows each stage’s count and its rate since the previous line', () => {
    const progress = new RunProgress(0);
    expect(progress.line(metrics(500, 400), 500)).toBe(
      '1s  numbers 500 (1.00k/s)  print 400 (800/s)',
    );
    // 2,500 more records in the next 500 ms: 5k/s; a stalled stage shows 0/s.
    expect(progress.line(metrics(3000, 400), 1000)).toBe(
      '1s  numbers 3.00k (5.00k/s)  print 400 (0/s)',
    );
    expect(progress.line(metrics(12_345_678, 2_000_000), 11_000)).toMatch(
      /^11s {2}numbers 12\.3M \(1\.23M\/s\) {2}print 2\.00M \(200k\/s\)$/,
    );
  });
});
