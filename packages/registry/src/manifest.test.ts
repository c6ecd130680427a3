import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  Any,
  defineInput,
  defineMessageType,
  defineOutput,
  defineTransform,
  z,
} from '@codefeedr/core';
import { describe, expect, it } from 'vitest';
import { ManifestInvalidError } from './errors.js';
import { validateManifest } from './manifest.js';
import { manifestFromModule } from './manifest-from-module.js';
import { MANIFEST_JSON_SCHEMA } from './manifest-schema.js';

const validComponent = {
  name: 'hello',
  kind: 'transform',
  export: 'hello',
  description: 'Greets.',
  configSchema: { type: 'object' },
  inputTypes: ['example.Name@1'],
  outputType: 'example.Greeting@1',
};

function pkg(codefeedr: unknown, keywords = ['codefeedr-plugin']): Record<string, unknown> {
  return { name: 'codefeedr-plugin-x', version: '1.0.0', keywords, codefeedr };
}

function problemsOf(fn: () => unknown): readonly string[] {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ManifestInvalidError);
    expect((error as ManifestInvalidError).code).toBe('MANIFEST_INVALID');
    expect((error as Error).message).toContain('codefeedr-plugin-x');
    return (error as ManifestInvalidError).problems;
  }
  throw new Error('expected a ManifestInvalidError');
}

describe('validateManifest', () => {
  it('accepts a valid manifest and returns it', () => {
    const manifest = { apiVersion: 1, components: [validComponent] };
    expect(validateManifest(pkg(manifest))).toEqual(manifest);
  });

  it('names the package and every bad field at once', () => {
    const problems = problemsOf(() =>
      validateManifest(
        pkg({
          apiVersion: 2,
          components: [
            { ...validComponent, kind: 'sink' },
            { ...validComponent, name: 'Bad Name', export: undefined, extra: true },
          ],
        }),
      ),
    );
    expect(problems).toEqual(
      expect.arrayContaining([
        'codefeedr.apiVersion must be 1',
        expect.stringMatching(
          /^codefeedr\.components\[0\]\.kind must be one of "input", "transform"/,
        ),
        expect.stringMatching(/^codefeedr\.components\[1\]\.name must match pattern/),
        'codefeedr.components[1].export is required',
        'codefeedr.components[1].extra is not a known field',
      ]),
    );
  });

  it('requires the keyword, the field, and kind-specific types', () => {
    expect(problemsOf(() => validateManifest(pkg(undefined, ['other'])))).toEqual([
      'keywords must include "codefeedr-plugin"',
      expect.stringContaining('codefeedr is required'),
    ]);
    const { inputTypes: _drop, ...noInputs } = validComponent;
    expect(
      problemsOf(() => validateManifest(pkg({ apiVersion: 1, components: [noInputs] }))),
    ).toContain('codefeedr.components[0].inputTypes is required');
    const output = { ...validComponent, kind: 'output' };
    expect(
      problemsOf(() => validateManifest(pkg({ apiVersion: 1, components: [output] }))),
    ).toContain('codefeedr.components[0].outputType is not allowed here');
  });

  it('rejects two components with one name', () => {
    expect(
      problemsOf(() =>
        validateManifest(pkg({ apiVersion: 1, components: [validComponent, validComponent] })),
      ),
    ).toEqual([
      expect.stringContaining(
        'codefeedr.components[1].name "hello" is used by another transform component',
      ),
    ]);
    // The same name for another kind is fine (an input and an output of one technology).
    const { outputType: _none, ...asOutput } = { ...validComponent, kind: 'output' };
    expect(
      validateManifest(pkg({ apiVersion: 1, components: [validComponent, asOutput] })).components,
    ).toHaveLength(2);
  });

  it('ships the schema file identical to the exported constant', () => {
    const file = JSON.parse(
      readFileSync(join(import.meta.dirname, '..', 'manifest.schema.json'), 'utf8'),
    );
    expect(file).toEqual(JSON.parse(JSON.stringify(MANIFEST_JSON_SCHEMA)));
  });
});

describe('manifestFromModule', () => {
  const Name = defineMessageType('example.Name', 1, z.object({ name: z.string() }));
  const Greeting = defineMessageType('example.Greeting', 1, z.string());
  const hello = defineTransform({
    name: 'hello',
    description: 'Greets each name.',
    configSchema: z.object({ greeting: z.string().default('Hello'), shout: z.boolean() }),
    inputTypes: [Name] as const,
    outputType: Greeting,
    transform: ([names], config) => names.map((n) => `${config.greeting}, ${n.name}`),
  });
  const names = defineInput({
    name: 'names',
    description: 'Names.',
    configSchema: z.object({}),
    outputType: Name,
    createSource: () => {
      throw new Error('not used');
    },
  });
  const sink = defineOutput({
    name: 'sink',
    description: 'Drops everything.',
    configSchema: z.object({}),
    inputTypes: [Any] as const,
    createSink: () => ({ write() {}, flush: async () => {}, close: async () => {} }),
  });

  it('derives a manifest that validates, with input-side config schemas', () => {
    const manifest = manifestFromModule({ hello, names, sink, notAComponent: 42, helper: () => 1 });
    expect(manifest.components.map((c) => [c.export, c.kind, c.name])).toEqual([
      ['hello', 'transform', 'hello'],
      ['names', 'input', 'names'],
      ['sink', 'output', 'sink'],
    ]);
    const derived = manifest.components[0]!;
    expect(derived.inputTypes).toEqual(['example.Name@1']);
    expect(derived.outputType).toBe('example.Greeting@1');
    expect(derived.messageTypes?.['example.Name@1']).toEqual(Name.jsonSchema());
    // A defaulted field is optional to whoever writes the config.
    expect(derived.configSchema['required']).toEqual(['shout']);
    expect(Object.keys(derived.configSchema['properties'] as object)).toEqual([
      'greeting',
      'shout',
    ]);
    expect(manifest.components[2]!.outputType).toBeUndefined();
    expect(
      validateManifest({ name: 'p', keywords: ['codefeedr-plugin'], codefeedr: manifest }),
    ).toEqual(manifest);
  });
});
