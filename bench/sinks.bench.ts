// bench:sinks — the database output sinks against the drivers' best hand-written bulk paths
// (not a test). Run: npm run build (the bench imports the builds), npm run services:up, then
//   npm run bench:sinks [-- --records 50000 --mongo-upsert-records 1000 --batch 500 --rounds 3]
//
// Same servers, same batch size, same records (real GitHub events from the GH Archive fixture,
// repeated with fresh unique ids), one run. Each pair is measured `rounds` times, interleaved
// (plugin, baseline, baseline, plugin, …) into a fresh table/collection each time; the medians
// and the four ratios (plugin / hand-written, target ≥ 0.8) are printed last, and written to
// bench/results/sinks.json with the load average.
//
//   postgres append  plugin-postgres output (mode append: COPY)  vs  a raw COPY … FROM STDIN loop
//   postgres upsert  plugin-postgres output (mode upsert)        vs  raw multi-row INSERT … ON CONFLICT
//   mongo upsert     plugin-mongodb output (upsert by _id)       vs  raw bulkWrite of replaceOne upserts
//   mongo insert     plugin-mongodb output (mode insert)         vs  raw bulkWrite of insertOne
//
// The sinks are driven as the runtime drives them: component.create → createSink(ctx) →
// write(batch) per batch → flush() → close(). Records are prepared before the clock starts.
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type * as CoreModule from '@codefeedr/core';
import type { Sink, StageContext, StreamRecord } from '@codefeedr/core';
import type * as GitHubModule from '@codefeedr/plugin-github';
import type * as MongoModule from '@codefeedr/plugin-mongodb';
import type * as PostgresModule from '@codefeedr/plugin-postgres';
import { benchRun } from './bench-results.ts';

let core: typeof CoreModule;
let postgres: typeof PostgresModule;
let mongodb: typeof MongoModule;
let github: typeof GitHubModule;
try {
  core = await import('@codefeedr/core');
  postgres = await import('@codefeedr/plugin-postgres');
  mongodb = await import('@codefeedr/plugin-mongodb');
  github = await import('@codefeedr/plugin-github');
} catch (error) {
  console.error(
    `Cannot load the plugins (${(error as Error).message}). Build first: npm run build`,
  );
  process.exit(1);
}
const pg = (await import('pg')).default;
const { from: copyFrom } = await import('pg-copy-streams');
const { MongoClient } = await import('mongodb');

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}
const RECORDS = option('records', 50_000);
// FerretDB 1.24 (SQLite) scans the collection for every update, for the plugin and the raw
// driver alike: 50,000 upserts would take hours, so this pair writes fewer records.
const MONGO_UPSERT_RECORDS = option('mongo-upsert-records', 1_000);
const BATCH = option('batch', 500);
const ROUNDS = option('rounds', 3);
const POSTGRES_URL =
  process.env.CODEFEEDR_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5433/postgres';
const MONGODB_URL = process.env.CODEFEEDR_MONGODB_URL ?? 'mongodb://127.0.0.1:27018/';
const FIXTURE = join(import.meta.dirname, '..', 'test', 'fixtures', 'github', 'events.ndjson.gz');
const RUN = Date.now().toString(36);
const DATABASE = `bench_sinks_${RUN}`;

type Event = Record<string, unknown> & { id: string };

/** The fixture's events repeated to `count`, each copy with a fresh digit-string id. */
function events(count: number): Event[] {
  const base = gunzipSync(readFileSync(FIXTURE))
    .toString('utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Event);
  return Array.from({ length: count }, (_, i) => {
    const e = base[i % base.length]!;
    return { ...e, id: `${Math.floor(i / base.length) + 1}${e.id.padStart(12, '0')}` };
  });
}

function batches<T>(items: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += BATCH) out.push(items.slice(i, i + BATCH));
  return out;
}

const ctx: StageContext = {
  stageId: 'bench',
  pipelineName: `bench-sinks-${RUN}`,
  logger: core.silentLogger,
  signal: new AbortController().signal,
};

/** Drives a sink as the runtime does; records/s over write + flush (open and close excluded). */
async function runSink(sink: Sink<unknown>, work: StreamRecord<unknown>[][]): Promise<number> {
  const records = work.reduce((n, b) => n + b.length, 0);
  const started = performance.now();
  for (const batch of work) {
    const result = await sink.write(batch);
    if (result && result.failed.length > 0)
      throw new Error(
        `the sink refused ${result.failed.length} records: ${String(result.failed[0]!.error)}`,
      );
  }
  await sink.flush();
  const seconds = (performance.now() - started) / 1000;
  await sink.close();
  return records / seconds;
}

