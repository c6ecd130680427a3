// The Kafka input runs the testkit's source conformance suite against the real broker: an
// unbounded source whose durable position is the consumer group's committed offsets. On each
// of the plugin's clients (the `client` key: kafkajs, @platformatic/kafka).
import { sourceConformanceSuite } from '@codefeedr/testkit';
import { KafkaBuffer, kafkaBufferConfigSchema } from './buffer.js';

const brokers = process.env.CODEFEEDR_KAFKA_BROKERS?.split(',');
if (!brokers)
  throw new Error(
    'CODEFEEDR_KAFKA_BROKERS is not set: run through vitest (its global setup starts Kafka) or `npm run services:up`.',
  );

const encoder = new TextEncoder();

for (const client of ['kafkajs', 'platformatic'] as const)
  sourceConformanceSuite({
    name: `kafka-input (${client})`,
    input: { module: new URL('./index.ts', import.meta.url), export: 'kafkaInput' },
    target: async (testName) => {
      const topic = `cf-kafka-input-${client}-${testName}`;
      // A client per target: kafkajs keeps refreshing metadata of every topic a client has seen,
      // and fails once an earlier test's topic is deleted.
      const buffer = new KafkaBuffer(
        kafkaBufferConfigSchema.parse({ brokers, logLevel: 'nothing' }),
      );
      await buffer.admin.ensureTopic({ name: topic, partitions: 3 });
      const producer = await buffer.producer({ clientId: `conformance-${client}-${testName}` });
      return {
        // A short session, so a SIGKILLed child's partitions move to its successor in seconds.
        config: {
          brokers,
          topic,
          group: `cf-kafka-input-${client}-${testName}`,
          client,
          start: 'earliest',
          sessionTimeoutMs: 6_000,
          logLevel: 'nothing',
        },
        // Keyed by the value's key: one partition per key keeps its order.
        append: (values) =>
          producer.send(
            topic,
            values.map((v) => ({
              key: v.key,
              value: encoder.encode(JSON.stringify(v)),
              timestamp: Date.now(),
            })),
          ),
        drop: async () => {
          await producer.close();
          await buffer.admin.deleteTopic(topic);
          await buffer.close();
        },
      };
    },
    bounded: false,
    idOf: (value) => (value as { id: string }).id,
  });
