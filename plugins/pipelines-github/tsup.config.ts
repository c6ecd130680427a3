// The shared build (ESM + CJS + d.ts) plus the `codefeedr-github-summary` command.
import { defineConfig } from 'tsup';
import shared from '../../tsup.config.ts';

export default defineConfig({
  ...(shared as object),
  entry: ['src/index.ts', 'src/cli.ts'],
  // BUNDLED_EVENTS is found with import.meta.url, which the CJS build needs shimmed.
  shims: true,
});
