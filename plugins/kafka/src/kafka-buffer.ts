import type { BufferCapabilities } from '@codefeedr/core';
import { defineBuffer } from '@codefeedr/core';
import {
  KafkaBuffer,
  KAFKAJS_CAPABILITIES,
  type KafkaBufferConfig,
  kafkaBufferConfigSchema,
} from './buffer.js';
import { PLATFORMATIC_CAPABILITIES, PlatformaticKafkaBuffer } from './platformatic-buffer.js';

/*
 * The `kafka` buffer component and the choice of client behind it (the `client` key): the
 * buffer on kafkajs (buffer.ts) or on @platformatic/kafka (platformatic-buffer.ts).
 */

/** The Kafka buffer on either client (`client` in the config). */
export type AnyKafkaBuffer = KafkaBuffer | PlatformaticKafkaBuffer;

/** The buffer on the client the config names, not connected yet (kafka-input and kafka-output use it). */
export function createKafkaBuffer(config: KafkaBufferConfig, owner?: string): AnyKafkaBuffer {
  return config.client === 'platformatic'
    ? new PlatformaticKafkaBuffer(config, owner)
    : new KafkaBuffer(config, owner);
}

/** The buffer on the client the config names, once its brokers answered a probe. */
export function connectKafkaBuffer(
  config: KafkaBufferConfig,
  owner?: string,
): Promise<AnyKafkaBuffer> {
  return config.client === 'platformatic'
    ? PlatformaticKafkaBuffer.connect(config, owner)
    : KafkaBuffer.connect(config, owner);
}

/** What a buffer on `client` can do: transactions only on kafkajs for now. */
export function kafkaCapabilitiesOf(client: KafkaBufferConfig['client']): BufferCapabilities {
  return client === 'platformatic' ? PLATFORMATIC_CAPABILITIES : KAFKAJS_CAPABILITIES;
}

/**
 * The Kafka buffer component.
 *
 * @example
 * const buffer = await kafkaBuffer.create({ brokers: ['127.0.0.1:9092'] });
 */
export const kafkaBuffer = Object.assign(
  defineBuffer({
    name: 'kafka',
    description:
      'Apache Kafka topics between stages: partitioned by key, consumer groups, transactions.',
    configSchema: kafkaBufferConfigSchema,
    capabilities: KAFKAJS_CAPABILITIES,
    create: (config) => connectKafkaBuffer(config),
  }),
  // Listed in the plugin manifest: exactly-once needs a transform stage with guarantee `exactly-once`.
  { guarantees: ['at-least-once', 'exactly-once'] as const },
);
