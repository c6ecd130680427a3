import { editDistance } from '@codefeedr/core/internal';

/** Up to `limit` of `names` close enough to `ref` to be what a typo meant, closest first. */
export function closestNames(ref: string, names: Iterable<string>, limit = 3): string[] {
  return [...new Set(names)]
    .map((n) => ({ n, d: editDistance(ref.toLowerCase(), n.toLowerCase()) }))
    .filter(({ n, d }) => d <= Math.max(2, Math.floor(ref.length / 3)) && n !== ref)
    .sort((a, b) => a.d - b.d)
    .slice(0, limit)
    .map(({ n }) => n);
}
