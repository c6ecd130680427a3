import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FileCheckpointStore, type Checkpoint } from './checkpoint-store.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

const checkpoint = (id: number): Checkpoint => ({
  pipeline: 'github/events',
  unit: 'push-events',
  instance: '0',
  id,
  takenAt: 1700000000000 + id,
  positions: { 'events/0': '42', 'events/1': '7' },
  state: { 'push-events': { counts: { a: id } } },
  watermarks: { 'push-events': 1234 },
});

describe('FileCheckpointStore', () => {
  it('saves atomically, loads the latest, and keeps units apart', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cf-store-'));
    dirs.push(dir);
    const store = new FileCheckpointStore(dir);
    expect(await store.load('github/events', 'push-events', '0')).toBeUndefined();
    await store.save(checkpoint(1));
    await store.save(checkpoint(2));
    expect(await store.load('github/events', 'push-events', '0')).toEqual(checkpoint(2));
    expect(await store.load('github/events', 'push-events', '1')).toBeUndefined();
    // Layout: <dir>/<pipeline>/<unit>.<instance>.json, no temp file left behind.
    expect(await readdir(join(dir, 'github_events'))).toEqual(['push-events.0.json']);
  });

  it('a corrupt file is a clear error, not a silent fresh start', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cf-store-'));
    dirs.push(dir);
    const store = new FileCheckpointStore(dir);
    await store.save(checkpoint(1));
    await writeFile(store.fileFor('github/events', 'push-events', '0'), '{"id":');
    await expect(store.load('github/events', 'push-events', '0')).rejects.toMatchObject({
      code: 'CHECKPOINT_CORRUPT',
    });
  });
});
