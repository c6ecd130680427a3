import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { silentLogger } from '@codefeedr/core';
import { describe, expect, it } from 'vitest';
import { PipelineFileError } from './errors.js';
import { fixtureProject, manifestOf } from './fixture-project.js';
import { checkPipeline } from './pipeline-check.js';
import { parsePipelineText } from './pipeline-file.js';
import { loadPipeline } from './pipeline-loader.js';
import { discoverPlugins } from './plugin-catalog.js';

// A plugin whose module throws on import: loading a pipeline that does not use it must work.
const dir = fixtureProject([
  {
    name: 'codefeedr-plugin-explosive',
    codefeedr: manifestOf(['boom', 'input', 'boom']),
    module: "throw new Error('imported!');\n",
  },
]);
const catalog = discoverPlugins(dir);

describe('loadPipeline', () => {
  it('builds and runs a core pipeline from a file, importing only what it uses', async () => {
    const out = join(dir, 'out.ndjson');
    const text = [
      'name: count',
      'stages:',
      '  - { id: n, use: sequence, with: { from: 1, to: 4, timestamps: value } }',
      `  - { id: o, use: ndjson-file, from: n, with: { path: "${out}", mode: truncate } }`,
    ].join('\n');
    const spec = parsePipelineText(text, 'count.yaml', { env: {} });
    const pipeline = await loadPipeline(spec, catalog, checkPipeline(spec, catalog));
    expect(pipeline.describe().edges).toEqual([{ from: 'n', to: 'o', inputIndex: 0 }]);
    const summary = await pipeline.run({ mode: 'inline', logger: silentLogger });
    expect(summary.status).toBe('finished');
    expect(readFileSync(out, 'utf8')).toBe('1\n2\n3\n4\n');
  });

  it("applies a stage's `options:` (partitions, guarantee, ...) to the pipeline, numbers from ${VAR} included", async () => {
    const text = [
      'name: scaled',
      'stages:',
      '  - id: n',
      '    use: sequence',
      '    with: { to: 3 }',
      '    options: { partitions: "${PARTS}", topic: numbers, guarantee: exactly-once }',
      '  - { id: p, use: printer, from: n, options: { batchSize: 50, start: earliest } }',
    ].join('\n');
    const spec = parsePipelineText(text, 'scaled.yaml', { env: { PARTS: '6' } });
    expect(spec.stages.map((s) => s.options)).toEqual([
      { partitions: 6, topic: 'numbers', guarantee: 'exactly-once' },
      { batchSize: 50, start: 'earliest' },
    ]);
    const pipeline = await loadPipeline(spec, catalog, checkPipeline(spec, catalog));
    expect(pipeline.definition.stageOptions.get('n')).toEqual({
      partitions: 6,
      topic: 'numbers',
      guarantee: 'exactly-once',
    });
    expect(pipeline.definition.stageOptions.get('p')).toEqual({ batchSize: 50, start: 'earliest' });
  });

  it('reports a wrong or unknown stage option at its key, every one', () => {
    const text = [
      'name: typo',
      'stages:',
      '  - id: n',
      '    use: sequence',
      '    options:',
      '      partitons: 4',
      '      guarantee: twice',
      '      partitions: 0',
      '  - { id: p, use: printer, from: n }',
    ].join('\n');
    const error = (() => {
      try {
        parsePipelineText(text, 'typo.yaml', { env: {} });
      } catch (e) {
        return e;
      }
    })() as PipelineFileError;
    expect(error).toBeInstanceOf(PipelineFileError);
    const problems = error.problems
      .map((p) => [p.code, p.position?.line, p.message] as const)
      .sort((a, b) => (a[1] ?? 0) - (b[1] ?? 0));
    expect(problems).toEqual([
      ['STAGE_OPTIONS_INVALID', 6, expect.stringContaining('unknown stage option "partitons"')],
      ['STAGE_OPTIONS_INVALID', 7, expect.stringMatching(/^stage options guarantee: /)],
      ['STAGE_OPTIONS_INVALID', 8, expect.stringMatching(/^stage options partitions: /)],
    ]);
  });

  it('reports a config the JSON Schema accepts but the zod schema refuses, located at the key', async () => {
    const spec = parsePipelineText(
      'name: bad\nstages:\n  - id: n\n    use: sequence\n    with: { to: 3, step: 0 }\n  - { id: p, use: printer, from: n }\n',
      'bad.yaml',
      { env: {} },
    );
    const resolved = checkPipeline(spec, catalog); // JSON Schema cannot express the refinement
    const error = await loadPipeline(spec, catalog, resolved).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PipelineFileError);
    const [problem] = (error as PipelineFileError).problems;
    expect(problem).toMatchObject({
      code: 'CONFIG_INVALID',
      position: { file: 'bad.yaml', line: 5, column: 26 },
    });
    expect(problem!.message).toBe(
      'stage "n" config: step: step must be a finite number other than 0',
    );
  });
});
