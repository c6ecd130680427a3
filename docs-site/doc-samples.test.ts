// Every sample on the site is run, so the docs cannot drift from the code:
// - a page shows code only as a snippet import of a file under docs-site/examples (or of a
//   repository file that has its own tests, like templates/plugin), as a ```sh block, which is
//   run here from the repository root, or as ```text output;
// - a ```sh block is skipped only with a `<!-- doc-test: not run — reason -->` line above it
//   (the list stays tiny and each says which test covers it instead);
// - pipeline files under examples are validated with the real CLI (`*.invalid.yaml` must fail
//   with exit 2), TypeScript samples are type-checked and run (`*.test.ts` ones are vitest files
//   of this suite), and every file under examples is shown by some page.
// Needs `npm run build` (root `npm test` runs it first) and the services (vitest's global setup).
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import kafkajs from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { allSamples, handWrittenPages } from './test-support/markdown-samples.ts';

const site = import.meta.dirname;
const repo = join(site, '..');
const examples = join(site, 'examples');
const cli = join(repo, 'packages', 'cli', 'dist', 'bin.js');
const { blocks, imports } = allSamples(site);

/** The environment of a sample: the repository's Node 24 first, no vitest of ours leaking in. */
function sampleEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of Object.keys(env))
    if (key.startsWith('VITEST') || key === 'TEST') delete env[key];
  delete env.NODE_OPTIONS;
  env.PATH = `${join(repo, 'node_modules', 'node', 'bin')}:${process.env.PATH}`;
  env.NO_COLOR = '1';
  return env;
}

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[], cwd = repo, timeoutMs = 150_000): Promise<Result> {
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      { cwd, env: sampleEnv(), timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) =>
        resolve({
          code: error ? (typeof error.code === 'number' ? error.code : 1) : 0,
          stdout,
          stderr: error && typeof error.code !== 'number' ? `${stderr}\n${error.message}` : stderr,
        }),
    );
  });
}

const tail = (text: string): string => text.split('\n').slice(-40).join('\n');

function examplesFiles(): string[] {
  return (readdirSync(examples, { recursive: true, encoding: 'utf8' }) as string[])
    .filter((f) => /\.(ya?ml|ts|js|mjs)$/.test(f))
    .map((f) => join(examples, f))
    .sort();
}

