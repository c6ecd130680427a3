/** One config key of a component, as `plugins info` lists it. */
export interface ConfigKey {
  /** Dotted path under `with:`, e.g. `auth.user`; `[]` marks list items. */
  key: string;
  type: string;
  required: boolean;
  default?: unknown;
  /** `enum`/`const` values the key accepts. */
  allowed?: unknown[];
  description?: string;
  /** Bounds and patterns, in words: `>= 1`, `matches ^[a-z]+$`. */
  constraints?: string[];
}

type Schema = Record<string, unknown>;

const isSchema = (v: unknown): v is Schema =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function variants(schema: Schema): Schema[] {
  for (const key of ['anyOf', 'oneOf']) {
    const list = schema[key];
    if (Array.isArray(list)) return list.filter(isSchema).flatMap(variants);
  }
  return [schema];
}

function typeOf(schema: Schema): string {
  const types = variants(schema).map((v) => {
    if ('const' in v) return JSON.stringify(v['const']);
    const type = v['type'];
    if (Array.isArray(type)) return type.join(' | ');
    if (type === 'array') return `list of ${isSchema(v['items']) ? typeOf(v['items']) : 'any'}`;
    if (type === 'object' && isSchema(v['additionalProperties']) && !isSchema(v['properties']))
      return `map of ${typeOf(v['additionalProperties'])}`;
    if (typeof type === 'string') return type;
    if (Array.isArray(v['enum'])) return 'enum';
    return 'any';
  });
  return [...new Set(types)].join(' | ');
}

function constraintsOf(schema: Schema): string[] {
  const out: string[] = [];
  const words: [string, string][] = [
    ['minimum', '>='],
    ['exclusiveMinimum', '>'],
    ['maximum', '<='],
    ['exclusiveMaximum', '<'],
    ['minLength', 'length >='],
    ['maxLength', 'length <='],
    ['minItems', 'items >='],
    ['maxItems', 'items <='],
  ];
  for (const v of variants(schema)) {
    for (const [key, word] of words) if (typeof v[key] === 'number') out.push(`${word} ${v[key]}`);
    if (typeof v['pattern'] === 'string') out.push(`matches ${v['pattern']}`);
    if (typeof v['format'] === 'string') out.push(`format ${v['format']}`);
  }
  return out;
}

/**
 * Every key of a component's config JSON Schema, nested keys included, with what a user needs
 * to write it: type, whether it is required, its default, the values it accepts, the
 * description and bounds the plugin's zod schema gave it.
 */
export function configKeys(schema: unknown, prefix = '', depth = 0): ConfigKey[] {
  if (!isSchema(schema) || depth > 8) return [];
  const keys: ConfigKey[] = [];
  for (const variant of variants(schema)) {
    const properties = variant['properties'];
    if (!isSchema(properties)) continue;
    const required = new Set(
      Array.isArray(variant['required']) ? (variant['required'] as string[]) : [],
    );
    for (const [name, raw] of Object.entries(properties)) {
      if (!isSchema(raw)) continue;
      const key = `${prefix}${name}`;
      if (keys.some((k) => k.key === key)) continue;
      const allowed = variants(raw).flatMap((v) =>
        Array.isArray(v['enum']) ? (v['enum'] as unknown[]) : 'const' in v ? [v['const']] : [],
      );
      const constraints = constraintsOf(raw);
      keys.push({
        key,
        type: typeOf(raw),
        required: required.has(name) && !('default' in raw),
        ...('default' in raw ? { default: raw['default'] } : {}),
        ...(allowed.length > 0 ? { allowed } : {}),
        ...(typeof raw['description'] === 'string' ? { description: raw['description'] } : {}),
        ...(constraints.length > 0 ? { constraints } : {}),
      });
      for (const inner of variants(raw)) {
        keys.push(...configKeys(inner, `${key}.`, depth + 1));
        if (inner['type'] === 'array' && isSchema(inner['items']))
          keys.push(...configKeys(inner['items'], `${key}[].`, depth + 1));
      }
    }
  }
  return keys;
}

/** `with.to (required): number — Last number.`, one line per key, for people. */
export function describeConfigKey(k: ConfigKey): string {
  const parts = [`with.${k.key}${k.required ? ' (required)' : ''}: ${k.type}`];
  if (k.allowed) parts.push(`one of ${k.allowed.map((v) => JSON.stringify(v)).join(', ')}`);
  if (k.default !== undefined) parts.push(`default ${JSON.stringify(k.default)}`);
  if (k.constraints) parts.push(...k.constraints);
  return `${parts.join(', ')}${k.description ? ` — ${k.description}` : ''}`;
}