// ---------- PostgreSQL ----------

const pgPool = new pg.Pool({ connectionString: POSTGRES_URL, max: 1 });
/** The columns the output derives from github.Event@1, in its order (checked below). */
const COLUMNS = ['id', 'type', 'actor', 'repo', 'org', 'payload', 'public', 'created_at', 'extra'];
const KNOWN = new Set(COLUMNS.slice(0, -1));
const JSON_COLUMNS = new Set(['actor', 'repo', 'org', 'payload', 'extra']);
const quote = (name: string) => `"${name.replaceAll('"', '""')}"`;
let tableCount = 0;

async function pluginPostgresTable(mode: 'append' | 'upsert') {
  const table = `bench_sinks_${RUN}_${tableCount++}`;
  const config = { url: POSTGRES_URL, table, key: 'id', mode };
  const component = postgres.postgresOutputFor(github.GitHubEventType);
  return { table, sink: await component.create('bench', config).createSink(ctx) };
}

/** A table like the plugin's (same columns, types and key), for the hand-written loops. */
async function rawPostgresTable(): Promise<string> {
  const model = await pluginPostgresTable('upsert');
  await model.sink.close();
  const { rows } = await pgPool.query<{ column_name: string }>(
    'SELECT column_name FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position',
    [model.table],
  );
  const columns = rows.map((r) => r.column_name);
  if (columns.join() !== COLUMNS.join())
    throw new Error(`the output derived columns ${columns.join()}, not ${COLUMNS.join()}`);
  return model.table;
}

/** One event as the plugin stores it: known fields in their columns, the rest in `extra`. */
function rowOf(e: Event): unknown[] {
  const extra: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(e)) if (!KNOWN.has(k)) extra[k] = v;
  return COLUMNS.map((c) => (c === 'extra' ? extra : (e[c] ?? null)));
}

const copyEscape = (text: string) =>
  text.replace(/[\\\n\r\t]/g, (c) => ({ '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' })[c]!);

function copyLine(row: unknown[]): string {
  return `${row
    .map((v, i) =>
      v === null
        ? '\\N'
        : copyEscape(JSON_COLUMNS.has(COLUMNS[i]!) ? JSON.stringify(v) : String(v)),
    )
    .join('\t')}\n`;
}

async function rawCopy(table: string, work: Event[][]): Promise<number> {
  const client = await pgPool.connect();
  const started = performance.now();
  let records = 0;
  try {
    for (const batch of work) {
      let text = '';
      for (const e of batch) text += copyLine(rowOf(e));
      const stream = client.query(
        copyFrom(`COPY ${quote(table)} (${COLUMNS.join(', ')}) FROM STDIN`),
      );
      const done = once(stream, 'finish');
      stream.end(text);
      await done;
      records += batch.length;
    }
  } finally {
    client.release();
  }
  return records / ((performance.now() - started) / 1000);
}

async function rawInsertOnConflict(table: string, work: Event[][]): Promise<number> {
  const client = await pgPool.connect();
  const update = COLUMNS.slice(1)
    .map((c) => `${c} = EXCLUDED.${c}`)
    .join(', ');
  const started = performance.now();
  let records = 0;
  try {
    for (const batch of work) {
      const values: unknown[] = [];
      const tuples: string[] = [];
      for (const e of batch) {
        const row = rowOf(e);
        tuples.push(
          `(${row.map((v, i) => {
            values.push(v !== null && JSON_COLUMNS.has(COLUMNS[i]!) ? JSON.stringify(v) : v);
            return `$${values.length}`;
          })})`,
        );
      }
      await client.query(
        `INSERT INTO ${quote(table)} (${COLUMNS.join(', ')}) VALUES ${tuples.join(', ')} ON CONFLICT (id) DO UPDATE SET ${update}`,
        values,
      );
      records += batch.length;
    }
  } finally {
    client.release();
  }
  return records / ((performance.now() - started) / 1000);
}

async function countRows(table: string): Promise<number> {
  const { rows } = await pgPool.query<{ n: string }>(`SELECT count(*) AS n FROM ${quote(table)}`);
  return Number(rows[0]!.n);
}

// ---------- MongoDB ----------

