import { COMPONENT_KINDS as KINDS, z, type MessageType } from '@codefeedr/core';
import type {
  ComponentKind,
  DeliveryGuarantee,
  ManifestComponent,
  PluginManifest,
} from './manifest-schema.js';

const COMPONENT_KINDS: ReadonlySet<string> = new Set(KINDS);

interface ComponentLike {
  kind: ComponentKind;
  name: string;
  description: string;
  configSchema?: unknown;
  inputTypes?: readonly MessageType[];
  outputType?: MessageType;
  outputs?: Readonly<Record<string, MessageType>>;
  guarantees?: readonly DeliveryGuarantee[];
}

/** True for the objects defineInput/defineTransform/defineOutput/defineBuffer (and pipelines, key managers) return. */
export function isComponent(value: unknown): value is ComponentLike {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    typeof v['kind'] === 'string' &&
    COMPONENT_KINDS.has(v['kind']) &&
    typeof v['name'] === 'string' &&
    typeof v['description'] === 'string'
  );
}

/**
 * JSON Schema of a config as a pipeline file writes it: `io: 'input'` so fields with
 * defaults are optional, as they are to the user.
 */
export function configJsonSchema(schema: unknown): Record<string, unknown> {
  // Duck-typed: a plugin may carry its own copy of zod, so `instanceof` would miss it.
  if (typeof schema === 'object' && schema !== null && '_zod' in schema) {
    const json = z.toJSONSchema(schema as z.ZodType, {
      io: 'input',
      unrepresentable: 'any',
    }) as Record<string, unknown>;
    delete json['$schema'];
    return json;
  }
  return { type: 'object' };
}

/**
 * Derives a plugin's manifest from its module's exports, so plugin authors never write
 * config JSON Schemas twice: `codefeedr manifest` writes this into package.json.
 * Components are listed in export order; the export name is the key it was found under.
 */
export function manifestFromModule(moduleExports: Record<string, unknown>): PluginManifest {
  const components: ManifestComponent[] = [];
  for (const [exportName, value] of Object.entries(moduleExports)) {
    if (exportName === 'default' || !isComponent(value)) continue;
    const entry: ManifestComponent = {
      name: value.name,
      kind: value.kind,
      export: exportName,
      description: value.description,
      configSchema: configJsonSchema(value.configSchema),
    };
    const types: MessageType[] = [];
    if (
      Array.isArray(value.inputTypes) &&
      (value.kind === 'transform' || value.kind === 'output')
    ) {
      entry.inputTypes = value.inputTypes.map((t) => t.id);
      types.push(...value.inputTypes);
    }
    if (value.outputType && value.kind !== 'output') {
      entry.outputType = value.outputType.id;
      types.push(value.outputType);
    }
    if (value.kind === 'transform' && value.outputs !== undefined) {
      const outputs = Object.entries(value.outputs);
      if (outputs.length > 0) {
        entry.outputs = Object.fromEntries(outputs.map(([name, t]) => [name, t.id]));
        types.push(...outputs.map(([, t]) => t));
      }
    }
    if (types.length > 0) {
      entry.messageTypes = Object.fromEntries(types.map((t) => [t.id, t.jsonSchema()]));
    }
    if (Array.isArray(value.guarantees) && value.guarantees.length > 0) {
      entry.guarantees = [...value.guarantees];
    }
    components.push(entry);
  }
  return { apiVersion: 1, components };
}
