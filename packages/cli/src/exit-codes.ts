import { isCodefeedrError } from '@codefeedr/core';

/**
 * Exit codes of `codefeedr` (documented in the README):
 * 0 success; 1 runtime failure (a stage failed, npm failed, an unexpected error);
 * 2 invalid input (usage, pipeline file, config, component, plugin manifest, core range).
 */
export const ExitCode = {
  OK: 0,
  RUNTIME_FAILURE: 1,
  INVALID_INPUT: 2,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** Error codes that mean "what you gave me is wrong", as opposed to "it broke while running". */
const INVALID_INPUT_CODES = new Set([
  'USAGE_INVALID',
  'PIPELINE_INVALID',
  'CONFIG_INVALID',
  'COMPONENT_NOT_FOUND',
  'COMPONENT_AMBIGUOUS',
  'COMPONENT_KIND_MISMATCH',
  'COMPONENT_EXPORT_MISSING',
  'MANIFEST_INVALID',
  'MANIFEST_OUT_OF_SYNC',
  'PLUGIN_CORE_INCOMPATIBLE',
  'PLUGIN_NOT_INSTALLED',
  'PLUGIN_LOAD_FAILED',
  'NOT_A_PLUGIN',
  'SCAFFOLD_TARGET_EXISTS',
  'PACKAGE_NAME_INVALID',
  'UNKNOWN_WORKER_STAGE',
  'RUN_OPTIONS_INVALID',
  'SCAFFOLD_TARGET_UNWRITABLE',
  'PACKAGE_JSON_INVALID',
  'PIPELINE_TEST_INVALID',
  'PIPELINE_NOT_FOUND',
  'PLUGIN_SOURCE_INVALID',
  'DEPLOY_BUFFER_NOT_SHARED',
  'DEPLOY_REPLICAS_INVALID',
  'DEPLOY_KEDA_UNSUPPORTED',
  'DEPLOY_NAME_INVALID',
  'NAMED_OUTPUT_INVALID',
]);

export function exitCodeFor(error: unknown): ExitCodeValue {
  if (isCodefeedrError(error) && INVALID_INPUT_CODES.has(error.code)) {
    return ExitCode.INVALID_INPUT;
  }
  return ExitCode.RUNTIME_FAILURE;
}
