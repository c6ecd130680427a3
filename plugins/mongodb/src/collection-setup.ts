import { MongoServerError, type Document } from 'mongodb';
import type { MongoConnection } from './connection.js';
import { MongoSetupError, mongoOperationError } from './errors.js';

export interface IndexSpec {
  keys: Record<string, 1 | -1>;
  unique?: boolean;
  name?: string | undefined;
}

const NAMESPACE_EXISTS = 48;
const DUPLICATE_KEY = 11000;

function sameKeys(a: Document, b: Record<string, 1 | -1>): boolean {
  const left = Object.entries(a);
  const right = Object.entries(b);
  return (
    left.length === right.length &&
    left.every(([field, direction], i) => right[i]![0] === field && right[i]![1] === direction)
  );
}

/**
 * Creates the collection when it is missing (unless `create` is false) and every index that
 * no existing index already covers with the same keys. An existing index on the same keys
 * with other options (a non-unique one where a unique one is needed) is reported, not
 * dropped: dropping indexes is the operator's call.
 */
export async function ensureCollection(
  connection: MongoConnection,
  name: string,
  options: { create: boolean; indexes: readonly IndexSpec[] },
): Promise<void> {
  const where = `${connection.db.databaseName}.${name}`;
  const fail = (operation: string, error: unknown) =>
    mongoOperationError(operation, where, connection.hosts, connection.timeoutMs, error);
  let exists: boolean;
  try {
    exists =
      (await connection.db.listCollections({ name }, { nameOnly: true }).toArray()).length > 0;
  } catch (error) {
    throw fail('listCollections', error);
  }
  if (!exists) {
    if (!options.create)
      throw new MongoSetupError(
        where,
        'the collection does not exist and createCollection is false; create it, or set createCollection: true',
      );
    try {
      await connection.db.createCollection(name);
    } catch (error) {
      // Another worker created it first.
      if (!(error instanceof MongoServerError && error.code === NAMESPACE_EXISTS))
        throw fail('createCollection', error);
    }
  }
  if (options.indexes.length === 0) return;
  const collection = connection.db.collection(name);
  let existing: Document[];
  try {
    existing = await collection.listIndexes().toArray();
  } catch (error) {
    throw fail('listIndexes', error);
  }
  for (const spec of options.indexes) {
    const unique = spec.unique === true;
    const match = existing.find((index) => sameKeys(index.key as Document, spec.keys));
    if (match) {
      if ((match.unique === true) !== unique)
        throw new MongoSetupError(
          where,
          `index "${String(match.name)}" on ${JSON.stringify(spec.keys)} exists but is ${match.unique ? '' : 'not '}unique, and ${unique ? 'a unique' : 'a non-unique'} one is needed; drop it (db.${name}.dropIndex("${String(match.name)}")) or change the stage config`,
        );
      continue;
    }
    try {
      await collection.createIndex(spec.keys, spec.name ? { unique, name: spec.name } : { unique });
    } catch (error) {
      if (error instanceof MongoServerError && error.code === DUPLICATE_KEY)
        throw new MongoSetupError(
          where,
          `cannot create the unique index on ${JSON.stringify(spec.keys)}: the collection already holds documents sharing a value (${error.message}); remove the duplicates first`,
          error,
        );
      throw fail('createIndex', error);
    }
  }
}
