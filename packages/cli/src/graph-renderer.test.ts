import type { PipelineDescription } from '@codefeedr/core';
import { describe, expect, it } from 'vitest';
import { graphModelOfDescription, renderGraph } from './graph-renderer.js';

// A windowed stage whose late records feed their own sink through a named output.
const description: PipelineDescription = {
  name: 'late-data',
  stages: [
    { id: 'events', kind: 'input', component: 'ex:events', inputTypes: [], outputType: 'ex.E@1' },
    {
      id: 'counts',
      kind: 'transform',
      component: 'ex:counts',
      inputTypes: ['ex.E@1'],
      outputType: 'ex.Count@1',
      outputs: { late: 'ex.E@1' },
    },
    { id: 'db', kind: 'output', component: 'ex:db', inputTypes: ['ex.Count@1'], outputType: null },
    { id: 'lost', kind: 'output', component: 'ex:file', inputTypes: ['ex.E@1'], outputType: null },
  ],
  edges: [
    { from: 'events', to: 'counts', inputIndex: 0 },
    { from: 'counts', to: 'db', inputIndex: 0 },
    { from: 'counts', output: 'late', to: 'lost', inputIndex: 0 },
  ],
};

describe('renderGraph', () => {
  const model = graphModelOfDescription(description);

  it('gives an edge from a named output that output’s type, in every format', () => {
    expect(model.edges[2]).toEqual({
      from: 'counts',
      output: 'late',
      to: 'lost',
      inputIndex: 0,
      type: 'ex.E@1',
    });
    expect(renderGraph(model, 'text')).toContain('  counts:late ─▶ lost  [input 1: ex.E@1]');
    expect(renderGraph(model, 'mermaid')).toContain('  s_counts -->|"late: ex.E@1"| s_lost');
    expect(renderGraph(model, 'dot')).toContain('  "counts" -> "lost" [label="late: ex.E@1"];');
  });
});
