export { main, type CommandContext } from './program.js';
export { ExitCode, exitCodeFor } from './exit-codes.js';
export { CommandOutput, type CliIO, type TextStream } from './command-output.js';
export * from './cli-errors.js';
export { scaffoldPlugin, type ScaffoldOptions, type ScaffoldResult } from './plugin-scaffolder.js';
export { renderGraph, type GraphFormat } from './graph-renderer.js';
