export const PACKAGE_NAME = '@codefeedr/plugin-redis';
export {
  RedisBuffer,
  RedisStreamsProducer,
  redisBuffer,
  redisBufferConfigSchema,
  type RedisBufferConfig,
  type RedisBufferOptions,
} from './buffer.js';
export { RedisStreamsConsumer, MALFORMED_ENTRY_HEADER } from './consumer.js';
export { RedisStateStore } from './state-store.js';
export { rangeAssignment } from './group-membership.js';
export {
  RedisKeyManager,
  redisKeyManager,
  redisKeyManagerConfigSchema,
  keyIdFor,
  type RedisKeyManagerConfig,
  type RedisKeyManagerOptions,
} from './key-manager.js';
export {
  RedisUrlError,
  RedisAuthError,
  RedisUnavailableError,
  RedisTopicNotFoundError,
  RedisSendError,
  RedisTopicSpecError,
  RedisClientClosedError,
  RedisTransactionsUnsupportedError,
  KeyRequestError,
} from './errors.js';
