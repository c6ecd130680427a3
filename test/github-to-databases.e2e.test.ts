// The prebuilt github-to-postgres and github-to-mongo pipelines under crashes: the shipped GH
// Archive replay (10,557 events) → the typed transforms → one table / collection per event
// type, in a child process that is SIGKILLed after its first checkpoint (twice) and started
// again on the same checkpoint directory until it finishes. Then every event type's rows and
// documents must be exactly the events of that type in the file — counted here, from the gzip
// file itself — none missing, none twice. Inline, and local with every edge through Kafka.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { gitHubEventTypeNames } from '@codefeedr/plugin-github';
import { WorkerProcess, type WorkerEvent } from '@codefeedr/testkit';
import { Kafka, logLevel } from 'kafkajs';
import { MongoClient } from 'mongodb';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';

const postgresUrl = process.env.CODEFEEDR_POSTGRES_URL;
const mongoUrl = process.env.CODEFEEDR_MONGODB_URL;
const brokers = process.env.CODEFEEDR_KAFKA_BROKERS?.split(',');
if (!postgresUrl || !mongoUrl || !brokers)
  throw new Error(
    'CODEFEEDR_POSTGRES_URL, CODEFEEDR_MONGODB_URL or CODEFEEDR_KAFKA_BROKERS is not set: run through vitest (its global setup starts the servers) or `npm run services:up`.',
  );

const FIXTURE = join(import.meta.dirname, 'fixtures', 'github', 'events.ndjson.gz');
const CHILD = join(import.meta.dirname, 'github-to-databases-child.ts');
const PIPELINES = ['github-to-postgres', 'github-to-mongo'];
const KILLS = 2;
const run = randomBytes(4).toString('hex');
const dir = join(import.meta.dirname, '..', '.tmp', `github-to-databases-${run}`);

/** Event ids per type, read straight from the gzip file: what the stores must hold. */
function expectedIdsByType(): Map<string, string[]> {
  const byType = new Map<string, Set<string>>();
  const lines = gunzipSync(readFileSync(FIXTURE)).toString('utf8').split('\n');
  for (const line of lines) {
    if (line.trim() === '') continue;
    const event = JSON.parse(line) as { id: string; type: string };
    let ids = byType.get(event.type);
    if (!ids) byType.set(event.type, (ids = new Set()));
    ids.add(event.id);
  }
  return new Map([...byType].map(([type, ids]) => [type, [...ids].sort()]));
}

/** The table/collection (without prefix) an event type belongs in: its own, or other_events. */
function storeOf(type: string): string {
  if (!(gitHubEventTypeNames as readonly string[]).includes(type)) return 'other_events';
  return `${type.replace(/([a-z])([A-Z])/g, '$1_$2').toLowerCase()}s`;
}

interface StoredEvent {
  store: string;
  id: string;
  type: string;
}

/** Stored ids per type, and every (store, type) pair seen: a type in the wrong store shows. */
function groupStored(rows: readonly StoredEvent[]) {
  const byType = new Map<string, string[]>();
  const misplaced: string[] = [];
  for (const row of rows) {
    if (row.store !== storeOf(row.type)) misplaced.push(`${row.type} ${row.id} in ${row.store}`);
    let ids = byType.get(row.type);
    if (!ids) byType.set(row.type, (ids = []));
    ids.push(row.id);
  }
  for (const ids of byType.values()) ids.sort();
  return { byType, misplaced };
}

async function postgresRows(prefix: string): Promise<StoredEvent[]> {
  const client = new pg.Client({ connectionString: postgresUrl });
  await client.connect();
  try {
    const tables = await postgresTables(client, prefix);
    const rows: StoredEvent[] = [];
    for (const table of tables) {
      const result = await client.query<{ id: string; type: string }>(
        `SELECT id, type FROM ${pg.escapeIdentifier(table)}`,
      );
      for (const row of result.rows) rows.push({ store: table.slice(prefix.length), ...row });
    }
    return rows;
  } finally {
    await client.end();
  }
}

