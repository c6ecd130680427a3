import pc from 'picocolors';
import type { Activity } from './activity.js';
import type { EventWindowCount } from './event-windows.js';
import type { TrendingRepository } from './trending-repositories-ranking.js';

export interface RankedRepository {
  repo: string;
  count: number;
}

/** One window of the trending ranking: its rows (rank order) and their stars + forks. */
export interface TrendingWindow {
  windowStart: string;
  windowEnd: string;
  total: number;
  rows: TrendingRepository[];
}

/** Windows kept per size: the busiest, so memory stays bounded however long the run. */
const KEPT_WINDOWS = 10;

/** Counts of a stream of activity records: events per type, pushes and commits per repository. */
export class GitHubSummary {
  events = 0;
  pushes = 0;
  commits = 0;
  readonly byType = new Map<string, number>();
  readonly pushesByRepo = new Map<string, number>();
  readonly commitsByRepo = new Map<string, number>();
  readonly repositories = new Set<string>();
  /** ISO created_at of the oldest and newest event seen. */
  first: string | undefined;
  last: string | undefined;
  private firstMs = Infinity;
  private lastMs = -Infinity;
  /** Per window size, the busiest windows so far (most events first). */
  private readonly busiest = new Map<number, EventWindowCount[]>();
  /** Trending windows whose rows are still arriving, and the one with the most stars + forks. */
  private readonly trendingOpen = new Map<string, TrendingWindow>();
  private trendingBest: TrendingWindow | undefined;

  /** A fired event-time window's count (from the event-windows stage). */
  addWindow(count: EventWindowCount): void {
    const kept = this.busiest.get(count.sizeMs) ?? [];
    kept.push(count);
    kept.sort(byBusiest);
    kept.length = Math.min(kept.length, KEPT_WINDOWS);
    this.busiest.set(count.sizeMs, kept);
  }

  /** The busiest `n` windows of `sizeMs` (most events first, then the earliest). */
  busiestWindows(sizeMs: number, n: number): EventWindowCount[] {
    return (this.busiest.get(sizeMs) ?? []).slice(0, n);
  }

  /** Window sizes seen, smallest first. */
  windowSizes(): number[] {
    return [...this.busiest.keys()].sort((a, b) => a - b);
  }

  /**
   * A row of a fired trending window. A window's rows all fire at once, so at most a few
   * windows are open at a time; the best is kept whole.
   */
  addTrending(row: TrendingRepository): void {
    let window = this.trendingOpen.get(row.windowStart);
    if (window === undefined) {
      window = { windowStart: row.windowStart, windowEnd: row.windowEnd, total: 0, rows: [] };
      this.trendingOpen.set(row.windowStart, window);
      // Windows fire in event-time order: one that is several windows old is complete.
      for (const start of this.trendingOpen.keys()) {
        if (this.trendingOpen.size <= 4) break;
        this.trendingOpen.delete(start);
      }
    }
    window.rows.push(row);
    window.rows.sort((a, b) => a.rank - b.rank);
    window.total += row.stars + row.forks;
    const best = this.trendingBest;
    if (
      best === undefined ||
      best === window ||
      window.total > best.total ||
      (window.total === best.total && window.windowStart < best.windowStart)
    )
      this.trendingBest = window;
  }

  /** The trending window with the most stars + forks in its top rows (the earliest of equals). */
  hottestWindow(): TrendingWindow | undefined {
    return this.trendingBest;
  }

  add(activity: Activity): void {
    if (activity.kind === 'event') {
      this.events++;
      this.byType.set(activity.type, (this.byType.get(activity.type) ?? 0) + 1);
      this.repositories.add(activity.repo);
      const ms = Date.parse(activity.createdAt);
      if (ms < this.firstMs) {
        this.firstMs = ms;
        this.first = activity.createdAt;
      }
      if (ms > this.lastMs) {
        this.lastMs = ms;
        this.last = activity.createdAt;
      }
    } else {
      this.pushes++;
      this.commits += activity.commits;
      this.pushesByRepo.set(activity.repo, (this.pushesByRepo.get(activity.repo) ?? 0) + 1);
      this.commitsByRepo.set(
        activity.repo,
        (this.commitsByRepo.get(activity.repo) ?? 0) + activity.commits,
      );
    }
  }

