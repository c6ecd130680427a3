import { describe, expect, it } from 'vitest';
import { PipelineFileError, type PipelineProblem } from './errors.js';
import { fixtureProject } from './fixture-project.js';
import { checkPipeline } from './pipeline-check.js';
import { parsePipelineText } from './pipeline-file.js';
import { discoverPlugins } from './plugin-catalog.js';

const component = (
  name: string,
  kind: string,
  types: Record<string, unknown>,
  configSchema: Record<string, unknown> = { type: 'object' },
) => ({
  name,
  kind,
  export: name.replace(/-(.)/g, (_m: string, c: string) => c.toUpperCase()),
  description: `${name}.`,
  configSchema,
  ...types,
});

const catalog = discoverPlugins(
  fixtureProject([
    {
      name: 'codefeedr-plugin-shapes',
      codefeedr: {
        apiVersion: 1,
        components: [
          component(
            'words',
            'input',
            { outputType: 'ex.Word@1' },
            {
              type: 'object',
              properties: { count: { type: 'integer', minimum: 1 }, lang: { type: 'string' } },
              required: ['count'],
              additionalProperties: false,
            },
          ),
          component('numbers', 'input', { outputType: 'ex.Number@1' }),
          component('upper', 'transform', { inputTypes: ['ex.Word@1'], outputType: 'ex.Word@1' }),
          component('pair', 'transform', {
            inputTypes: ['ex.Word@1', 'ex.Number@1'],
            outputType: 'ex.Pair@1',
          }),
          component('print', 'output', { inputTypes: ['any@1'] }),
          component('words-out', 'output', { inputTypes: ['ex.Word@1'] }),
        ],
      },
    },
  ]),
  { coreVersion: '0.1.0' },
);

function check(lines: string[]) {
  return checkPipeline(parsePipelineText(lines.join('\n'), 'p.yaml', { env: {} }), catalog);
}

function problemsOf(lines: string[]): readonly PipelineProblem[] {
  try {
    check(lines);
  } catch (error) {
    expect(error).toBeInstanceOf(PipelineFileError);
    return (error as PipelineFileError).problems;
  }
  throw new Error('expected a PipelineFileError');
}

describe('checkPipeline', () => {
  it('resolves a valid pipeline with short and full names', () => {
    const resolved = check([
      'name: ok',
      'stages:',
      '  - { id: w, use: words, with: { count: 2 } }',
      '  - { id: n, use: "codefeedr-plugin-shapes:numbers" }',
      '  - { id: p, use: pair, from: [w, n] }',
      '  - { id: out, use: print, from: p }',
    ]);
    expect(resolved.stages.map((s) => [s.id, s.component.id, s.from])).toEqual([
      ['w', 'codefeedr-plugin-shapes:words', []],
      ['n', 'codefeedr-plugin-shapes:numbers', []],
      ['p', 'codefeedr-plugin-shapes:pair', ['w', 'n']],
      ['out', 'codefeedr-plugin-shapes:print', ['p']],
    ]);
  });

  it('reports unknown components, config errors, type mismatches and arity together, located', () => {
    const problems = problemsOf([
      'name: bad',
      'stages:',
      '  - id: w',
      '    use: words',
      '    with: { lang: 3, colour: red }',
      '  - { id: n, use: numbers }',
      '  - { id: x, use: wordz, from: w }',
      '  - { id: p, use: pair, from: [n, w] }',
      '  - { id: u, use: upper, from: [w, n] }',
      '  - { id: o, use: words-out, from: ghost }',
    ]);
    expect(problems.map((p) => [p.code, p.position?.line, p.position?.column])).toEqual([
      ['CONFIG_INVALID', 5, 11],
      ['CONFIG_INVALID', 5, 22],
      ['CONFIG_INVALID', 5, 19],
      ['COMPONENT_NOT_FOUND', 7, 19],
      ['EDGE_TYPE_MISMATCH', 8, 32],
      ['EDGE_TYPE_MISMATCH', 8, 35],
      ['EDGE_ARITY', 9, 32],
      ['STAGE_NOT_FOUND', 10, 36],
    ]);
    const text = problems.map((p) => p.message).join('\n');
    expect(text).toContain('with.count is required');
    expect(text).toContain('with.colour is not a known field');
    expect(text).toContain('with.lang must be string');
    expect(text).toContain('Did you mean "words"');
    expect(text).toContain(
      'input 1 expects ex.Word@1, but "n" (codefeedr-plugin-shapes:numbers) emits ex.Number@1',
    );
  });

  it('rejects cycles, parents on inputs, outputs used as parents and non-stage components', () => {
    const problems = problemsOf([
      'name: loops',
      'stages:',
      '  - { id: w, use: words, with: { count: 1 }, from: u }',
      '  - { id: u, use: upper, from: v }',
      '  - { id: v, use: upper, from: u }',
      '  - { id: o, use: print, from: w }',
      '  - { id: o2, use: print, from: o }',
      '  - { id: m, use: memory }',
    ]);
    expect(problems.map((p) => p.code).sort()).toEqual(
      ['COMPONENT_KIND_MISMATCH', 'EDGE_INVALID', 'EDGE_INVALID', 'PIPELINE_CYCLE'].sort(),
    );
  });
});