async function postgresTables(client: pg.Client, prefix: string): Promise<string[]> {
  const result = await client.query<{ table_name: string }>(
    `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()`,
  );
  return result.rows.map((r) => r.table_name).filter((name) => name.startsWith(prefix));
}

async function mongoRows(database: string, prefix: string): Promise<StoredEvent[]> {
  const client = new MongoClient(mongoUrl!, { serverSelectionTimeoutMS: 5_000 });
  try {
    const db = client.db(database);
    const rows: StoredEvent[] = [];
    for (const { name } of await db.listCollections({}, { nameOnly: true }).toArray()) {
      if (!name.startsWith(prefix)) continue;
      const docs = db
        .collection<{ _id: string; id: string; type: string }>(name)
        .find({}, { projection: { _id: 1, id: 1, type: 1 } });
      for await (const doc of docs) {
        // The event id is the document's _id (upserts go by it); the event's own id field agrees.
        expect(doc._id).toBe(doc.id);
        rows.push({ store: name.slice(prefix.length), id: doc._id, type: doc.type });
      }
    }
    return rows;
  } finally {
    await client.close();
  }
}

/** Non-empty dead-letter files under `cwd` (the inline runs' default destination). */
function deadLetterFiles(cwd: string): string[] {
  const root = join(cwd, '.codefeedr', 'dead-letters');
  if (!existsSync(root)) return [];
  return readdirSync(root, { recursive: true, encoding: 'utf8' })
    .map((name) => join(root, name))
    .filter((file) => statSync(file).isFile() && statSync(file).size > 0);
}

/** Dead-letter topics of this test's runs that hold records, with their record counts. */
async function deadLetterTopics(): Promise<string[]> {
  const kafka = new Kafka({
    clientId: `dlq-${run}`,
    brokers: brokers!,
    logLevel: logLevel.NOTHING,
  });
  const admin = kafka.admin();
  await admin.connect();
  try {
    const held: string[] = [];
    for (const topic of await admin.listTopics()) {
      if (!topic.endsWith(`.${run}.dlq`)) continue;
      const records = (await admin.fetchTopicOffsets(topic)).reduce(
        (n, o) => n + Number(o.high) - Number(o.low),
        0,
      );
      if (records > 0) held.push(`${topic}: ${records}`);
    }
    return held;
  } finally {
    await admin.disconnect();
  }
}

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups) await cleanup().catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
  // Topics, dead-letter topics and consumer groups of local mode all carry the run id.
  const kafka = new Kafka({
    clientId: `cleanup-${run}`,
    brokers: brokers!,
    logLevel: logLevel.NOTHING,
  });
  const admin = kafka.admin();
  await admin.connect();
  try {
    const topics = (await admin.listTopics()).filter((t) => t.includes(run));
    if (topics.length > 0) await admin.deleteTopics({ topics });
    const groups = (await admin.listGroups()).groups
      .map((g) => g.groupId)
      .filter((g) => g.includes(run));
    if (groups.length > 0) await admin.deleteGroups(groups);
  } finally {
    await admin.disconnect();
  }
}, 120_000);

const isFinished = (pipeline: string) => (e: WorkerEvent) =>
  e.event === 'finished' && e.pipeline === pipeline;