const mongo = new MongoClient(MONGODB_URL, { serverSelectionTimeoutMS: 5_000 });
const mdb = mongo.db(DATABASE);
/** Writes per bulkWrite command: FerretDB 1.24 hangs on an update command of 100 or more. */
const MONGO_SLICE = 50;
let collectionCount = 0;

async function pluginMongo(mode: 'upsert' | 'insert', maxBatchWrites?: number) {
  const collection = `c${collectionCount++}`;
  const config = {
    url: MONGODB_URL,
    database: DATABASE,
    collection,
    mode,
    ...(maxBatchWrites ? { maxBatchWrites } : {}),
  };
  return { collection, sink: await mongodb.mongoOutput.create('bench', config).createSink(ctx) };
}

async function rawMongo(
  mode: 'upsert' | 'insert',
  work: Event[][],
): Promise<{ collection: string; rate: number }> {
  const collection = `c${collectionCount++}`;
  await mdb.createCollection(collection);
  const target = mdb.collection(collection);
  const started = performance.now();
  let records = 0;
  for (const batch of work) {
    if (mode === 'insert') {
      // Inserts have no FerretDB cap: the driver's one insertMany per batch is the best path.
      await target.insertMany(
        batch.map((e) => ({ ...e })),
        { ordered: false, writeConcern: { w: 'majority' } },
      );
    } else {
      for (let i = 0; i < batch.length; i += MONGO_SLICE) {
        await target.bulkWrite(
          batch.slice(i, i + MONGO_SLICE).map((e) => ({
            replaceOne: { filter: { _id: e.id as never }, replacement: e, upsert: true },
          })),
          { ordered: false, writeConcern: { w: 'majority' } },
        );
      }
    }
    records += batch.length;
  }
  return { collection, rate: records / ((performance.now() - started) / 1000) };
}

// ---------- the run ----------

interface Pair {
  name: string;
  records: number;
  plugin: () => Promise<number>;
  baseline: () => Promise<number>;
  baselineName: string;
  /** Not one of the four targets: shows where a gap comes from. */
  diagnostic?: boolean;
}

const pgEvents = events(RECORDS);
const pgRecords = batches(pgEvents.map((e) => ({ key: e.id, value: e, timestamp: 0 })));
const pgWork = batches(pgEvents);
const upsertEvents = events(MONGO_UPSERT_RECORDS);
const mongoUpsertRecords = batches(
  upsertEvents.map((e) => ({ key: e.id, value: e, timestamp: 0 })),
);
const mongoUpsertWork = batches(upsertEvents);
const insertRecords = batches(pgEvents.map((e) => ({ value: e, timestamp: 0 })));

async function checked(rate: number, table: string, expected: number): Promise<number> {
  const n = await countRows(table);
  if (n !== expected) throw new Error(`${table} holds ${n} rows, expected ${expected}`);
  return rate;
}
async function checkedMongo(rate: number, collection: string, expected: number): Promise<number> {
  const n = await mdb.collection(collection).countDocuments();
  if (n !== expected) throw new Error(`${collection} holds ${n} documents, expected ${expected}`);
  await mdb.collection(collection).drop();
  return rate;
}

const pairs: Pair[] = [
  {
    name: 'postgres append',
    records: RECORDS,
    baselineName: 'raw COPY loop',
    plugin: async () => {
      const { table, sink } = await pluginPostgresTable('append');
      return checked(await runSink(sink, pgRecords), table, RECORDS);
    },
    baseline: async () => {
      const table = await rawPostgresTable();
      return checked(await rawCopy(table, pgWork), table, RECORDS);
    },
  },
  {
    name: 'postgres upsert',
    records: RECORDS,
    baselineName: 'raw INSERT … ON CONFLICT',
    plugin: async () => {
      const { table, sink } = await pluginPostgresTable('upsert');
      return checked(await runSink(sink, pgRecords), table, RECORDS);
    },
    baseline: async () => {
      const table = await rawPostgresTable();
      return checked(await rawInsertOnConflict(table, pgWork), table, RECORDS);
    },
  },
  {
    name: 'mongo upsert',
    records: MONGO_UPSERT_RECORDS,
    baselineName: 'raw bulkWrite replaceOne upserts',
    plugin: async () => {
      const { collection, sink } = await pluginMongo('upsert');
      return checkedMongo(
        await runSink(sink, mongoUpsertRecords),
        collection,
        MONGO_UPSERT_RECORDS,
      );
    },
    baseline: async () => {
      const { collection, rate } = await rawMongo('upsert', mongoUpsertWork);
      return checkedMongo(rate, collection, MONGO_UPSERT_RECORDS);
    },
  },
  {
    name: 'mongo insert',
    records: RECORDS,
    baselineName: 'raw insertMany',
    plugin: async () => {
      const { collection, sink } = await pluginMongo('insert');
      return checkedMongo(await runSink(sink, insertRecords), collection, RECORDS);
    },
    baseline: async () => {
      const { collection, rate } = await rawMongo('insert', pgWork);
      return checkedMongo(rate, collection, RECORDS);
    },
  },
];

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