/** Kafka topics and groups of the scale-out guide's pipeline (named after its stage ids). */
async function deleteScaleOutTopics(): Promise<void> {
  const brokers = (process.env.CODEFEEDR_KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
  const admin = new kafkajs.Kafka({ brokers, logLevel: kafkajs.logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    const topics = (await admin.listTopics()).filter((t) => t.startsWith('scaled-'));
    if (topics.length > 0) await admin.deleteTopics({ topics, timeout: 30_000 });
    const groups = (await admin.listGroups()).groups
      .map((g) => g.groupId)
      .filter((g) => g.startsWith('scaled-'));
    if (groups.length > 0) await admin.deleteGroups(groups);
    for (let i = 0; i < 100; i++) {
      if (!(await admin.listTopics()).some((t) => t.startsWith('scaled-'))) break;
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    await admin.disconnect();
  }
}

/** Set-up a block needs that is not part of what the page shows. */
const SETUP: { when: RegExp; run: () => Promise<void> }[] = [
  // Kafka keeps the topics (and their end-of-stream markers) between runs; the guide says so.
  { when: /pushes-at-scale\.yaml/, run: deleteScaleOutTopics },
];

describe('doc samples', () => {
  it('pages show code only as tested snippet files, sh blocks or text output', () => {
    expect(handWrittenPages(site).length).toBeGreaterThan(15);
    const untested = blocks
      .filter((b) => b.lang !== 'sh' && b.lang !== 'text')
      .map((b) => `${b.page}:${b.line} \`\`\`${b.lang}`);
    expect(untested, 'inline code that no test runs: make it a file under examples/').toEqual([]);
    const notRun = blocks.filter((b) => b.notRun !== undefined);
    // The explicit exceptions: whole-machine commands, ones that publish or change the repo,
    // one that needs a Kubernetes cluster and one that runs until Ctrl-C.
    expect(notRun.map((b) => `${b.page}:${b.line}`)).toHaveLength(5);
    for (const b of notRun) expect(b.notRun!.length, `${b.page}:${b.line}`).toBeGreaterThan(20);
    expect(blocks.filter((b) => b.lang === 'text' && b.notRun)).toEqual([]);
  });

  it('every snippet import names a file, and every example file is shown by a page', () => {
    const missing = imports.filter((i) => !existsSync(i.file)).map((i) => `${i.page}:${i.line}`);
    expect(missing).toEqual([]);
    const shown = new Set(imports.map((i) => i.file));
    const orphans = examplesFiles()
      .filter((f) => !f.endsWith('tsconfig.json') && !shown.has(f))
      .map((f) => relative(site, f));
    expect(orphans).toEqual([]);
    // Files shown from elsewhere in the repository are tested where they live.
    const outside = [...shown].filter((f) => !f.startsWith(examples)).map((f) => relative(repo, f));
    for (const f of outside) expect(f).toMatch(/^(templates\/plugin|examples\/windowed-counts)\//);
  });

  it('every test file a page names exists', () => {
    const named = new Set<string>();
    for (const page of handWrittenPages(site)) {
      const text = readFileSync(join(site, page), 'utf8');
      for (const m of text.matchAll(/`((?:packages|plugins|test|templates)\/[\w./-]+\.test\.ts)`/g))
        named.add(m[1]!);
    }
    expect(named.size).toBeGreaterThan(10);
    expect([...named].filter((f) => !existsSync(join(repo, f)))).toEqual([]);
  });

  it('pipeline files validate with the real CLI; *.invalid.yaml ones fail with exit 2', async () => {
    const yaml = examplesFiles().filter((f) => /\.ya?ml$/.test(f));
    const valid = yaml.filter((f) => !f.endsWith('.invalid.yaml'));
    expect(valid.length).toBeGreaterThan(4);
    const ok = await run(process.execPath, [cli, 'validate', ...valid]);
    expect(ok.code, tail(ok.stdout + ok.stderr)).toBe(0);
    for (const file of yaml.filter((f) => f.endsWith('.invalid.yaml'))) {
      const bad = await run(process.execPath, [cli, 'validate', file]);
      expect(bad.code, tail(bad.stdout + bad.stderr)).toBe(2);
      expect(bad.stderr).toMatch(/\[PIPELINE_INVALID\]/);
    }
  });

  it('TypeScript samples type-check and run', async () => {
    const tsc = await run(process.execPath, [
      join(repo, 'node_modules', 'typescript', 'bin', 'tsc'),
      '-p',
      join(examples, 'tsconfig.json'),
    ]);
    expect(tsc.code, tail(tsc.stdout + tsc.stderr)).toBe(0);
    for (const file of examplesFiles().filter(
      (f) => f.endsWith('.ts') && !f.endsWith('.test.ts'),
    )) {
      const result = await run(process.execPath, [file]);
      expect(result.code, `${relative(repo, file)}:\n${tail(result.stderr)}`).toBe(0);
      expect(result.stdout.length, relative(repo, file)).toBeGreaterThan(0);
    }
  });

  const runnable = blocks.filter((b) => b.lang === 'sh' && b.notRun === undefined);
  // Commands that reinstall, test, publish or change the repository itself are never run from
  // here, whatever a page says: such a block must carry the not-run marker.
  const NEVER_RUN =
    /\bnpm (?:ci|test|publish|run release)\b|changeset (?:version|publish)|^\s*npx changeset\s*(?:#|$)|new plugin \S+ --install/m;
  /** A block that first moves into a scratch folder under .tmp/ works on nothing of the repo. */
  const inScratch = (code: string): boolean =>
    /^\s*(?:rm -rf \.tmp\/\S+ && )?mkdir -p \.tmp\/\S+ && cd \.tmp\//.test(code);
  const refused = (code: string): boolean => NEVER_RUN.test(code) && !inScratch(code);
  it('runs no block that reinstalls, tests, publishes or changes the repository', () => {
    expect(runnable.filter((b) => refused(b.code)).map((b) => `${b.page}:${b.line}`)).toEqual([]);
    expect(blocks.filter((b) => b.notRun !== undefined && refused(b.code))).toHaveLength(3);
  });
  it('has shell samples to run', () => expect(runnable.length).toBeGreaterThan(15));
  for (const block of runnable) {
    it(`runs ${block.page}:${block.line}`, { timeout: 180_000 }, async () => {
      if (refused(block.code)) throw new Error(`refusing to run ${block.page}:${block.line}`);
      for (const setup of SETUP) if (setup.when.test(block.code)) await setup.run();
      const result = await run('bash', ['-euo', 'pipefail', '-c', block.code]);
      expect(
        result.code,
        `${block.page}:${block.line}\n$ ${block.code}\n--- stdout\n${tail(result.stdout)}\n--- stderr\n${tail(result.stderr)}`,
      ).toBe(0);
    });
  }
});
