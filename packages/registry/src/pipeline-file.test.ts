import { redactText } from '@codefeedr/core';
import { describe, expect, it } from 'vitest';
import { formatProblem, PipelineFileError, type PipelineProblem } from './errors.js';
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

  it('--set: prototype keys are refused and nothing reaches Object.prototype', () => {
    const text = 'name: demo\nstages:\n  - id: numbers\n    use: x\n';
    for (const key of ['__proto__', 'constructor', 'prototype']) {
      const problems = problemsOf(text, {}, [`numbers.${key}.polluted=1`]);
      expect(problems.map((p) => p.code)).toEqual(['OVERRIDE_INVALID']);
      expect(problems[0]!.message).toContain(`"${key}" cannot be a config key`);
    }
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
  });

  it('--set: a dotted stage id is found whole, and problems point at the --set, not the file', () => {
    const text =
      'name: demo\nstages:\n  - id: in\n    use: x\n  - id: in.v2\n    use: y\n    from: in\n';
    const spec = parsePipelineText(text, 'p.yaml', {
      env: {},
      overrides: ['in.v2.to=1', 'in.to=2'],
    });
    expect(spec.stages.map((s) => s.with)).toEqual([{ to: 2 }, { to: 1 }]);
    expect(spec.locate(['stages', 1, 'with', 'to'])).toEqual({
      file: 'p.yaml',
      line: 0,
      column: 0,
      override: 'in.v2.to',
    });
    const [problem] = problemsOf(text, {}, ['nope.to=secret-value']);
    expect(problem).toMatchObject({ code: 'OVERRIDE_INVALID', position: { override: 'nope.to' } });
    expect(formatProblem(problem!)).toMatch(/^--set nope\.to: no stage of this file/);
    expect(JSON.stringify(problem)).not.toContain('secret-value');
  });

  it('${VAR:-default} uses the default when the variable is unset or empty; defaults are not secrets', () => {
    const text =
      'name: demo\nstages:\n  - id: a\n    use: x\n    with: { n: "${N:-7}", host: "${HOST:-localhost}:${PORT:-1}" }\n';
    expect(parsePipelineText(text, 'p.yaml', { env: {} }).stages[0]!.with).toEqual({
      n: '7',
      host: 'localhost:1',
    });
    const set = parsePipelineText(text, 'p.yaml', { env: { N: '12', HOST: '', PORT: '99' } });
    expect(set.stages[0]!.with).toEqual({ n: '12', host: 'localhost:99' });
    // Only whole-scalar references are typed later by the schema.
    expect(set.envValues).toEqual([{ path: ['stages', 0, 'with', 'n'], variable: 'N' }]);
    expect(set.secrets).toEqual(['12', '99']);
  });

  it('an unquoted ${VAR} in a flow mapping is one clear problem, not a cascade of syntax errors', () => {
    const lines = [
      'name: demo',
      'stages:',
      '  - { id: n, use: sequence, with: { to: ${COUNT} } }',
      '  - { id: p, use: printer, from: n }',
    ];
    const problems = problemsOf(lines.join('\n'), { COUNT: '5' });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({
      code: 'ENV_REFERENCE_UNQUOTED',
      position: { line: 3, column: lines[2]!.indexOf('$') + 1 },
    });
    expect(problems[0]!.message).toContain('write "${COUNT}"');
    // Quoted, or in block style, it is fine.
    expect(() =>
      parsePipelineText(lines.join('\n').replace('${COUNT}', '"${COUNT}"'), 'p.yaml', {
        env: { COUNT: '5' },
      }),
    ).not.toThrow();
  });

  it('allowMissingEnv leaves unset variables as written (graph needs no secrets)', () => {
    const spec = parsePipelineText(
      'name: demo\nstages:\n  - id: a\n    use: x\n    with: { token: "${GH_TOKEN}" }\n',
      'p.yaml',
      { env: {}, allowMissingEnv: true },
    );
    expect(spec.stages[0]!.with).toEqual({ token: '${GH_TOKEN}' });
  });

  it('deadLetter: file, topic or auto, with dir and retries; mistakes are located', () => {
    const base = 'name: demo\nstages:\n  - { id: a, use: x }\n';
    expect(
      parsePipelineText(`${base}deadLetter: { to: file, dir: dl, retries: 2 }\n`, 'p.yaml', {
        env: {},
      }).deadLetter,
    ).toEqual({ to: 'file', dir: 'dl', retries: 2 });
    expect(parsePipelineText(base, 'p.yaml', { env: {} }).deadLetter).toBeUndefined();
    const problems = problemsOf(`${base}deadLetter: { to: disk, dir: 3, retries: -1, ttl: 5 }\n`);
    expect(problems.map((p) => [p.code, p.position?.line])).toEqual([
      ['PIPELINE_SHAPE', 4],
      ['PIPELINE_SHAPE', 4],
      ['PIPELINE_SHAPE', 4],
      ['PIPELINE_SHAPE', 4],
    ]);
    expect(problems.map((p) => p.message).join('\n')).toMatch(
      /deadLetter field "ttl"[\s\S]*deadLetter.to/,
    );
  });
});
