import { randomUUID } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as Sqlite from 'node:sqlite';
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { CodefeedrError } from './errors.js';
import {
  type KeyedMap,
  type KeyedMapCodec,
  memoryStateBackend,
  type OperatorStateBackend,
  type StateBackend,
} from './keyed-map.js';
import { RunOptionsError } from './run-errors.js';

/*
 * Keyed state larger than memory (Flink's RocksDB backend, Kafka Streams' cached RocksDB
 * stores): each operator instance keeps its maps in one SQLite file of its own, behind a
 * bounded write-back cache per map. node:sqlite is synchronous, so the batch-at-a-time hot
 * path stays free of promises. The file is scratch space, not durability: checkpoints stay the
 * same JSON as with the memory backend, so the file is opened without journal or fsync and
 * deleted on close (and at process exit).
 */

/** The disk backend cannot create, read or write its database. */
export class StateBackendError extends CodefeedrError {
  constructor(path: string, action: string, cause: unknown) {
    super(
      'STATE_BACKEND_FAILED',
      `The disk state backend could not ${action} ${path}: ${String((cause as Error)?.message ?? cause)}. Check the free space and permissions of the state directory (stateBackend dir, CLI --state-dir).`,
      { path, action },
      { cause },
    );
  }
}

export interface DiskStateBackendOptions {
  /** Where the database files go (one per operator instance); default the OS temp directory. */
  dir?: string;
  /**
   * Entries each map keeps in memory (default 10,000: entries that live long on the heap are promoted, and their eviction leaves old-generation garbage; bench:state measured 10,000 faster and smaller than 100,000 at 5,000,000 keys). Dirty entries are written in one
   * transaction when they leave the cache and before a snapshot reads the map.
   */
  cacheEntries?: number;
  /** SQLite page cache per database file, in MiB (default 32). */
  pageCacheMb?: number;
}

const DEFAULT_CACHE_ENTRIES = 10_000;
const DEFAULT_PAGE_CACHE_MB = 32;
/** Rows a snapshot reads per query: each page is its own statement, so writes in between are safe. */
const ITERATION_PAGE = 1_000;

const jsonCodec: KeyedMapCodec = { encode: (v) => JSON.stringify(v), decode: (s) => JSON.parse(s) };

/** Absent: a deleted key (dirty) or one the file does not hold (clean). */
const ABSENT = Symbol('absent');

interface Slot {
  value: unknown;
  dirty: boolean;
  /** Read or written since the eviction clock last passed it (second chance). */
  used: boolean;
}

/** Databases still open, removed at exit if their chain was never closed (a crashed run). */
const open = new Set<DiskStateDatabase>();
let exitHookInstalled = false;

function loadSqlite(path: string): typeof Sqlite {
  // Loaded on first use: the module is not in every Node 22 and the memory backend needs none.
  const sqlite = process.getBuiltinModule?.('node:sqlite') as typeof Sqlite | undefined;
  if (sqlite === undefined) {
    throw new StateBackendError(path, 'open', 'node:sqlite is not available (Node >= 22.13)');
  }
  return sqlite;
}

/** One operator instance's SQLite file: a table of (map, key) -> value. */
class DiskStateDatabase implements OperatorStateBackend {
  readonly persistent = true;
  private readonly db: DatabaseSync;
  private nextMap = 0;
  private closed = false;
  readonly select: StatementSync;
  readonly upsert: StatementSync;
  readonly remove: StatementSync;
  readonly removeAll: StatementSync;
  readonly count: StatementSync;
  readonly firstPage: StatementSync;
  readonly nextPage: StatementSync;

  constructor(
    readonly path: string,
    private readonly cacheEntries: number,
    pageCacheMb: number,
  ) {
    const { DatabaseSync } = loadSqlite(path);
    try {
      this.db = new DatabaseSync(path);
      // Scratch: a crash loses nothing a checkpoint holds, so no fsync, and the rollback
      // journal in memory (OFF is refused in node:sqlite's defensive mode).
      this.db.exec(
        `PRAGMA journal_mode = MEMORY; PRAGMA synchronous = OFF; PRAGMA locking_mode = EXCLUSIVE;
         PRAGMA temp_store = MEMORY; PRAGMA cache_size = -${Math.round(pageCacheMb * 1024)};
         CREATE TABLE kv (m INTEGER NOT NULL, k TEXT NOT NULL, v TEXT NOT NULL,
                          PRIMARY KEY (m, k)) WITHOUT ROWID;`,
      );
      this.select = this.db.prepare('SELECT v FROM kv WHERE m = ? AND k = ?');
      this.upsert = this.db.prepare('INSERT OR REPLACE INTO kv (m, k, v) VALUES (?, ?, ?)');
      this.remove = this.db.prepare('DELETE FROM kv WHERE m = ? AND k = ?');
      this.removeAll = this.db.prepare('DELETE FROM kv WHERE m = ?');
      this.count = this.db.prepare('SELECT count(*) AS n FROM kv WHERE m = ?');
      this.firstPage = this.db.prepare('SELECT k, v FROM kv WHERE m = ? ORDER BY k LIMIT ?');
      this.nextPage = this.db.prepare(
        'SELECT k, v FROM kv WHERE m = ? AND k > ? ORDER BY k LIMIT ?',
      );
    } catch (error) {
      this.closeQuietly();
      throw new StateBackendError(path, 'create', error);
    }
    open.add(this);
    if (!exitHookInstalled) {
      exitHookInstalled = true;
      process.once('exit', () => {
        for (const db of open) db.close();
      });
    }
  }

