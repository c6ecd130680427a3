import { fileURLToPath } from 'node:url';
import type { InputComponent, OutputComponent, StageContext } from '@codefeedr/core';
import { silentLogger } from '@codefeedr/core';
import { vi } from 'vitest';
import { ComponentModuleError } from './errors.js';

/**
 * Where a conformance suite, and the child processes of its crash tests, find a component:
 * a module (a file URL or path — TypeScript sources work — or a package name) and the name
 * of its export.
 */
export interface ComponentModule {
  module: URL | string;
  export: string;
}

/** The module as a string a child process can import. */
export function moduleSpecifier(spec: ComponentModule): string {
  return spec.module instanceof URL ? spec.module.href : spec.module;
}

/** Imports the component in this (vitest) process. */
export async function loadComponent(spec: ComponentModule, kind: 'input'): Promise<InputComponent>;
export async function loadComponent(
  spec: ComponentModule,
  kind: 'output',
): Promise<OutputComponent>;
export async function loadComponent(
  spec: ComponentModule,
  kind: 'input' | 'output',
): Promise<InputComponent | OutputComponent> {
  const specifier = moduleSpecifier(spec);
  let loaded: Record<string, unknown>;
  try {
    // Through vitest's module runner: it resolves NodeNext `./x.js` imports of TypeScript
    // sources and shares module instances with the test file, also when this testkit is an
    // installed (externalized) package, where a plain import() would bypass vitest.
    loaded = await vi.importActual<Record<string, unknown>>(
      specifier.startsWith('file:') ? fileURLToPath(specifier) : specifier,
    );
  } catch (error) {
    throw new ComponentModuleError(
      specifier,
      spec.export,
      `cannot be imported (${(error as Error).message})`,
    );
  }
  const found = loaded[spec.export] as { kind?: unknown; create?: unknown } | undefined;
  if (found === undefined) throw new ComponentModuleError(specifier, spec.export, 'no such export');
  if (found.kind !== kind || typeof found.create !== 'function') {
    throw new ComponentModuleError(
      specifier,
      spec.export,
      `is a ${String(found.kind ?? typeof found)}, not an ${kind} component`,
    );
  }
  return found as InputComponent | OutputComponent;
}

/** What the runtime hands a stage; the suites create sources and sinks with it directly. */
export function conformanceStageContext(stageId: string, signal: AbortSignal): StageContext {
  return { stageId, pipelineName: 'conformance', logger: silentLogger, signal };
}
