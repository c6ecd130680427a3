import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { cli, expectOneError, project } from './cli-fixture.js';

const copy = (dir: string, input: string, extra = '') =>
  [
    'name: copy',
    extra,
    'stages:',
    `  - { id: in, use: ndjson-file, with: { path: "${join(dir, input)}" } }`,
    `  - { id: out, use: ndjson-file, from: in, with: { path: "${join(dir, 'out.ndjson')}", mode: truncate } }`,
    '',
  ].join('\n');

const nonEmpty = (text: string) => text.split('\n').filter((l) => l !== '');

describe('dead letters of codefeedr run', () => {
  it('deadLetter: { to: file, dir } keeps them where the file says; the summary gives count and reasons with file:line', async () => {
    const input = ['{"n":1}', 'not json', '{"n":3}', '{"n":', '{"n":5}'];
    const dir = project({ 'in.ndjson': `${input.join('\n')}\n` });
    writeFileSync(
      join(dir, 'p.yaml'),
      copy(dir, 'in.ndjson', 'deadLetter: { to: file, dir: kept }'),
    );
    const bad = input.filter((l) => {
      try {
        JSON.parse(l);
        return false;
      } catch {
        return true;
      }
    });
    const result = await cli(['run', 'p.yaml'], dir);
    expect(result.code, result.stderr).toBe(0);
    const file = join(dir, 'kept', 'in.dlq.ndjson');
    const letters = nonEmpty(readFileSync(file, 'utf8')).map(
      (l) => JSON.parse(l) as { original: { value: string }; error: { code: string } },
    );
    expect(letters.map((l) => l.original.value)).toEqual(bad);
    expect(nonEmpty(readFileSync(join(dir, 'out.ndjson'), 'utf8'))).toHaveLength(
      input.length - bad.length,
    );
    expect(result.stderr).toContain('finished with dead letters');
    expect(result.stderr).toContain(`! ${bad.length} dead letter(s) of stage "in" are in ${file}`);
    // Each reason: where the dead letter is, and the input file and line it came from.
    expect(result.stderr).toContain(`${file}:1: ${join(dir, 'in.ndjson')}:2: not JSON`);
    expect(result.stderr).toContain(`${file}:2: ${join(dir, 'in.ndjson')}:4: not JSON`);

    // A second run appends; the summary's reasons are this run's, at their lines in the file.
    const again = await cli(['run', 'p.yaml', '--json'], dir);
    expect(again.code, again.stdout).toBe(0);
    const deadLetters = again.json()['deadLetters'] as {
      stage: string;
      count: number;
      reasons: { at: string; code: string }[];
    }[];
    expect(deadLetters).toEqual([
      expect.objectContaining({ stage: 'in', count: bad.length, location: file }),
    ]);
    expect(deadLetters[0]!.reasons.map((r) => r.at)).toEqual(
      bad.map((_, i) => `${file}:${bad.length + i + 1}`),
    );
    expect(deadLetters[0]!.reasons.every((r) => r.code === 'SOURCE_RECORD_INVALID')).toBe(true);
  });

  it('the default place is .codefeedr/dead-letters/<pipeline> in the project folder', async () => {
    const dir = project({ 'in.ndjson': '{"n":1}\nnope\n' });
    writeFileSync(join(dir, 'p.yaml'), copy(dir, 'in.ndjson'));
    const result = await cli(['run', 'p.yaml'], dir);
    expect(result.code, result.stderr).toBe(0);
    const file = join(dir, '.codefeedr', 'dead-letters', 'copy', 'in.dlq.ndjson');
    expect(nonEmpty(readFileSync(file, 'utf8'))).toHaveLength(1);
    expect(result.stderr).toContain(file);
  });

  it('a run that dead-letters every record is not a success: exit 1 after the summary', async () => {
    const input = ['oops', 'still not json', '{'];
    const dir = project({ 'in.ndjson': `${input.join('\n')}\n` });
    writeFileSync(join(dir, 'p.yaml'), copy(dir, 'in.ndjson'));
    const result = await cli(['run', 'p.yaml'], dir);
    expect(result.code).toBe(1);
    expectOneError(result.stderr, 'RUN_INCOMPLETE');
    expect(result.stderr).toContain(`stage "in" dead-lettered all ${input.length} of its records`);
    expect(result.stderr).toMatch(/^in\s+input\s+/m); // the summary table came first
    const json = await cli(['run', 'p.yaml', '--json'], dir);
    expect(json.code).toBe(1);
    expect(json.json()).toMatchObject({ ok: false, error: { code: 'RUN_INCOMPLETE' } });
  });

  it('a gzip input that ends in the middle is not a success: exit 1, one error', async () => {
    const input = Array.from({ length: 3000 }, (_, i) =>
      JSON.stringify({ n: i, pad: 'x'.repeat(40) }),
    );
    const whole = gzipSync(`${input.join('\n')}\n`);
    const dir = project();
    writeFileSync(join(dir, 'cut.ndjson.gz'), whole.subarray(0, Math.floor(whole.length / 2)));
    writeFileSync(join(dir, 'p.yaml'), copy(dir, 'cut.ndjson.gz'));
    const result = await cli(['run', 'p.yaml'], dir);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/unexpected end of file/);
    expect(result.stderr.split('\n').filter((l) => l.startsWith('error '))).toHaveLength(1);
  });
});
