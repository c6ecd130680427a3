// Core has three entry points (the user API, the buffer-author API, the internal compiler);
// splitting keeps one copy of every module shared between them, so a class is one class.
import { defineConfig } from 'tsup';
import shared from '../../tsup.config.ts';

export default defineConfig({
  ...(shared as object),
  // split-worker: the entry of a split run's worker threads (split-run.ts starts them).
  entry: ['src/index.ts', 'src/buffer-api.ts', 'src/internal-api.ts', 'src/split-worker.ts'],
  splitting: true,
});
