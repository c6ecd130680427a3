// Test-only helpers shared by this package's test files (not exported from index.ts).
import { randomBytes } from 'node:crypto';
import { MongoClient } from 'mongodb';

/** The harness's MongoDB-protocol server (CODEFEEDR_MONGODB_URL); fails loudly when unset. */
export function mongoUrl(): string {
  const url = process.env.CODEFEEDR_MONGODB_URL;
  if (!url)
    throw new Error(
      'CODEFEEDR_MONGODB_URL is not set: run the tests through the root vitest config (its globalSetup starts FerretDB) or `npm run services:up`.',
    );
  return url;
}

/** A database per test file, so files running in parallel never see each other's data. */
export function uniqueDatabase(label: string): string {
  return `cftest_${label}_${randomBytes(4).toString('hex')}`;
}

export async function rawMongo(): Promise<MongoClient> {
  return new MongoClient(mongoUrl(), { serverSelectionTimeoutMS: 5_000 }).connect();
}

/** What `error` says, and what it carries, as one string (to look for leaked secrets). */
export function everythingIn(error: unknown): string {
  const e = error as Error & { details?: unknown; cause?: unknown };
  return [e.message, e.stack, JSON.stringify(e.details ?? {})].join('\n');
}
