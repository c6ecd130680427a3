// The CLI is ESM only (it is a command, and finds its template via import.meta.url):
// dist/index.js for embedding, dist/bin.js for the `codefeedr` command.
import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/index.ts', 'src/bin.ts'],
  format: ['esm'],
  dts: { entry: 'src/index.ts' },
  sourcemap: true,
  clean: true,
  target: 'node22',
  platform: 'node',
  splitting: false,
});
