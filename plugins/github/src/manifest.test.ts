import { readFileSync } from 'node:fs';
import { manifestFromModule, validateManifest } from '@codefeedr/registry';
import { describe, expect, it } from 'vitest';
import { gitHubEventTypeNames } from './event-types.js';
import { eventTransformName } from './event-transforms.js';
import * as plugin from './index.js';

const packageJson = JSON.parse(
  readFileSync(new URL('../package.json', import.meta.url), 'utf8'),
) as Record<string, unknown>;

describe('@codefeedr/plugin-github manifest', () => {
  it('lists the two inputs and one transform per event type', () => {
    const manifest = validateManifest(packageJson);
    const names = manifest.components.map((c) => `${c.kind}:${c.name}`).sort();
    expect(names).toEqual(
      [
        'input:events',
        'input:replay',
        ...gitHubEventTypeNames.map((t) => `transform:${eventTransformName(t)}`),
      ].sort(),
    );
    expect(packageJson.keywords).toContain('codefeedr-plugin');
  });

  it('matches what the code declares (regenerate with manifestFromModule when a config changes)', () => {
    expect(packageJson.codefeedr).toEqual(
      manifestFromModule(plugin as unknown as Record<string, unknown>),
    );
  });
});
