// `npm run bench`: every bench in turn (each prints its own table and writes
// bench/results/<bench>.json), then one table of every ratio with its target, read back from
// those files. `npm run bench -- core github` runs only those. A bench that fails is listed as
// failed; the exit code is 1 if any failed.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { readBenchResults } from './bench-results.ts';

const ALL = ['core', 'buffers', 'github', 'sinks', 'scale', 'state'] as const;
const asked = process.argv.slice(2);
const unknown = asked.filter((b) => !(ALL as readonly string[]).includes(b));
if (unknown.length > 0) {
  console.error(`unknown bench ${unknown.join(', ')}; known: ${ALL.join(', ')}`);
  process.exit(2);
}
const benches = asked.length > 0 ? asked : [...ALL];

const outcome = new Map<string, { status: number | null; startedAt: number }>();
for (const bench of benches) {
  console.log(`\n=== bench:${bench} ===`);
  const startedAt = Date.now();
  const run = spawnSync(process.execPath, [join(import.meta.dirname, `${bench}.bench.ts`)], {
    stdio: 'inherit',
  });
  outcome.set(bench, { status: run.status, startedAt });
}

const rows: string[][] = [['BENCH', 'RATIO', 'VALUE', 'TARGET', 'MET', 'LOAD (1 min)']];
for (const bench of benches) {
  const { status, startedAt } = outcome.get(bench)!;
  const results = readBenchResults(bench);
  const fresh = results !== undefined && Date.parse(results.finishedAt) >= startedAt;
  if (status !== 0 || !fresh) {
    rows.push([
      bench,
      status !== 0 ? `failed (exit ${status})` : 'no results written',
      '',
      '',
      '',
      '',
    ]);
    continue;
  }
  const load = `${results.loadAverageBefore[0]!.toFixed(2)} → ${results.loadAverageAfter[0]!.toFixed(2)}`;
  for (const r of results.ratios)
    rows.push([
      bench,
      r.name,
      r.value.toFixed(2),
      r.target ?? '',
      r.met === undefined ? '' : r.met ? 'yes' : 'NO',
      load,
    ]);
}
const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
console.log('\nRATIOS (each against a baseline measured in the same run)');
for (const row of rows) console.log(row.map((cell, i) => cell.padEnd(widths[i]!)).join('  '));
console.log('figures: bench/results/<bench>.json');
const failed = benches.filter((b) => outcome.get(b)!.status !== 0);
if (failed.length > 0) process.exitCode = 1;
