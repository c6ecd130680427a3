export const PACKAGE_NAME = '@codefeedr/plugin-kafka';
export {
  KafkaBuffer,
  KAFKAJS_CAPABILITIES,
  kafkaBufferConfigSchema,
  type KafkaBufferConfig,
} from './buffer.js';
export {
  kafkaBuffer,
  createKafkaBuffer,
  connectKafkaBuffer,
  kafkaCapabilitiesOf,
  type AnyKafkaBuffer,
} from './kafka-buffer.js';
export {
  kafkaInput,
  KafkaInputSource,
  kafkaInputConfigSchema,
  type KafkaInputConfig,
} from './kafka-input.js';
export {
  kafkaOutput,
  KafkaOutputSink,
  kafkaOutputConfigSchema,
  type KafkaOutputConfig,
} from './kafka-output.js';
export { KafkaBufferConsumer } from './consumer.js';
export { KafkaBufferProducer } from './producer.js';
export { PlatformaticKafkaBuffer, PLATFORMATIC_CAPABILITIES } from './platformatic-buffer.js';
export { PlatformaticBufferConsumer } from './platformatic-consumer.js';
export { PlatformaticBufferProducer } from './platformatic-producer.js';
export {
  KafkaStateStore,
  KAFKA_STATE_SHARD_MAX_BYTES,
  type KafkaStateStoreContext,
} from './state-store.js';
export {
  kafkaClientConfigSchema,
  createKafkaClient,
  type KafkaClientConfig,
} from './client-config.js';
export { stringSerde } from './value-serde.js';
export * from './errors.js';
