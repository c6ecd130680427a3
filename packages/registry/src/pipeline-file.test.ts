import { redactText } from '@codefeedr/core';
import { describe, expect, it } from 'vitest';
import { PipelineFileError, type PipelineProblem } from './errors.js';
import { parsePipelineText } from './pipeline-file.js';

function problemsOf(
  text: string,
  env: Record<string, string> = {},
  overrides: string[] = [],
): readonly PipelineProblem[] {
  try {
    parsePipelineText(text, 'p.yaml', { env, overrides });
  } catch (error) {
    expect(error).toBeInstanceOf(PipelineFileError);
    return (error as PipelineFileError).problems;
  }
  throw new Error('expected a PipelineFileError');
}

describe('parsePipelineText', () => {
  it('parses stages, parents in order and the buffer', () => {
    const spec = parsePipelineText(
      [
        'name: demo',
        'buffer: { use: memory, with: { partitions: 2 } }',
        'stages:',
        '  - id: a',
        '    use: numbers',
        '  - id: b',
        '    use: numbers',
        '  - id: join',
        '    use: zip',
        '    from: [b, a]',
        '    with: { size: 3 }',
      ].join('\n'),
      'p.yaml',
      { env: {} },
    );
    expect(spec.name).toBe('demo');
    expect(spec.buffer).toEqual({ use: 'memory', with: { partitions: 2 } });
    expect(spec.stages.map((s) => [s.id, s.use, s.from])).toEqual([
      ['a', 'numbers', []],
      ['b', 'numbers', []],
      ['join', 'zip', ['b', 'a']],
    ]);
    expect(spec.stages[2]!.with).toEqual({ size: 3 });
    expect(spec.locate(['stages', 2, 'from', 1])).toEqual({ file: 'p.yaml', line: 10, column: 15 });
  });

  it('reports a YAML syntax error with its line', () => {
    const problems = problemsOf('name: demo\nstages:\n  - id: a\n    use: [unclosed\n');
    expect(problems[0]!.code).toBe('YAML_SYNTAX');
    expect(problems[0]!.position!.file).toBe('p.yaml');
    expect(problems[0]!.position!.line).toBeGreaterThanOrEqual(4);
  });

  it('reports every shape problem at once, each with its line', () => {
    const problems = problemsOf(
      [
        'name: demo',
        'extra: 1',
        'stages:',
        '  - id: a',
        '    use: x',
        '    size: 3',
        '  - id: a',
        '    use: y',
        '  - use: z',
        '    from: 7',
      ].join('\n'),
    );
    expect(problems.map((p) => [p.code, p.position?.line])).toEqual([
      ['PIPELINE_SHAPE', 2],
      ['PIPELINE_SHAPE', 6],
      ['STAGE_ID_DUPLICATE', 7],
      ['PIPELINE_SHAPE', 9],
      ['PIPELINE_SHAPE', 10],
    ]);
  });

  it('interpolates ${VAR}, registers the values as secrets and keeps $${ literal', () => {
    const token = `tok-${Math.random().toString(36).slice(2)}`;
    const spec = parsePipelineText(
      'name: demo\nstages:\n  - id: a\n    use: x\n    with: { token: "Bearer ${GH_TOKEN}", literal: "$${HOME}" }\n',
      'p.yaml',
      { env: { GH_TOKEN: token } },
    );
    expect(spec.stages[0]!.with).toEqual({ token: `Bearer ${token}`, literal: '${HOME}' });
    expect(spec.secrets).toEqual([token]);
    expect(redactText(`sent ${token}`)).not.toContain(token);
  });

  it('names a missing variable and its line, without printing other values', () => {
    const problems = problemsOf(
      'name: demo\nstages:\n  - id: a\n    use: x\n    with:\n      url: ${SOME_URL}\n      key: ${MISSING_KEY}\n',
      {
        SOME_URL: 'https://secret.example',
      },
    );
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({
      code: 'ENV_VAR_MISSING',
      position: { line: 7, column: 12 },
    });
    expect(problems[0]!.message).toContain('MISSING_KEY');
    expect(JSON.stringify(problems)).not.toContain('secret.example');
  });

  it('applies --set overrides as typed values and rejects unknown stages', () => {
    const spec = parsePipelineText(
      'name: demo\nstages:\n  - id: a\n    use: x\n    with: { nested: { keep: true } }\n',
      'p.yaml',
      {
        env: {},
        overrides: ['a.size=12', 'a.nested.name=hello', 'a.flag=true'],
      },
    );
    expect(spec.stages[0]!.with).toEqual({
      size: 12,
      flag: true,
      nested: { keep: true, name: 'hello' },
    });
    expect(
      problemsOf('name: demo\nstages:\n  - id: a\n    use: x\n', {}, ['nope.size=1'])[0]!.code,
    ).toBe('OVERRIDE_INVALID');
  });
});
