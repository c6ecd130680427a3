// The Kafka buffer on @platformatic/kafka (`client: platformatic`) runs the testkit's buffer
// conformance suite against the real broker, as the kafkajs one does (conformance.test.ts).
import { bufferConformanceSuite } from '@codefeedr/testkit';
import { kafkaBuffer, kafkaCapabilitiesOf } from './index.js';

const brokers = process.env.CODEFEEDR_KAFKA_BROKERS;
if (!brokers)
  throw new Error(
    'CODEFEEDR_KAFKA_BROKERS is not set: run through vitest (its global setup starts Kafka) or `npm run services:up`.',
  );

// Shorter sessions than the default so a SIGKILLed worker's partitions move in seconds.
const config = {
  brokers: brokers.split(','),
  client: 'platformatic' as const,
  sessionTimeoutMs: 6_000,
  logLevel: 'nothing' as const,
};

bufferConformanceSuite({
  name: 'kafka (platformatic)',
  create: () => kafkaBuffer.create(config),
  capabilities: kafkaCapabilitiesOf('platformatic'),
  worker: { module: new URL('./index.ts', import.meta.url), export: 'kafkaBuffer', config },
});
