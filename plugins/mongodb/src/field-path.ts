/** A dot path (`repo.name`) as its parts. */
export function fieldPath(path: string): readonly string[] {
  return path.split('.');
}

/** The value at `path` inside `value`; undefined when any step is missing or not an object. */
export function readPath(value: unknown, path: readonly string[]): unknown {
  let current = value;
  for (const part of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<string, unknown>)[part];
  }
  return current;
}
