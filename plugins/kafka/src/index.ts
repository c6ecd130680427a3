export const PACKAGE_NAME = '@codefeedr/plugin-kafka';
export {
  kafkaBuffer,
  KafkaBuffer,
  kafkaBufferConfigSchema,
  type KafkaBufferConfig,
} from './buffer.js';
export { KafkaBufferConsumer } from './consumer.js';
export { KafkaBufferProducer } from './producer.js';
export {
  kafkaClientConfigSchema,
  createKafkaClient,
  type KafkaClientConfig,
} from './client-config.js';
export * from './errors.js';
