/**
 * Environment variables are text; a field whose schema wants a number, a boolean or a list
 * gets one: `to: ${COUNT}` with COUNT=5 is the number 5, `brokers: ${BROKERS}` with
 * `a:9092,b:9092` a list of two. Only whole-scalar references are coerced (`"n-${N}"` stays
 * text), and only when the schema does not accept text as it is.
 */
export function coerceEnvValues(
  config: Record<string, unknown>,
  schema: unknown,
  paths: readonly (readonly (string | number)[])[],
): Record<string, unknown> {
  if (paths.length === 0) return config;
  const copy = structuredClone(config);
  for (const path of paths) {
    const node = schemaAt(schema, path);
    if (node === undefined) continue;
    const parent = valueAt(copy, path.slice(0, -1));
    const key = path[path.length - 1]!;
    if (typeof parent !== 'object' || parent === null) continue;
    const container = parent as Record<string | number, unknown>;
    const value = container[key];
    if (typeof value === 'string') container[key] = coerce(value, node);
  }
  return copy;
}

type SchemaNode = Record<string, unknown>;

function isNode(value: unknown): value is SchemaNode {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function branches(node: SchemaNode): SchemaNode[] {
  const out: SchemaNode[] = [node];
  for (const key of ['anyOf', 'oneOf', 'allOf']) {
    const list = node[key];
    if (Array.isArray(list)) for (const b of list) if (isNode(b)) out.push(...branches(b));
  }
  return out;
}

function schemaAt(schema: unknown, path: readonly (string | number)[]): SchemaNode | undefined {
  let nodes = isNode(schema) ? branches(schema) : [];
  for (const segment of path) {
    const next: SchemaNode[] = [];
    for (const node of nodes) {
      const properties = node['properties'];
      if (typeof segment === 'string' && isNode(properties) && isNode(properties[segment])) {
        next.push(...branches(properties[segment]));
      } else if (typeof segment === 'number' && isNode(node['items'])) {
        next.push(...branches(node['items']));
      } else if (isNode(node['additionalProperties'])) {
        next.push(...branches(node['additionalProperties']));
      }
    }
    nodes = next;
    if (nodes.length === 0) return undefined;
  }
  return { anyOf: nodes };
}

function valueAt(value: unknown, path: readonly (string | number)[]): unknown {
  let current = value;
  for (const segment of path) {
    if (typeof current !== 'object' || current === null) return undefined;
    current = (current as Record<string | number, unknown>)[segment];
  }
  return current;
}

function typesOf(node: SchemaNode): Set<string> {
  const types = new Set<string>();
  for (const branch of branches(node)) {
    const type = branch['type'];
    if (typeof type === 'string') types.add(type);
    else if (Array.isArray(type)) for (const t of type) if (typeof t === 'string') types.add(t);
    if (Array.isArray(branch['enum'])) for (const v of branch['enum']) types.add(typeof v);
    if ('const' in branch) types.add(typeof branch['const']);
  }
  return types;
}

const NUMBER = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;

function coerce(text: string, node: SchemaNode): unknown {
  const types = typesOf(node);
  // Text is fine as it is (or the schema says nothing): leave it.
  if (types.size === 0 || types.has('string')) return text;
  const trimmed = text.trim();
  if ((types.has('number') || types.has('integer')) && NUMBER.test(trimmed)) return Number(trimmed);
  if (types.has('boolean') && (trimmed === 'true' || trimmed === 'false'))
    return trimmed === 'true';
  if (types.has('null') && trimmed === 'null') return null;
  if (types.has('array')) {
    const items = branches(node)
      .map((b) => b['items'])
      .find(isNode);
    const parts = trimmed === '' ? [] : trimmed.split(',').map((p) => p.trim());
    return parts.map((p) => (items ? coerce(p, items) : p));
  }
  if (types.has('object') && trimmed.startsWith('{')) {
    try {
      return JSON.parse(trimmed) as unknown;
    } catch {
      return text;
    }
  }
  return text;
}