  map<V>(codec?: KeyedMapCodec<V>): KeyedMap<V> {
    return new DiskKeyedMap<V>(
      this,
      this.nextMap++,
      (codec ?? jsonCodec) as KeyedMapCodec<V>,
      this.cacheEntries,
    );
  }

  /** Runs `write` in one transaction (a batch of evictions or a flush). */
  transaction(write: () => void): void {
    this.checkOpen();
    this.db.exec('BEGIN');
    try {
      write();
      this.db.exec('COMMIT');
    } catch (error) {
      try {
        this.db.exec('ROLLBACK');
      } catch {
        // SQLite rolled back already (a full disk does).
      }
      throw new StateBackendError(this.path, 'write', error);
    }
  }

  checkOpen(): void {
    if (this.closed) throw new StateBackendError(this.path, 'use', 'the database was closed');
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    open.delete(this);
    this.closeQuietly();
    rmSync(this.path, { force: true });
    rmSync(`${this.path}-journal`, { force: true });
  }

  private closeQuietly(): void {
    try {
      this.db?.close();
    } catch {
      // Closed already, or never opened: the file is removed either way.
    }
  }
}

/**
 * One map on disk with a bounded write-back cache (Kafka Streams' caching store): reads go
 * to the cache, then the file; writes stay in the cache, dirty, until the entry is evicted
 * (second-chance clock over the Map's insertion order) or the map is iterated. Evictions
 * write a tenth of the cache at a time, in one transaction.
 */
class DiskKeyedMap<V> implements KeyedMap<V> {
  private readonly cache = new Map<string, Slot>();
  private dirtyCount = 0;

  constructor(
    private readonly db: DiskStateDatabase,
    private readonly id: number,
    private readonly codec: KeyedMapCodec<V>,
    private readonly capacity: number,
  ) {}

  private slot(key: string): Slot {
    let slot = this.cache.get(key);
    if (slot !== undefined) {
      slot.used = true;
      return slot;
    }
    this.db.checkOpen();
    let row: { v: string } | undefined;
    try {
      row = this.db.select.get(this.id, key) as { v: string } | undefined;
    } catch (error) {
      throw new StateBackendError(this.db.path, 'read', error);
    }
    // A key the file lacks is cached too: reduce asks get, then has, then sets it.
    slot = {
      value: row === undefined ? ABSENT : this.codec.decode(row.v),
      dirty: false,
      used: false,
    };
    this.insert(key, slot);
    return slot;
  }

  private insert(key: string, slot: Slot): void {
    // Before inserting, so the entry being worked on is never the one evicted.
    if (this.cache.size >= this.capacity) this.evict();
    this.cache.set(key, slot);
  }

  get(key: string): V | undefined {
    const value = this.slot(key).value;
    return value === ABSENT ? undefined : (value as V);
  }

  has(key: string): boolean {
    return this.slot(key).value !== ABSENT;
  }

  set(key: string, value: V): this {
    const slot = this.cache.get(key);
    if (slot === undefined) {
      this.insert(key, { value, dirty: true, used: false });
      this.dirtyCount++;
    } else {
      slot.value = value;
      slot.used = true;
      if (!slot.dirty) {
        slot.dirty = true;
        this.dirtyCount++;
      }
    }
    return this;
  }

  delete(key: string): boolean {
    const slot = this.slot(key);
    if (slot.value === ABSENT) return false;
    slot.value = ABSENT;
    if (!slot.dirty) {
      slot.dirty = true;
      this.dirtyCount++;
    }
    return true;
  }

  clear(): void {
    this.cache.clear();
    this.dirtyCount = 0;
    this.db.transaction(() => this.db.removeAll.run(this.id));
  }

  get size(): number {
    this.flush();
    return Number((this.db.count.get(this.id) as { n: number | bigint }).n);
  }

  /** Writes out the oldest tenth of the cache, giving recently used entries a second chance. */
  private evict(): void {
    const target = Math.max(1, Math.floor(this.capacity / 10));
    const written: [string, Slot][] = [];
    let evicted = 0;
    for (const [key, slot] of this.cache) {
      if (evicted >= target) break;
      if (slot.used) {
        // Moved behind the others; the iteration reaches it again with `used` cleared.
        slot.used = false;
        this.cache.delete(key);
        this.cache.set(key, slot);
        continue;
      }
      this.cache.delete(key);
      evicted++;
      if (slot.dirty) written.push([key, slot]);
    }
    if (written.length > 0) {
      this.write(written);
      this.dirtyCount -= written.length;
    }
  }

