/**
 * The V8 flags a process that runs a pipeline starts with: the `codefeedr` command (its
 * shebang) and `npm start` (the main job) pass them. A pipeline keeps a batch or two alive
 * across V8's young-generation collections, and V8 grows the young generation whenever what
 * survives them adds up to its size, so on a machine with much memory it soon reaches its
 * maximum (two 64 MiB semi-spaces on Node 24 here) whatever the input. Capped at 16 MiB, the
 * backpressure run of bench:core peaks at 126 MB instead of 206 MB and the GH Archive replay at
 * 273 MB instead of 367 MB, at the same throughput (bench/README.md). A pipeline run inside
 * your own process can pass them to node the same way.
 *
 * @example
 * import { spawn } from 'node:child_process';
 * spawn(process.execPath, [...PIPELINE_V8_FLAGS, 'my-pipeline.js'], { stdio: 'inherit' });
 */
export const PIPELINE_V8_FLAGS: readonly string[] = Object.freeze(['--max-semi-space-size=16']);
