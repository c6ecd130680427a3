// Child process of positions-crash.test.ts: what the runtime hook does for a sink with
// stored positions, with nothing else between — resume from sink.positions(), then write
// batches with the position after each. Prints {"event":"batch","offset":n} per batch.
import { PostgresOutputSink, postgresOutputConfigSchema } from './index.js';

const [url, table, positionsTable, totalText, batchText] = process.argv.slice(2) as [
  string,
  string,
  string,
  string,
  string,
];
const total = Number(totalText);
const batchSize = Number(batchText);
const sink = await PostgresOutputSink.open(
  postgresOutputConfigSchema.parse({
    url,
    table,
    mode: 'append',
    columns: { n: { from: 'n', type: 'integer' } },
    storePositions: true,
    positionsTable,
  }),
  { stageId: 'save', pipelineName: 'crash' },
);
const stored = await sink.positions();
let offset = Number(stored?.['input/0'] ?? 0);
console.log(JSON.stringify({ event: 'resumed', offset }));
while (offset < total) {
  const end = Math.min(offset + batchSize, total);
  const batch = Array.from({ length: end - offset }, (_, i) => ({
    value: { n: offset + i },
    timestamp: 0,
  }));
  await sink.write(batch, { 'input/0': String(end) });
  offset = end;
  console.log(JSON.stringify({ event: 'batch', offset }));
}
await sink.close();
console.log(JSON.stringify({ event: 'done' }));