  /** Event types, most frequent first (ties by name). */
  types(): RankedRepository[] {
    return rank(this.byType, Infinity);
  }

  topByPushes(n: number): RankedRepository[] {
    return rank(this.pushesByRepo, n);
  }

  topByCommits(n: number): RankedRepository[] {
    return rank(this.commitsByRepo, n);
  }
}

/** Most events first; equal counts by the earlier window. */
function byBusiest(a: EventWindowCount, b: EventWindowCount): number {
  return b.events - a.events || (a.windowStart < b.windowStart ? -1 : 1);
}

/** Highest count first; equal counts by name, so the table is the same on every run. */
function rank(counts: ReadonlyMap<string, number>, n: number): RankedRepository[] {
  return [...counts]
    .map(([repo, count]) => ({ repo, count }))
    .sort((a, b) => b.count - a.count || (a.repo < b.repo ? -1 : a.repo > b.repo ? 1 : 0))
    .slice(0, n);
}

export interface RenderOptions {
  /** Colours, bars and box rules for a terminal; plain aligned text otherwise. */
  tty: boolean;
  /** Rows in each top-repositories table. */
  top: number;
  /** Shown in the title line, e.g. `replay of events.ndjson.gz` or `live`. */
  source: string;
  /** Terminal width, to cut long repository names. */
  width?: number;
  /** The run is still going (a running summary) or finished. */
  final: boolean;
  /** Show at most this many event types (the rest as one line), to fit a terminal. */
  maxTypes?: number;
  /** Rows in each busiest-windows table (default: `top`, at most 5); 0 leaves out the windowed tables. */
  windows?: number;
}

const number = (n: number): string => n.toLocaleString('en-US');

const EIGHTHS = ['', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];

/** A bar of `fraction` × `width` cells, in eighths of a cell; never empty, so every row shows one. */
function barOf(fraction: number, width: number): string {
  const eighths = Math.max(1, Math.round(fraction * width * 8));
  return '█'.repeat(Math.floor(eighths / 8)) + EIGHTHS[eighths % 8];
}

