// The Kafka buffer runs the testkit's buffer conformance suite against the real broker.
import { bufferConformanceSuite } from '@codefeedr/testkit';
import { kafkaBuffer } from './index.js';

const brokers = process.env.CODEFEEDR_KAFKA_BROKERS;
if (!brokers)
  throw new Error(
    'CODEFEEDR_KAFKA_BROKERS is not set: run through vitest (its global setup starts Kafka) or `npm run services:up`.',
  );

// Shorter sessions than the default so a SIGKILLed worker's partitions move in seconds.
const config = {
  brokers: brokers.split(','),
  sessionTimeoutMs: 6_000,
  logLevel: 'nothing' as const,
};

bufferConformanceSuite({
  name: 'kafka',
  create: () => kafkaBuffer.create(config),
  capabilities: kafkaBuffer.capabilities,
  worker: { module: new URL('./index.ts', import.meta.url), export: 'kafkaBuffer', config },
});