describe('github-to-postgres and github-to-mongo, SIGKILLed and resumed', () => {
  const expected = expectedIdsByType();
  const total = [...expected.values()].reduce((n, ids) => n + ids.length, 0);

  it('reads the fixture independently: 10,557 events, every id unique', () => {
    expect(total).toBe(10_557);
    expect(expected.get('PushEvent')?.length).toBe(5_135);
  });

  for (const mode of ['inline', 'local'] as const) {
    it.concurrent(
      `${mode}: every event type's rows and documents are the file's events of that type, once each`,
      async () => {
        const prefix = `e2e_${run}_${mode[0]}_`;
        const database = `e2e_${run}_${mode}`;
        const checkpointDir = join(dir, mode, 'checkpoints');
        mkdirSync(checkpointDir, { recursive: true });
        cleanups.push(async () => {
          const client = new pg.Client({ connectionString: postgresUrl });
          await client.connect();
          for (const table of await postgresTables(client, prefix))
            await client.query(`DROP TABLE IF EXISTS ${pg.escapeIdentifier(table)}`);
          await client.end();
          const mongo = new MongoClient(mongoUrl!, { serverSelectionTimeoutMS: 5_000 });
          await mongo.db(database).dropDatabase();
          await mongo.close();
        });
        const start = (): WorkerProcess =>
          new WorkerProcess({
            script: CHILD,
            cwd: join(dir, mode), // inline dead-letter files land here, not in the repo
            env: {
              ...process.env,
              GITHUB_TO_DATABASES_CHILD: JSON.stringify({
                mode,
                run,
                paths: FIXTURE,
                postgresUrl,
                mongoUrl,
                database,
                prefix,
                checkpointDir,
                brokers,
                batchSize: 100,
              }),
            },
          });

        // Each run is killed once every pipeline still running has saved a checkpoint in it.
        const killedMidRun = new Map<string, number>(PIPELINES.map((p) => [p, 0]));
        for (let kill = 0; kill < KILLS; kill++) {
          const worker = start();
          try {
            const finished = new Set<string>();
            await worker.waitForEvent(
              (e) => {
                if (e.event === 'failed') return true;
                if (e.event === 'finished') finished.add(String(e.pipeline));
                const running = PIPELINES.filter((p) => !finished.has(p));
                return (
                  running.length === 0 ||
                  running.every((p) =>
                    worker.events.some((c) => c.event === 'checkpoint' && c.pipeline === p),
                  )
                );
              },
              15 * 60_000,
              `a checkpoint of every running pipeline (run ${kill + 1})`,
            );
            expect(worker.events.find((e) => e.event === 'failed')).toBeUndefined();
            // A random moment after it, so the kill lands anywhere in write/flush/checkpoint.
            await new Promise((resolve) => setTimeout(resolve, Math.floor(Math.random() * 200)));
            worker.kill('SIGKILL');
            expect((await worker.exited).signal).toBe('SIGKILL');
            for (const p of PIPELINES)
              if (!worker.events.some(isFinished(p))) killedMidRun.set(p, killedMidRun.get(p)! + 1);
          } finally {
            worker.kill('SIGKILL');
          }
        }
        // Both pipelines were killed mid-run at least once, after saving a checkpoint.
        for (const p of PIPELINES) expect(killedMidRun.get(p), p).toBeGreaterThan(0);

        const last = start();
        try {
          for (const p of PIPELINES) {
            const done = await last.waitForEvent(
              (e) => isFinished(p)(e) || e.event === 'failed',
              20 * 60_000,
              `pipeline ${p} to finish`,
            );
            expect(done, last.tail()).toMatchObject({ event: 'finished', status: 'finished' });
            // The fixture is all valid: a dead letter would be a record the stores miss.
            expect(done.deadLetters, p).toEqual([]);
          }
          expect((await last.exited).code, last.tail()).toBe(0);
        } finally {
          last.kill('SIGKILL');
        }
        // Nor in the killed runs: no dead letter anywhere (files inline, topics over Kafka).
        expect(
          mode === 'inline' ? deadLetterFiles(join(dir, mode)) : await deadLetterTopics(),
        ).toEqual([]);

        for (const [name, rows] of [
          ['postgres', await postgresRows(prefix)],
          ['mongodb', await mongoRows(database, prefix)],
        ] as const) {
          const stored = groupStored(rows);
          expect(stored.misplaced, `${name}: events in the wrong store`).toEqual([]);
          expect([...stored.byType.keys()].sort(), `${name}: event types`).toEqual(
            [...expected.keys()].sort(),
          );
          for (const [type, ids] of expected) {
            const got = stored.byType.get(type) ?? [];
            // Same count and same ids: none missing, none twice.
            expect(got.length, `${name} ${type}`).toBe(ids.length);
            expect(got, `${name} ${type}`).toEqual(ids);
          }
          expect(rows.length, `${name}: all events`).toBe(total);
        }
      },
      40 * 60_000,
    );
  }
});
