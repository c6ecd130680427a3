import { COMPONENT_KINDS, type ComponentKind, type DeliveryGuarantee } from '@codefeedr/core';

/**
 * JSON Schema (draft 2020-12) of a plugin manifest: the `codefeedr` field of a plugin's
 * package.json. The same schema ships as `@codefeedr/registry/manifest.schema.json`
 * (a test keeps the two identical) so editors and other tools can validate manifests.
 */
export const MANIFEST_JSON_SCHEMA = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'https://codefeedr.dev/schemas/plugin-manifest-1.json',
  title: 'CodeFeedr plugin manifest',
  description:
    'The "codefeedr" field of a plugin package.json. The package also carries the keyword "codefeedr-plugin".',
  type: 'object',
  required: ['apiVersion', 'components'],
  additionalProperties: false,
  properties: {
    apiVersion: { const: 1, description: 'Manifest format version.' },
    components: { type: 'array', items: { $ref: '#/$defs/component' } },
  },
  $defs: {
    typeId: {
      type: 'string',
      pattern: '^[A-Za-z][A-Za-z0-9_.-]*@[0-9]+$',
      description: 'A message type id, `name@version`.',
    },
    component: {
      type: 'object',
      required: ['name', 'kind', 'export', 'description', 'configSchema'],
      additionalProperties: false,
      properties: {
        name: {
          type: 'string',
          pattern: '^[a-z][a-z0-9-]*$',
          description: 'Short name, unique in the package: lowercase letters, digits and dashes.',
        },
        kind: { enum: [...COMPONENT_KINDS] },
        export: {
          type: 'string',
          pattern: '^[A-Za-z_$][A-Za-z0-9_$]*$',
          description: 'Name of the module export that implements the component.',
        },
        description: { type: 'string', minLength: 1 },
        configSchema: { type: 'object', description: 'JSON Schema of the component config.' },
        inputTypes: { type: 'array', items: { $ref: '#/$defs/typeId' } },
        outputType: { $ref: '#/$defs/typeId' },
        outputs: {
          type: 'object',
          description:
            "A transform's named outputs (read as `<stage>:<name>`) and their message type ids.",
          propertyNames: { pattern: '^[A-Za-z0-9][A-Za-z0-9_-]*$', not: { const: 'main' } },
          additionalProperties: { $ref: '#/$defs/typeId' },
        },
        messageTypes: {
          type: 'object',
          propertyNames: { $ref: '#/$defs/typeId' },
          additionalProperties: { type: 'object' },
        },
        guarantees: {
          type: 'array',
          uniqueItems: true,
          items: { enum: ['at-least-once', 'exactly-once'] },
        },
      },
      allOf: [
        {
          if: { properties: { kind: { const: 'input' } }, required: ['kind'] },
          then: {
            required: ['outputType'],
            properties: { inputTypes: { maxItems: 0 }, outputs: false },
          },
        },
        {
          if: { properties: { kind: { const: 'transform' } }, required: ['kind'] },
          then: {
            required: ['inputTypes', 'outputType'],
            properties: { inputTypes: { minItems: 1 } },
          },
        },
        {
          if: { properties: { kind: { const: 'output' } }, required: ['kind'] },
          then: {
            required: ['inputTypes'],
            properties: { inputTypes: { minItems: 1 }, outputType: false, outputs: false },
          },
        },
      ],
    },
  },
} as const;

export type { ComponentKind, DeliveryGuarantee };

/** One component entry of a manifest. */
export interface ManifestComponent {
  name: string;
  kind: ComponentKind;
  export: string;
  description: string;
  configSchema: Record<string, unknown>;
  inputTypes?: string[];
  outputType?: string;
  /** A transform's named outputs and their message type ids. */
  outputs?: Record<string, string>;
  messageTypes?: Record<string, Record<string, unknown>>;
  guarantees?: DeliveryGuarantee[];
}

export interface PluginManifest {
  apiVersion: 1;
  components: ManifestComponent[];
}

/** The npm keyword that marks a package as a CodeFeedr plugin. */
export const PLUGIN_KEYWORD = 'codefeedr-plugin';
