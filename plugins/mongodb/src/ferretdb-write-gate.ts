/**
 * One bulkWrite at a time per FerretDB database, across every sink of this process.
 *
 * FerretDB 1.24's SQLite backend keeps the query of each matched update open until its whole
 * update command ends, and gives each database at most 100 SQLite connections. Two sinks
 * upserting already-stored documents into one database (a rerun of github-to-mongo: one store
 * per event type) can hold 100 between them; every command then waits for a connection for
 * ever, and the registry lock it holds stops the whole server. One command of at most
 * FERRETDB_MAX_WRITES writes per database at a time stays well under the limit. MongoDB has no
 * such limit, so the gate is only used against FerretDB. Sinks in other processes writing to the
 * same database are not covered (README: "FerretDB").
 */
const tails = new Map<string, Promise<unknown>>();

export function throughFerretDbWriteGate<T>(database: string, fn: () => Promise<T>): Promise<T> {
  const previous = tails.get(database) ?? Promise.resolve();
  const next = previous.then(fn, fn);
  const tail = next.catch(() => undefined);
  tails.set(database, tail);
  // Forget an idle database, so the map does not grow with every database ever written.
  void tail.then(() => {
    if (tails.get(database) === tail) tails.delete(database);
  });
  return next;
}
