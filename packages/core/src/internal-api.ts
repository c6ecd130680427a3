/**
 * `@codefeedr/core/internal`: the dataflow compiler and the operator chain it produces, for
 * the test kit and alternative engines. Not covered by semver: it changes with the runtime.
 */
export { compileTransform, StateRestoreError } from './compile-transform.js';
export { PartitionStateShards, WHOLE_SAVE_EVERY, type StoreCall } from './state-shards.js';
export type {
  CompileOptions,
  CompileTransform,
  DeadLetterSink,
  OperatorChain,
} from './operator-chain.js';

/**
 * Levenshtein distance: how many one-character edits turn `a` into `b`. Core's unknown-key
 * hints ("did you mean") and the registry's name suggestions share it. Defined here, not in
 * a module the root entry re-exports, so it stays out of the semver API.
 */
export function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length]!;
}
