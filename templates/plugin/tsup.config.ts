import { defineConfig } from 'tsup';

// ESM + CJS + .d.ts from src/index.ts, for Node 22+.
export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node22',
  platform: 'node',
  // import.meta.url in your code works in the CJS build too.
  shims: true,
});
