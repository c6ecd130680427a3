import { CodefeedrError } from '@codefeedr/core';

/** Socket error codes in words, for KafkaUnavailableError's reason (both clients report them). */
export const NETWORK_ERROR_REASONS: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'nothing accepts connections there (ECONNREFUSED)',
  ENOTFOUND: 'the host name does not resolve (ENOTFOUND)',
  EAI_AGAIN: 'the host name cannot be resolved right now (EAI_AGAIN)',
  ETIMEDOUT: 'the connection timed out (ETIMEDOUT)',
  EHOSTUNREACH: 'the host is unreachable (EHOSTUNREACH)',
  ENETUNREACH: 'the network is unreachable (ENETUNREACH)',
  ECONNRESET: 'the connection was reset (ECONNRESET)',
};

/** A Kafka buffer, input or output could not do what was asked; `code` says which case. */
export class KafkaBufferError extends CodefeedrError {}

/**
 * No Kafka broker of `brokers` could be reached for `owner` ("the Kafka buffer", `stage "x"
 * (kafka-input)`). Names the addresses and the setting they come from, and what to check.
 */
export class KafkaUnavailableError extends KafkaBufferError {
  /** @param reason - What the client said, in words, e.g. `nothing accepts connections there (ECONNREFUSED)`. */
  constructor(
    owner: string,
    brokers: readonly string[],
    reason: string,
    cause: unknown,
    options: { retryable: boolean },
  ) {
    super(
      'KAFKA_UNAVAILABLE',
      `Could not connect to Kafka at ${brokers.join(', ')} for ${owner}: ${reason}. Check that Kafka is running there (npm run services:up in this repo starts one) and that the \`brokers\` setting of ${owner} lists the right host:port.`,
      { owner, brokers: [...brokers] },
      { cause, retryable: options.retryable },
    );
  }
}

export class KafkaCompressionCodecMissingError extends KafkaBufferError {
  constructor(compression: string) {
    super(
      'KAFKA_COMPRESSION_CODEC_MISSING',
      `Kafka compression "${compression}" needs a codec that kafkajs does not ship. Register one before creating the buffer, e.g. \`CompressionCodecs[CompressionTypes.${compression === 'lz4' ? 'LZ4' : compression === 'zstd' ? 'ZSTD' : 'Snappy'}] = ...\` from a codec package (kafkajs-snappy, kafkajs-lz4, @kafkajs/zstd), or use "gzip" or "none".`,
      { compression },
    );
  }
}

export class KafkaNotTransactionalError extends KafkaBufferError {
  constructor(clientId: string) {
    super(
      'KAFKA_PRODUCER_NOT_TRANSACTIONAL',
      `Producer "${clientId}" was not created with { transactional: true }; create it that way to use beginTransaction().`,
      { clientId },
    );
  }
}

export class KafkaConsumerCrashedError extends KafkaBufferError {
  constructor(group: string, cause: unknown) {
    super(
      'KAFKA_CONSUMER_CRASHED',
      `Kafka consumer of group "${group}" stopped: ${String((cause as Error)?.message ?? cause)}. Check that the brokers are reachable, then restart the stage; it resumes from the last committed offsets.`,
      { group },
      { cause, retryable: true },
    );
  }
}

export class KafkaCommitFailedError extends KafkaBufferError {
  constructor(group: string, cause: unknown) {
    super(
      'KAFKA_COMMIT_FAILED',
      `Kafka consumer group "${group}" could not commit its offsets: ${String((cause as Error)?.message ?? cause)}. The records will be delivered again after a restart (at-least-once); check the brokers if this repeats.`,
      { group },
      { cause, retryable: true },
    );
  }
}

export class KafkaTopicNotReadyError extends KafkaBufferError {
  constructor(topic: string) {
    super(
      'KAFKA_TOPIC_NOT_READY',
      `Kafka topic "${topic}" was created but its partitions have no leader yet. Check that enough brokers are up for its replication factor, then retry.`,
      { topic },
      { retryable: true },
    );
  }
}

export class KafkaSendIncompleteError extends KafkaBufferError {
  constructor(topic: string, partitions: readonly number[]) {
    super(
      'KAFKA_SEND_INCOMPLETE',
      `Kafka did not acknowledge the records for topic "${topic}" partition(s) ${partitions.join(', ')} after repeated sends. Check that those partitions have a leader (enough brokers up), then retry; nothing was committed for them.`,
      { topic, partitions: [...partitions] },
      { retryable: true },
    );
  }
}

/** A record whose encoded value is larger than the output's `maxMessageBytes`: a dead letter. */
export class KafkaRecordTooLargeError extends KafkaBufferError {
  constructor(topic: string, bytes: number, limit: number) {
    super(
      'KAFKA_RECORD_TOO_LARGE',
      `A record of ${bytes} bytes is larger than the ${limit} bytes Kafka topic "${topic}" takes (maxMessageBytes); it went to the dead letters. Raise maxMessageBytes together with the broker's message.max.bytes, or make the record smaller.`,
      { topic, bytes, limit },
    );
  }
}

/**
 * A partition state shard larger than one Kafka record of its changelog topic may be (the
 * topic's max.message.bytes, which the store sets to this limit).
 */
export class KafkaStateShardTooLargeError extends KafkaBufferError {
  constructor(topic: string, partition: number, bytes: number, limit: number) {
    super(
      'KAFKA_STATE_SHARD_TOO_LARGE',
      `The state of partition ${partition} is ${bytes} bytes as JSON, more than the ${limit} bytes one record of Kafka state topic "${topic}" holds; nothing was saved and the stage stops. Keep less keyed state per partition (a state TTL, smaller values), spread the keys over more input partitions, or use another state store (stateStore: 'file' or the Redis buffer's).`,
      { topic, partition, bytes, limit },
    );
  }
}

/** Reading a partition's state shard did not reach the end of its changelog partition in time. */
export class KafkaStateLoadTimeoutError extends KafkaBufferError {
  constructor(topic: string, partition: number, timeoutMs: number) {
    super(
      'KAFKA_STATE_LOAD_TIMEOUT',
      `Reading the state of partition ${partition} from Kafka topic "${topic}" did not reach its end within ${timeoutMs} ms. Check that the topic's partitions have a leader (enough brokers up), then retry.`,
      { topic, partition, timeoutMs },
      { retryable: true },
    );
  }
}
