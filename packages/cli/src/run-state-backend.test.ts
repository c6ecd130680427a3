import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, expectOneError, project } from './cli-fixture.js';

/** A plugin with a keyed running count (keyBy().reduce()), so the stage has keyed state. */
const countPlugin = {
  'node_modules/codefeedr-plugin-count/package.json': JSON.stringify({
    name: 'codefeedr-plugin-count',
    version: '1.0.0',
    type: 'module',
    main: 'index.js',
    keywords: ['codefeedr-plugin'],
    codefeedr: {
      apiVersion: 1,
      components: [
        {
          name: 'count',
          kind: 'transform',
          export: 'count',
          description: 'A running count per last digit.',
          configSchema: { type: 'object', properties: {} },
          inputTypes: ['any@1'],
          outputType: 'any@1',
        },
      ],
    },
  }),
  'node_modules/codefeedr-plugin-count/index.js': [
    "import { Any, defineTransform, z } from '@codefeedr/core';",
    'export const count = defineTransform({',
    "  name: 'count', description: 'A running count per last digit.',",
    '  configSchema: z.object({}), inputTypes: [Any], outputType: Any,',
    '  transform: ([input]) => input.map((n) => ({ d: String(n % 10), c: 1 }))',
    '    .keyBy((r) => r.d).reduce((a, b) => ({ d: a.d, c: a.c + b.c })),',
    '});',
    '',
  ].join('\n'),
};

describe('codefeedr run --state-backend', () => {
  it('disk: the same counts as in memory, and the state folder is empty after the run', async () => {
    const dir = project(countPlugin);
    writeFileSync(
      join(dir, 'package.json'),
      JSON.stringify({
        name: 'p',
        version: '1.0.0',
        dependencies: { 'codefeedr-plugin-count': '1.0.0' },
      }),
    );
    const pipeline = (out: string) =>
      `name: counts\nstages:\n  - { id: n, use: sequence, with: { to: 999 } }\n  - { id: c, use: codefeedr-plugin-count:count, from: n }\n  - { id: o, use: ndjson-file, from: c, with: { path: "${join(dir, out)}" } }\n`;
    writeFileSync(join(dir, 'memory.yaml'), pipeline('memory.ndjson'));
    writeFileSync(join(dir, 'disk.yaml'), pipeline('disk.ndjson'));
    const memory = await cli(['run', 'memory.yaml'], dir);
    expect(memory.code).toBe(0);
    const disk = await cli(
      ['run', 'disk.yaml', '--state-backend', 'disk', '--state-dir', 'state'],
      dir,
    );
    expect(disk.code).toBe(0);
    expect(disk.stderr).toContain('finished pipeline "counts"');
    const counts = (file: string) => readFileSync(join(dir, file), 'utf8');
    expect(counts('disk.ndjson')).toBe(counts('memory.ndjson'));
    expect(counts('disk.ndjson')).toContain('{"d":"9","c":100}');
    // Created by the backend when the stage opened (the CLI only checks the path), empty now.
    expect(existsSync(join(dir, 'state')) && readdirSync(join(dir, 'state'))).toEqual([]);

    const alone = await cli(['run', 'disk.yaml', '--state-dir', 'state'], dir);
    expect(alone.code).toBe(2);
    expectOneError(alone.stderr, 'USAGE_INVALID');
    expect(alone.stderr).toContain('--state-dir is for --state-backend disk');
  });
});
