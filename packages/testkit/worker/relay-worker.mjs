// The crash-test worker: a consume→produce stage run straight on a buffer, in its own
// process so the conformance suite can SIGKILL it at any moment. Settings arrive as JSON
// in CODEFEEDR_TESTKIT_RELAY; progress leaves as JSON lines on stdout.
//
//   at-least-once: poll → send → commit positions
//   exactly-once:  poll → beginTransaction → send + sendOffsets → commit
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const settings = JSON.parse(process.env.CODEFEEDR_TESTKIT_RELAY ?? 'null');
if (settings === null) {
  process.stderr.write('relay-worker: CODEFEEDR_TESTKIT_RELAY is not set\n');
  process.exit(2);
}

const emit = (event) => process.stdout.write(`${JSON.stringify(event)}\n`);

// A file URL or path imports as is. A package name is tried from here first, then from the
// working directory (the plugin's own project, where its tests run).
async function load(specifier) {
  try {
    return await import(specifier);
  } catch (error) {
    if (error?.code !== 'ERR_MODULE_NOT_FOUND' || /^(file:|\.|\/)/.test(specifier)) throw error;
    const fromProject = createRequire(join(process.cwd(), 'package.json')).resolve(specifier);
    return import(pathToFileURL(fromProject).href);
  }
}

const loaded = await load(settings.module);
const factory = loaded[settings.export];
if (factory === undefined) {
  process.stderr.write(`relay-worker: ${settings.module} has no export "${settings.export}"\n`);
  process.exit(2);
}
const buffer =
  typeof factory === 'function'
    ? await factory(settings.config)
    : await factory.create(settings.config);

const consumer = await buffer.consumer({
  group: settings.group,
  topics: [settings.inputTopic],
  start: 'earliest',
});
const transactional = settings.mode === 'exactly-once';
const producer = await buffer.producer({ clientId: settings.clientId, transactional });

let stopping = false;
process.on('SIGTERM', () => (stopping = true));
emit({ event: 'ready', assignment: consumer.assignment() });

let relayed = 0;
while (!stopping) {
  const batch = await consumer.poll(settings.batchSize, 100);
  if (batch.length === 0) continue;
  const out = batch.map((m) => ({
    key: m.key,
    value: m.value,
    timestamp: m.timestamp,
    headers: m.headers,
  }));
  if (transactional) {
    const transaction = await producer.beginTransaction();
    await transaction.send(settings.outputTopic, out);
    await transaction.sendOffsets(settings.group, consumer.positions());
    await transaction.commit();
  } else {
    await producer.send(settings.outputTopic, out);
    await consumer.commit();
  }
  relayed += batch.length;
  emit({ event: 'progress', relayed });
  if (settings.pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, settings.pauseMs));
}
await consumer.close();
await producer.close();
await buffer.close();
emit({ event: 'stopped', relayed });
process.exit(0);