const run = benchRun('sinks');
const loadBefore = run.loadAverageBefore;
console.log(
  `bench:sinks — ${fmt(RECORDS)} records (mongo upsert ${fmt(MONGO_UPSERT_RECORDS)}), batches of ${BATCH}, ${ROUNDS} interleaved rounds; load average ${loadBefore.map((l) => l.toFixed(2)).join(' ')}`,
);
const results: {
  diagnostic: boolean;
  name: string;
  baselineName: string;
  records: number;
  plugin: number[];
  baseline: number[];
}[] = [];
try {
  for (const pair of pairs) {
    const result = {
      diagnostic: pair.diagnostic === true,
      name: pair.name,
      baselineName: pair.baselineName,
      records: pair.records,
      plugin: [] as number[],
      baseline: [] as number[],
    };
    results.push(result);
    for (let round = 0; round < ROUNDS; round++) {
      // ABBA order: neither side always runs on the warmer (or busier) half of a round.
      const order =
        round % 2 === 0 ? (['plugin', 'baseline'] as const) : (['baseline', 'plugin'] as const);
      for (const side of order) {
        const rate = await pair[side]();
        result[side].push(rate);
        console.log(
          `  ${pair.name.padEnd(16)} round ${round + 1} ${side.padEnd(8)} ${fmt(rate).padStart(8)} records/s`,
        );
      }
    }
  }
} finally {
  const { rows } = await pgPool.query<{ table_name: string }>(
    'SELECT table_name FROM information_schema.tables WHERE table_name LIKE $1',
    [`bench_sinks_${RUN}_%`],
  );
  for (const { table_name } of rows) await pgPool.query(`DROP TABLE ${quote(table_name)}`);
  await pgPool.end();
  await mdb.dropDatabase().catch(() => undefined);
  await mongo.close();
}

const loadAfter = loadavg();
const summary = results.map((r) => ({
  pair: r.name,
  diagnostic: r.diagnostic,
  baseline: r.baselineName,
  records: r.records,
  batch: BATCH,
  pluginRecordsPerSecond: r.plugin.map(Math.round),
  baselineRecordsPerSecond: r.baseline.map(Math.round),
  pluginMedian: Math.round(median(r.plugin)),
  baselineMedian: Math.round(median(r.baseline)),
  ratio: Number((median(r.plugin) / median(r.baseline)).toFixed(2)),
}));
const figuresFile = run.write(
  summary.map((r) => ({
    name: `${r.pair} / ${r.baseline}`,
    value: r.ratio,
    ...(r.diagnostic ? {} : { target: '>= 0.8', met: r.ratio >= 0.8 }),
  })),
  { rounds: ROUNDS, pairs: summary },
);

console.log('');
console.log('PAIR              RECORDS  PLUGIN rec/s  HAND-WRITTEN rec/s  BASELINE');
for (const s of summary)
  console.log(
    `${s.pair.padEnd(16)} ${fmt(s.records).padStart(8)} ${fmt(s.pluginMedian).padStart(13)} ${fmt(s.baselineMedian).padStart(19)}  ${s.baseline}`,
  );
console.log(
  `load average before ${loadBefore.map((l) => l.toFixed(2)).join(' ')}, after ${loadAfter.map((l) => l.toFixed(2)).join(' ')}; figures in ${figuresFile}`,
);
console.log('');
console.log('RATIOS (plugin / hand-written, median of each; target ≥ 0.80)');
const diagnostics = summary.filter((s) => s.diagnostic);
if (diagnostics.length > 0)
  console.log(
    `  (diagnostic: ${diagnostics.map((s) => `${s.pair} ${s.ratio.toFixed(2)}`).join(', ')})`,
  );
for (const s of summary.filter((x) => !x.diagnostic))
  console.log(
    `  ${s.pair.padEnd(16)} ${s.ratio.toFixed(2)}${s.ratio >= 0.8 ? '' : '  (below target)'}`,
  );
