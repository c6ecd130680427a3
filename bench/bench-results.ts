// Every bench writes its figures as JSON beside its printed table (bench/results/<bench>.json), so
// a later run can be compared with an earlier one and `npm run bench` can print one table.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';

/** One ratio a bench is judged by: measured against a baseline in the same run. */
export interface BenchRatio {
  /** e.g. `inline / hand-written`. */
  name: string;
  value: number;
  /** `>= 0.8`, `< 200 MB`, ...: what the issue asks of it. */
  target?: string;
  met?: boolean;
}

export interface BenchResults {
  bench: string;
  startedAt: string;
  finishedAt: string;
  node: string;
  loadAverageBefore: number[];
  loadAverageAfter: number[];
  ratios: BenchRatio[];
  /** The bench's own figures (rates, latencies, RSS), in its own shape. */
  figures: unknown;
}

export const RESULTS_DIR = join(import.meta.dirname, 'results');

/** Starts the clock and load reading of a bench; `write` saves its results at the end. */
export function benchRun(bench: string) {
  const startedAt = new Date();
  const loadAverageBefore = loadavg();
  return {
    loadAverageBefore,
    write(ratios: BenchRatio[], figures: unknown): string {
      const results: BenchResults = {
        bench,
        startedAt: startedAt.toISOString(),
        finishedAt: new Date().toISOString(),
        node: process.version,
        loadAverageBefore,
        loadAverageAfter: loadavg(),
        ratios,
        figures,
      };
      mkdirSync(RESULTS_DIR, { recursive: true });
      const file = join(RESULTS_DIR, `${bench}.json`);
      writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
      return file;
    },
  };
}

/**
 * This process's peak RSS in MB: VmHWM, not resourceUsage().maxRSS, which on Linux carries the
 * parent's peak over fork and exec, so a bench child never reported less than its parent held.
 */
export function peakRssMb(): number {
  const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return (hwm === null ? process.resourceUsage().maxRSS : Number(hwm[1])) / 1024;
}

export function readBenchResults(bench: string): BenchResults | undefined {
  try {
    return JSON.parse(readFileSync(join(RESULTS_DIR, `${bench}.json`), 'utf8')) as BenchResults;
  } catch {
    return undefined;
  }
}
