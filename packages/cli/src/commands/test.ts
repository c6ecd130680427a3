import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import type { Command } from 'commander';
import { isCodefeedrError } from '@codefeedr/core';
import type { CommandContext } from '../program.js';
import { UsageError } from '../cli-errors.js';
import { ExitCode, exitCodeFor } from '../exit-codes.js';
import { openPipeline } from '../pipeline-source.js';
import { runPipelineTest, type TestFailure } from '../pipeline-test-driver.js';
import { readPipelineTestFile } from '../pipeline-test-file.js';

const TEST_FILE = /\.test\.ya?ml$/;
const SKIPPED = new Set(['node_modules', '.git', 'dist', '.tmp', '.codefeedr']);

/** Test files named on the command line, and the `*.test.yaml` files under named folders. */
function testFiles(cwd: string, paths: readonly string[]): string[] {
  const files: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.isDirectory() && !SKIPPED.has(entry.name)) walk(join(dir, entry.name));
      else if (entry.isFile() && TEST_FILE.test(entry.name)) files.push(join(dir, entry.name));
    }
  };
  for (const path of paths) {
    const absolute = resolve(cwd, path);
    let isDir: boolean;
    try {
      isDir = statSync(absolute).isDirectory();
    } catch {
      throw new UsageError(`${path}: no such test file or folder`);
    }
    if (isDir) walk(absolute);
    else files.push(absolute);
  }
  return files.sort();
}

/**
 * The project a test file belongs to: the nearest folder above it with a package.json. Its
 * plugins are the ones the pipeline uses, wherever `codefeedr test` was started.
 */
function projectOf(file: string): string {
  let dir = dirname(file);
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) return dirname(file);
    dir = parent;
  }
}

interface TestResult {
  name: string;
  ok: boolean;
  failures: TestFailure[];
  error?: { code: string; message: string };
}

export function registerTestCommand(program: Command, context: CommandContext): void {
  program
    .command('test')
    .description(
      'Run pipeline-file tests (*.test.yaml): records for input stages, expected records per stage, event time from record timestamps and watermark steps, processing time from a fake clock. Nothing is read or written: transforms run as compiled for a real run, synchronously.',
    )
    .argument('[paths...]', 'test files, or folders to search for *.test.yaml', ['.'])
    .action(async (paths: string[], _options: unknown, command: Command) => {
      const out = context.output(command);
      try {
        const files = testFiles(out.io.cwd, paths);
        if (files.length === 0)
          throw new UsageError(`no *.test.yaml files under ${paths.join(', ')}`);
        const c = out.colors;
        const report: { file: string; tests: TestResult[] }[] = [];
        let worst: number = ExitCode.OK;
        for (const file of files) {
          const shown = relative(out.io.cwd, file) || file;
          let suite;
          try {
            suite = readPipelineTestFile(file, shown);
          } catch (error) {
            if (!isCodefeedrError(error)) throw error;
            worst = Math.max(worst, exitCodeFor(error));
            report.push({
              file: shown,
              tests: [
                {
                  name: '(test file)',
                  ok: false,
                  failures: [],
                  error: { code: error.code, message: error.message },
                },
              ],
            });
            out.line(`${c.red('✗')} ${shown}`);
            out.line(`    ${error.message.split('\n').join('\n    ')}`);
            continue;
          }
          out.line(shown);
          const tests: TestResult[] = [];
          for (const test of suite.tests) {
            let result: TestResult;
            try {
              const { pipeline } = await openPipeline(
                projectOf(file),
                suite.pipeline,
                { ...out.io.env, ...test.env },
                test.set,
              );
              const failures = runPipelineTest(pipeline, test);
              result = { name: test.name, ok: failures.length === 0, failures };
              if (failures.length > 0) worst = Math.max(worst, ExitCode.RUNTIME_FAILURE);
            } catch (error) {
              if (!isCodefeedrError(error)) throw error;
              worst = Math.max(worst, exitCodeFor(error));
              result = {
                name: test.name,
                ok: false,
                failures: [],
                error: { code: error.code, message: error.message },
              };
            }
            tests.push(result);
            out.line(`  ${result.ok ? c.green('✓') : c.red('✗')} ${result.name}`);
            for (const f of result.failures) out.line(`      stage "${f.stage}": ${f.message}`);
            if (result.error)
              out.line(
                `      ${result.error.message.split('\n').join('\n      ')} [${result.error.code}]`,
              );
          }
          report.push({ file: shown, tests });
        }
        const all = report.flatMap((r) => r.tests);
        const passed = all.filter((t) => t.ok).length;
        out.line(
          `${all.length} test(s) in ${files.length} file(s): ${passed} passed${passed < all.length ? `, ${c.red(`${all.length - passed} failed`)}` : ''}`,
        );
        out.data({ ok: passed === all.length, files: report });
        context.exitCode = worst;
      } catch (error) {
        context.exitCode = out.failure(error);
      }
    });
}