function cut(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, width - 1)}…`;
}

/** `2015-01-01T12:00:03Z` → `2015-01-01 12:00:03Z`. */
function when(iso: string | undefined): string {
  return iso === undefined ? '-' : iso.replace('T', ' ');
}

/** `[2015-01-01T12:00:00.000Z, 2015-01-01T13:00:00.000Z)` → `2015-01-01 12:00–13:00Z`. */
export function windowLabel(start: string, end: string): string {
  const s = start.replace('T', ' ').slice(0, 16);
  const e = end.replace('T', ' ').slice(0, 16);
  return `${s}–${e.slice(0, 10) === s.slice(0, 10) ? e.slice(11) : e}Z`;
}

/** 600000 → `10-MINUTE`, 3600000 → `1-HOUR`. */
function sizeLabel(ms: number): string {
  if (ms % 3_600_000 === 0) return ms === 3_600_000 ? 'HOURS' : `${ms / 3_600_000}-HOUR WINDOWS`;
  if (ms % 60_000 === 0) return `${ms / 60_000}-MINUTE WINDOWS`;
  return `${ms / 1000}-SECOND WINDOWS`;
}

/**
 * Renders the summary as aligned tables. Numbers are printed with thousands separators
 * and nothing else, so a test can read every figure back and check it.
 */
export function renderSummary(summary: GitHubSummary, options: RenderOptions): string {
  const c = pc.createColors(options.tty);
  const width = Math.max(60, Math.min(options.width || 100, 120));
  const nameWidth = Math.min(48, width - 30);
  const lines: string[] = [];
  const rule = options.tty ? c.dim('─'.repeat(Math.min(width, nameWidth + 30))) : '';
  const heading = (left: string, right: string, extra = '') =>
    lines.push(
      c.bold(c.cyan(`${left.padEnd(nameWidth)} ${right.padStart(9)}`)) +
        (extra ? c.bold(c.cyan(extra)) : ''),
    );

  const status = options.final ? 'done' : 'running';
  lines.push(
    `${c.bold('GitHub events summary')} ${c.dim(`(${options.source}, ${status})`)}`,
    `${number(summary.events)} events in ${number(summary.repositories.size)} repositories, ${when(summary.first)} → ${when(summary.last)}`,
    `${number(summary.pushes)} pushes carrying ${number(summary.commits)} commits`,
  );
  if (rule) lines.push(rule);
  lines.push('');

  heading('EVENT TYPE', 'EVENTS', '   SHARE');
  const allTypes = summary.types();
  const types = allTypes.slice(0, options.maxTypes ?? allTypes.length);
  const most = types[0]?.count ?? 1;
  for (const { repo: type, count } of types) {
    const share = summary.events === 0 ? 0 : (100 * count) / summary.events;
    const bar = options.tty ? ` ${c.green(barOf(count / most, 16))}` : '';
    lines.push(
      `${cut(type, nameWidth).padEnd(nameWidth)} ${number(count).padStart(9)} ${`${share.toFixed(1)}%`.padStart(7)}${bar}`,
    );
  }
  const hidden = allTypes.slice(types.length);
  if (hidden.length > 0) {
    const events = hidden.reduce((n, t) => n + t.count, 0);
    lines.push(
      c.dim(`… ${hidden.length} more types`.padEnd(nameWidth) + ` ${number(events).padStart(9)}`),
    );
  }
  lines.push(`${c.bold('Total'.padEnd(nameWidth))} ${c.bold(number(summary.events).padStart(9))}`);

  for (const [title, column, ranked] of [
    ['TOP REPOSITORIES BY PUSHES', 'PUSHES', summary.topByPushes(options.top)],
    ['TOP REPOSITORIES BY COMMITS', 'COMMITS', summary.topByCommits(options.top)],
  ] as const) {
    lines.push('');
    heading(title, column);
    if (ranked.length === 0) lines.push(c.dim('(no pushes yet)'));
    ranked.forEach(({ repo, count }, i) => {
      const name = `${String(i + 1).padStart(2)}. ${cut(repo, nameWidth - 4)}`;
      lines.push(`${name.padEnd(nameWidth)} ${number(count).padStart(9)}`);
    });
  }

  // Event time at work: the windowed stages' results, in the order the windows fired.
  const windowRows = options.windows ?? Math.min(options.top, 5);
  if (windowRows === 0) return `${lines.join('\n')}\n`;
  for (const sizeMs of summary.windowSizes()) {
    lines.push('');
    heading(`BUSIEST ${sizeLabel(sizeMs)} (EVENT TIME)`, 'EVENTS');
    summary.busiestWindows(sizeMs, windowRows).forEach((w, i) => {
      const name = `${String(i + 1).padStart(2)}. ${windowLabel(w.windowStart, w.windowEnd)}`;
      lines.push(`${name.padEnd(nameWidth)} ${number(w.events).padStart(9)}`);
    });
  }
  const hottest = summary.hottestWindow();
  if (hottest !== undefined) {
    lines.push('');
    heading(
      `TRENDING ${windowLabel(hottest.windowStart, hottest.windowEnd)}`,
      'STARS',
      '     FORKS',
    );
    for (const row of hottest.rows.slice(0, options.top)) {
      const name = `${String(row.rank).padStart(2)}. ${cut(row.repo, nameWidth - 4)}`;
      lines.push(
        `${name.padEnd(nameWidth)} ${number(row.stars).padStart(9)} ${number(row.forks).padStart(9)}`,
      );
    }
  }
  return `${lines.join('\n')}\n`;
}
