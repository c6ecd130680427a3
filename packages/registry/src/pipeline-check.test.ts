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
          component('split', 'transform', {
            inputTypes: ['ex.Word@1'],
            outputType: 'ex.Word@1',
            outputs: { short: 'ex.Word@1', counts: 'ex.Number@1' },
          }),
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
      ['CONFIG_INVALID', 5, 19],
      ['CONFIG_INVALID', 5, 22],
      ['COMPONENT_NOT_FOUND', 7, 19],
      ['TYPE_MISMATCH', 8, 32],
      ['TYPE_MISMATCH', 8, 35],
      ['INPUT_COUNT_MISMATCH', 9, 32],
      ['UNKNOWN_STAGE', 10, 36],
    ]);
    const text = problems.map((p) => p.message).join('\n');
    expect(text).toContain('with.count is required');
    expect(text).toContain('with.colour is not a known field');
    expect(text).toContain('with.lang must be string');
    expect(text).toContain('Did you mean "words"');
    expect(text).toContain(
      'Input 1 of stage "p" expects ex.Word@1 but its parent "n" emits ex.Number@1',
    );
  });

  it('reads named outputs as <stage>:<output>, type-checked and located', () => {
    const resolved = check([
      'name: named',
      'stages:',
      '  - { id: w, use: words, with: { count: 2 } }',
      '  - { id: s, use: split, from: w }',
      '  - { id: a, use: words-out, from: s }',
      '  - { id: b, use: words-out, from: "s:short" }',
    ]);
    expect(resolved.stages.map((s) => [s.id, s.from])).toEqual([
      ['w', []],
      ['s', ['w']],
      ['a', ['s']],
      ['b', ['s:short']],
    ]);
    const problems = problemsOf([
      'name: named',
      'stages:',
      '  - { id: w, use: words, with: { count: 2 } }',
      '  - { id: s, use: split, from: w }',
      '  - { id: a, use: words-out, from: s }',
      '  - { id: b, use: words-out, from: "s:counts" }',
      '  - { id: c, use: words-out, from: "s:shorts" }',
    ]);
    expect(problems.map((p) => [p.code, p.position?.line, p.position?.column])).toEqual([
      ['TYPE_MISMATCH', 6, 36],
      ['UNKNOWN_OUTPUT', 7, 36],
    ]);
    const text = problems.map((p) => p.message).join('\n');
    expect(text).toContain('its parent "s:counts" emits ex.Number@1');
    expect(text).toContain('declares "short", "counts"');
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
    // One problem per mistake, each where it was made: no input-count or unreachable reports
    // cascade from the broken edges.
    expect(problems.map((p) => [p.code, p.position?.line, p.position?.column])).toEqual([
      ['EDGE_INTO_INPUT', 3, 52],
      ['CYCLE', 5, 32],
      ['EDGE_FROM_OUTPUT', 7, 33],
      ['COMPONENT_KIND_MISMATCH', 8, 19],
    ]);
    expect(problems[1]!.message).toContain('u -> v -> u');
  });

  it('uses the same graph rules as the builder: reserved dead-letter names, a stage reading itself', () => {
    const problems = problemsOf([
      'name: rules',
      'stages:',
      '  - { id: w, use: words, with: { count: 1 } }',
      '  - { id: w.dlq, use: print, from: w }',
      '  - { id: u, use: upper, from: u }',
    ]);
    expect(problems.map((p) => [p.code, p.position?.line])).toEqual([
      ['RESERVED_STAGE_ID', 4],
      ['CYCLE', 5],
    ]);
    expect(problems[0]!.message).toContain('dead-letter topic of stage "w"');
  });

  it('refuses unknown keys of a plain z.object schema (no additionalProperties in the manifest)', () => {
    const plain = discoverPlugins(
      fixtureProject([
        {
          name: 'codefeedr-plugin-plain',
          codefeedr: {
            apiVersion: 1,
            components: [
              component(
                'scale',
                'transform',
                { inputTypes: ['any@1'], outputType: 'any@1' },
                // What z.toJSONSchema gives for z.object({ factor: z.number().default(1) }).
                { type: 'object', properties: { factor: { type: 'number', default: 1 } } },
              ),
              component(
                'loose',
                'transform',
                { inputTypes: ['any@1'], outputType: 'any@1' },
                {
                  type: 'object',
                  properties: { factor: { type: 'number' } },
                  additionalProperties: {},
                },
              ),
            ],
          },
        },
      ]),
      { coreVersion: '0.1.0' },
    );
    const text = (use: string) =>
      [
        'name: typo',
        'stages:',
        '  - { id: n, use: sequence, with: { to: 2 } }',
        `  - { id: s, use: ${use}, from: n, with: { factr: 5 } }`,
        '  - { id: p, use: printer, from: s }',
      ].join('\n');
    let error: unknown;
    try {
      checkPipeline(parsePipelineText(text('scale'), 'p.yaml', { env: {} }), plain);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(PipelineFileError);
    const [problem] = (error as PipelineFileError).problems;
    expect(problem).toMatchObject({ code: 'CONFIG_INVALID', position: { line: 4, column: 43 } });
    expect(problem!.message).toContain('with.factr is not a known field (did you mean "factor"?)');
    // An object that says it takes other keys keeps them.
    expect(() =>
      checkPipeline(parsePipelineText(text('loose'), 'p.yaml', { env: {} }), plain),
    ).not.toThrow();
  });

  it('checks each role of a shared name with its own schema (ndjson-file input → ndjson-file output)', () => {
    const builtins = discoverPlugins(fixtureProject([]));
    const text = [
      'name: copy',
      'stages:',
      '  - { id: in, use: ndjson-file, with: { path: in.ndjson, timestampField: at } }',
      '  - { id: out, use: ndjson-file, from: in, with: { path: out.ndjson, mode: truncate } }',
    ].join('\n');
    // Twice: the first check must not leave a cached validator of the other role behind.
    for (let i = 0; i < 2; i++) {
      const resolved = checkPipeline(parsePipelineText(text, 'p.yaml', { env: {} }), builtins);
      expect(resolved.stages.map((s) => s.component.kind)).toEqual(['input', 'output']);
    }
  });

  it('types whole ${VAR} values by the field schema: numbers, booleans, lists', () => {
    const typed = discoverPlugins(
      fixtureProject([
        {
          name: 'codefeedr-plugin-typed',
          codefeedr: {
            apiVersion: 1,
            components: [
              component(
                'src',
                'input',
                { outputType: 'any@1' },
                {
                  type: 'object',
                  properties: {
                    count: { type: 'integer' },
                    ratio: { type: 'number' },
                    follow: { type: 'boolean' },
                    brokers: { type: 'array', items: { type: 'string' } },
                    ports: { type: 'array', items: { type: 'integer' } },
                    name: { type: 'string' },
                  },
                  additionalProperties: false,
                },
              ),
            ],
          },
        },
      ]),
      { coreVersion: '0.1.0' },
    );
    const text = [
      'name: env',
      'stages:',
      '  - id: s',
      '    use: src',
      '    with:',
      '      count: ${COUNT}',
      '      ratio: "${RATIO:-0.5}"',
      '      follow: ${FOLLOW}',
      '      brokers: ${BROKERS}',
      '      ports: ${PORTS}',
      '      name: ${COUNT}',
      '  - { id: p, use: printer, from: s }',
    ].join('\n');
    const env = { COUNT: '42', FOLLOW: 'true', BROKERS: 'a:9092, b:9092', PORTS: '1,2' };
    const resolved = checkPipeline(parsePipelineText(text, 'p.yaml', { env }), typed);
    expect(resolved.stages[0]!.config).toEqual({
      count: 42,
      ratio: 0.5,
      follow: true,
      brokers: ['a:9092', 'b:9092'],
      ports: [1, 2],
      name: '42',
    });
    const bad = (() => {
      try {
        checkPipeline(parsePipelineText(text, 'p.yaml', { env: { ...env, COUNT: 'many' } }), typed);
      } catch (error) {
        return (error as PipelineFileError).problems;
      }
      throw new Error('expected problems');
    })();
    expect(bad).toHaveLength(1);
    expect(bad[0]!.message).toContain('with.count must be integer (the value of ${COUNT} is text');
    expect(bad[0]!.message).not.toContain('many');
  });

  it('a cycle is reported as the cycle, not with the stages downstream of it', () => {
    const problems = problemsOf([
      'name: loop',
      'stages:',
      '  - { id: w, use: words, with: { count: 1 } }',
      '  - { id: u, use: upper, from: v }',
      '  - { id: v, use: upper, from: u }',
      '  - { id: after, use: upper, from: v }',
      '  - { id: sink, use: words-out, from: after }',
      '  - { id: o, use: words-out, from: w }',
    ]);
    // The cycle, once; not the stages it keeps from being reached, as DANGLING_STAGE each.
    expect(problems.map((p) => [p.code, p.position?.line])).toEqual([['CYCLE', 5]]);
    expect(problems[0]!.message).toContain('u -> v -> u');
    expect(problems[0]!.message).not.toMatch(/after|sink/);
  });

  it('a stage whose `use` does not resolve is one problem: its children are not orphans', () => {
    const problems = problemsOf([
      'name: unresolved',
      'stages:',
      '  - { id: w, use: words, with: { count: 1 } }',
      '  - { id: x, use: wordz, from: w }',
      '  - { id: u, use: upper, from: x }',
      '  - { id: o, use: words-out, from: u }',
      '  - { id: n, use: numberz }',
      '  - { id: p, use: pair, from: [u, n] }',
      '  - { id: o2, use: print, from: p }',
    ]);
    expect(problems.map((p) => [p.code, p.position?.line])).toEqual([
      ['COMPONENT_NOT_FOUND', 4],
      ['COMPONENT_NOT_FOUND', 7],
    ]);
  });

  it('a `from` naming no stage is one problem, with the nearest ids, and nothing downstream cascades', () => {
    const problems = problemsOf([
      'name: typo',
      'stages:',
      '  - { id: words1, use: words, with: { count: 1 } }',
      '  - { id: u, use: upper, from: word1 }',
      '  - { id: o, use: words-out, from: u }',
    ]);
    expect(problems.map((p) => [p.code, p.position?.line])).toEqual([['UNKNOWN_STAGE', 4]]);
    expect(problems[0]!.message).toContain('names stage "word1", which is not in the pipeline');
    expect(problems[0]!.message).toContain('Did you mean "words1"?');
  });

  it('a thousand broken `from`s: one short line each, the message lists the first 50', () => {
    const lines = ['name: many', 'stages:', '  - { id: w, use: words, with: { count: 1 } }'];
    for (let i = 0; i < 1000; i++) lines.push(`  - { id: o${i}, use: words-out, from: ghost${i} }`);
    let error: PipelineFileError | undefined;
    try {
      check(lines);
    } catch (e) {
      error = e as PipelineFileError;
    }
    expect(error!.problems).toHaveLength(1000);
    expect(error!.problems.every((p) => p.code === 'UNKNOWN_STAGE' && p.message.length < 200)).toBe(
      true,
    );
    expect(error!.message.split('\n').filter((l) => l.includes('[UNKNOWN_STAGE]'))).toHaveLength(
      50,
    );
    expect(error!.message).toContain('… and 950 more');
    expect(error!.message.length).toBeLessThan(20_000);
  });
});
