// `@codefeedr/pipelines-github/summary`: the main job alone, without the database pipelines
// (their drivers cost a process ~20 MB and 0.1 s to load). `npm start`'s command, the split
// runs' worker threads and bench:github load this; the package's root exports it too.
export * from './github-summary-pipeline.js';
export * from './github-summary.js';
