import { readFileSync } from 'node:fs';
import { manifestFromModule, validateManifest } from '@codefeedr/registry';
import { describe, expect, it } from 'vitest';
import * as plugin from './index.js';

const packageJson = JSON.parse(
  readFileSync(new URL('../package.json', import.meta.url), 'utf8'),
) as Record<string, unknown>;

describe('@codefeedr/plugin-postgres manifest', () => {
  it('is a valid manifest listing the input and the output', () => {
    const manifest = validateManifest(packageJson);
    expect(manifest.components.map((c) => [c.name, c.kind, c.export, c.guarantees]).sort()).toEqual(
      [
        ['input', 'input', 'postgresInput', ['at-least-once']],
        ['output', 'output', 'postgresOutput', ['at-least-once', 'exactly-once']],
      ],
    );
    expect(packageJson.keywords).toContain('codefeedr-plugin');
  });

  it('matches what the code declares (regenerate: npm run build && npx codefeedr manifest)', () => {
    expect(packageJson.codefeedr).toEqual(
      manifestFromModule(plugin as unknown as Record<string, unknown>),
    );
  });
});
