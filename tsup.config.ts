// Shared build for every publishable package: ESM + CJS + .d.ts from src/index.ts.
import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node22',
  platform: 'node',
  splitting: false,
  // import.meta.url (split runs find their worker with it) must work in the CJS build too.
  shims: true,
});
