// The shared build (ESM + CJS + d.ts) plus the `codefeedr-github-summary` command.
import { defineConfig } from 'tsup';
import shared from '../../tsup.config.ts';

export default defineConfig({
  ...(shared as object),
  // summary: the main job alone (see src/summary.ts).
  entry: ['src/index.ts', 'src/cli.ts', 'src/summary.ts'],
  // BUNDLED_EVENTS is found with import.meta.url, which the CJS build needs shimmed.
  shims: true,
});