  private write(entries: readonly [string, Slot][]): void {
    const { upsert, remove } = this.db;
    const codec = this.codec;
    this.db.transaction(() => {
      for (const [key, slot] of entries) {
        if (slot.value === ABSENT) remove.run(this.id, key);
        else upsert.run(this.id, key, codec.encode(slot.value as V));
      }
    });
  }

  /** Writes every dirty entry; they stay cached, clean. */
  flush(): void {
    if (this.dirtyCount === 0) return;
    const dirty: [string, Slot][] = [];
    for (const entry of this.cache) if (entry[1].dirty) dirty.push(entry);
    this.write(dirty);
    for (const [, slot] of dirty) slot.dirty = false;
    this.dirtyCount = 0;
  }

  /**
   * Every entry in key order, read from the file a page at a time (the state is never in
   * memory at once); a cached entry is yielded as cached (the live object).
   */
  *[Symbol.iterator](): Iterator<[string, V]> {
    let after: string | undefined;
    for (;;) {
      // Dirty entries (also those set while iterating) go to the file before each page.
      this.flush();
      this.db.checkOpen();
      let rows: { k: string; v: string }[];
      try {
        rows = (
          after === undefined
            ? this.db.firstPage.all(this.id, ITERATION_PAGE)
            : this.db.nextPage.all(this.id, after, ITERATION_PAGE)
        ) as { k: string; v: string }[];
      } catch (error) {
        throw new StateBackendError(this.db.path, 'read', error);
      }
      for (const { k, v } of rows) {
        after = k;
        const slot = this.cache.get(k);
        if (slot === undefined) yield [k, this.codec.decode(v)];
        else if (slot.value !== ABSENT) yield [k, slot.value as V];
      }
      if (rows.length < ITERATION_PAGE) return;
    }
  }
}

/**
 * Keyed state larger than memory: each operator instance keeps its keyed state (reduce and
 * aggregate accumulators; Value, List, Map, Reducing and Aggregating state) in a SQLite file
 * of its own under `dir`, behind a bounded write-back cache, and deletes the file when its
 * stage closes. Checkpoints are the same JSON as with the memory backend.
 *
 * @example
 * ```ts
 * import { DiskStateBackend, PipelineBuilder, sequenceInput, printerOutput } from '@codefeedr/core';
 *
 * await new PipelineBuilder('counts')
 *   .append(sequenceInput.create('numbers', { from: 0, to: 1_000_000 }))
 *   .append(printerOutput.create('print', { format: 'json' }))
 *   .build()
 *   .run({ stateBackend: new DiskStateBackend({ dir: '/var/tmp/codefeedr-state' }) });
 * ```
 */
export class DiskStateBackend implements StateBackend {
  readonly kind = 'disk';
  readonly dir: string;
  private readonly cacheEntries: number;
  private readonly pageCacheMb: number;

  constructor(options: DiskStateBackendOptions = {}) {
    this.dir = options.dir ?? tmpdir();
    this.cacheEntries = options.cacheEntries ?? DEFAULT_CACHE_ENTRIES;
    this.pageCacheMb = options.pageCacheMb ?? DEFAULT_PAGE_CACHE_MB;
    if (!Number.isInteger(this.cacheEntries) || this.cacheEntries < 1) {
      throw new RangeError(`cacheEntries must be a positive integer, got ${this.cacheEntries}.`);
    }
  }

  open(stageId: string, operator: string): OperatorStateBackend {
    const safe = `${stageId}-${operator}`.replace(/[^A-Za-z0-9_.-]+/g, '_').slice(0, 80);
    const path = join(this.dir, `codefeedr-state-${safe}-${randomUUID().slice(0, 8)}.sqlite`);
    try {
      mkdirSync(this.dir, { recursive: true });
    } catch (error) {
      throw new StateBackendError(this.dir, 'create the directory', error);
    }
    return new DiskStateDatabase(path, this.cacheEntries, this.pageCacheMb);
  }
}

/** `RunOptions.stateBackend` / `StageOptions.stateBackend`. */
export type StateBackendChoice = 'memory' | 'disk' | StateBackend;

/** A run's or stage's stateBackend option as a backend; `disk` puts its files under `dir`. */
export function resolveStateBackend(
  choice: StateBackendChoice | undefined,
  dir: string | undefined,
): StateBackend {
  if (choice === undefined || choice === 'memory') return memoryStateBackend;
  if (choice === 'disk') return new DiskStateBackend(dir === undefined ? {} : { dir });
  if (typeof choice === 'object' && choice !== null && typeof choice.open === 'function')
    return choice;
  throw new RunOptionsError(
    `stateBackend "${String(choice)}" is not a state backend: use "memory", "disk" (with stateDir; CLI --state-backend disk --state-dir <dir>) or a StateBackend object.`,
    { stateBackend: String(choice) },
  );
}
