// The error-code reference. Core's codes come from CORE_ERROR_CODES, the closed union with each
// code's meaning (packages/core/src/error-codes.test.ts keeps it complete). The other packages'
// codes are read from their sources: each error class that passes a literal code to its
// CodefeedrError constructor, with the class's doc comment. The exit code is what the CLI's own
// exitCodeFor() gives for an error with that code.
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { CodefeedrError, CORE_ERROR_CODES } from '@codefeedr/core';
import { exitCodeFor } from '@codefeedr/cli';
import { escapeForPage as escape } from './markdown-escape.ts';

export interface ErrorCodeEntry {
  code: string;
  meaning: string;
  errorClass?: string;
}

function sourceFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && !f.includes('test-support'))
    .map((f) => join(dir, f));
}

const CLASS_WITH_CODE =
  /(?:\/\*\*((?:(?!\*\/)[\s\S])*)\*\/\s*)?export class (\w+) extends \w+ \{((?:(?!\nexport )[\s\S])*?)super\(\s*'([A-Z][A-Z0-9_]+)'/g;

/** Codes a package's error classes raise, with their doc comments, sorted by code. */
export function packageErrorCodes(packageDir: string): ErrorCodeEntry[] {
  const found = new Map<string, ErrorCodeEntry>();
  for (const file of sourceFiles(join(packageDir, 'src'))) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(CLASS_WITH_CODE)) {
      const code = m[4]!;
      const meaning = (m[1] ?? '')
        .split('\n')
        .map((line) => line.replace(/^\s*\*\s?/, '').trim())
        .filter((line) => line && !line.startsWith('@'))
        .join(' ');
      if (!found.has(code) || (!found.get(code)!.meaning && meaning))
        found.set(code, { code, meaning, errorClass: m[2]! });
    }
  }
  return [...found.values()].sort((a, b) => a.code.localeCompare(b.code));
}

const exitOf = (code: string): number => exitCodeFor(new CodefeedrError(code, code));

function table(entries: ErrorCodeEntry[], withClass: boolean): string[] {
  return [
    withClass
      ? '| code | error class | meaning | exit |\n| --- | --- | --- | --- |'
      : '| code | meaning | exit |\n| --- | --- | --- |',
    ...entries.map((e) =>
      withClass
        ? `| \`${e.code}\` | \`${e.errorClass}\` | ${escape(e.meaning)} | ${exitOf(e.code)} |`
        : `| \`${e.code}\` | ${escape(e.meaning)} | ${exitOf(e.code)} |`,
    ),
  ];
}

export function errorCodesPage(repo: string): string {
  const core = Object.entries(CORE_ERROR_CODES)
    .map(([code, meaning]) => ({ code, meaning: String(meaning) }))
    .sort((a, b) => a.code.localeCompare(b.code));
  const coreCodes = new Set(core.map((e) => e.code));
  const packages: [string, string][] = [
    ['@codefeedr/registry', 'packages/registry'],
    ['@codefeedr/cli', 'packages/cli'],
    ['@codefeedr/testkit', 'packages/testkit'],
    ...readdirSync(join(repo, 'plugins'))
      .filter((name) => existsSync(join(repo, 'plugins', name, 'package.json')))
      .sort()
      .map((name): [string, string] => {
        const pkg = JSON.parse(readFileSync(join(repo, 'plugins', name, 'package.json'), 'utf8'));
        return [pkg.name as string, `plugins/${name}`];
      }),
  ];
  const sections = packages.flatMap(([name, dir]) => {
    const entries = packageErrorCodes(join(repo, dir)).filter((e) => !coreCodes.has(e.code));
    if (entries.length === 0) return [];
    return [`## ${name}`, '', ...table(entries, true), ''];
  });
  return [
    '# Error codes',
    '',
    'Every error CodeFeedr raises on purpose is a `CodefeedrError` with a stable `code` and a',
    'message that says what to do next. The CLI prints it on one line, ending in the code',
    '(`error Pipeline file p.yaml has 1 problem: … [PIPELINE_INVALID]`); with `--json` it is',
    '`{"ok": false, "error": {"code", "message", "problems"?}}` on stdout. In code, test for a code',
    'with `isCodefeedrError(error) && error.code === "…"` — it recognises errors from another copy of',
    'core, where `instanceof` would not.',
    '',
    'The **exit** column is the exit status of `codefeedr` when a command fails with that error:',
    '`2` for invalid input (fix the file, the config or the command line), `1` for a failure while',
    'running. Generated at build time: core’s codes from `CORE_ERROR_CODES` (with their meaning as',
    'core states it), the other packages’ from their error classes and those classes’ doc comments.',
    '',
    '## @codefeedr/core',
    '',
    ...table(core, false),
    '',
    ...sections,
  ].join('\n');
}
