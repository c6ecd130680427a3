import { Ajv2020, type ErrorObject } from 'ajv/dist/2020.js';
import { ManifestInvalidError } from './errors.js';
import { MANIFEST_JSON_SCHEMA, PLUGIN_KEYWORD, type PluginManifest } from './manifest-schema.js';

// ajv: the well-kept draft 2020-12 validator; one instance, compiled once.
const ajv = new Ajv2020({ allErrors: true, strict: false });
const validateSchema = ajv.compile(MANIFEST_JSON_SCHEMA);

/** `/components/0/kind` → `codefeedr.components[0].kind` */
export function manifestFieldPath(instancePath: string, prefix = 'codefeedr'): string {
  let out = prefix;
  for (const segment of instancePath.split('/').slice(1)) {
    const part = segment.replace(/~1/g, '/').replace(/~0/g, '~');
    out += /^\d+$/.test(part) ? `[${part}]` : `.${part}`;
  }
  return out;
}

/** Turns ajv errors into one readable line each, dropping if/then noise. */
export function describeSchemaErrors(
  errors: readonly ErrorObject[] | null | undefined,
  prefix: string,
): string[] {
  const lines: string[] = [];
  for (const error of errors ?? []) {
    if (error.keyword === 'if') continue;
    let field = manifestFieldPath(error.instancePath, prefix);
    let message = error.message ?? 'is invalid';
    const params = error.params as Record<string, unknown>;
    if (error.keyword === 'required') {
      field = manifestFieldPath(
        `${error.instancePath}/${String(params['missingProperty'])}`,
        prefix,
      );
      message = 'is required';
    } else if (error.keyword === 'additionalProperties') {
      field = manifestFieldPath(
        `${error.instancePath}/${String(params['additionalProperty'])}`,
        prefix,
      );
      message = 'is not a known field';
    } else if (error.keyword === 'enum') {
      message = `must be one of ${(params['allowedValues'] as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    } else if (error.keyword === 'const') {
      message = `must be ${JSON.stringify(params['allowedValue'])}`;
    } else if (error.keyword === 'false schema') {
      message = 'is not allowed here';
    }
    const line = `${field} ${message}`;
    if (!lines.includes(line)) lines.push(line);
  }
  return lines;
}

/**
 * Checks a package.json's manifest: the `codefeedr-plugin` keyword, the `codefeedr` field
 * against MANIFEST_JSON_SCHEMA, and unique component names. Every problem is reported at
 * once in a ManifestInvalidError naming the package and each field.
 */
export function validateManifest(packageJson: Record<string, unknown>): PluginManifest {
  const packageName =
    typeof packageJson['name'] === 'string' ? packageJson['name'] : '(unnamed package)';
  const problems: string[] = [];
  const keywords = packageJson['keywords'];
  if (!Array.isArray(keywords) || !keywords.includes(PLUGIN_KEYWORD)) {
    problems.push(`keywords must include "${PLUGIN_KEYWORD}"`);
  }
  const manifest = packageJson['codefeedr'];
  if (manifest === undefined) {
    problems.push(
      'codefeedr is required (the plugin manifest); generate it with `codefeedr manifest`',
    );
  } else if (!validateSchema(manifest)) {
    problems.push(...describeSchemaErrors(validateSchema.errors, 'codefeedr'));
  } else {
    // One name may serve several kinds (an `ndjson-file` input and output, as Redpanda
    // Connect names its `kafka` input and output); a stage's role picks between them.
    const seen = new Set<string>();
    (manifest as PluginManifest).components.forEach((component, index) => {
      const key = `${component.kind}:${component.name}`;
      if (seen.has(key)) {
        problems.push(
          `codefeedr.components[${index}].name "${component.name}" is used by another ${component.kind} component of this package`,
        );
      }
      seen.add(key);
    });
  }
  if (problems.length > 0) throw new ManifestInvalidError(packageName, problems);
  return manifest as PluginManifest;
}
