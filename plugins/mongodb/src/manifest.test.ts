import { readFileSync } from 'node:fs';
import { manifestFromModule, validateManifest } from '@codefeedr/registry';
import { describe, expect, it } from 'vitest';
import * as plugin from './index.js';

const packageJson = JSON.parse(
  readFileSync(new URL('../package.json', import.meta.url), 'utf8'),
) as Record<string, unknown>;

describe('@codefeedr/plugin-mongodb manifest', () => {
  it('is a valid manifest listing the input, the key manager and the output', () => {
    const manifest = validateManifest(packageJson);
    expect(manifest.components.map((c) => [c.name, c.kind, c.export])).toEqual([
      ['input', 'input', 'mongoInput'],
      ['keymanager', 'keymanager', 'mongoKeyManager'],
      ['output', 'output', 'mongoOutput'],
    ]);
    expect(packageJson.keywords).toContain('codefeedr-plugin');
  });

  it('matches what the code declares (regenerate: npm run build && npx codefeedr manifest)', () => {
    expect(packageJson.codefeedr).toEqual(
      manifestFromModule(plugin as unknown as Record<string, unknown>),
    );
  });
});
