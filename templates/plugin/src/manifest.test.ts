import { readFileSync } from 'node:fs';
import { manifestFromModule, validateManifest } from '@codefeedr/registry';
import { describe, expect, it } from 'vitest';
import * as plugin from './index.js';

const packageJson = JSON.parse(
  readFileSync(new URL('../package.json', import.meta.url), 'utf8'),
) as Record<string, unknown>;

describe('manifest', () => {
  it('is valid', () => {
    expect(validateManifest(packageJson).components.map((c) => [c.name, c.kind])).toEqual([
      ['greetings', 'input'],
      ['shout', 'transform'],
    ]);
  });
  it('matches the code (run `npm run build`, which runs `codefeedr manifest`, after changing a component)', () => {
    expect(packageJson['codefeedr']).toEqual(
      manifestFromModule(plugin as unknown as Record<string, unknown>),
    );
  });
});
