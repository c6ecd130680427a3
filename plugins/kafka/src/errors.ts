import { CodefeedrError } from '@codefeedr/core';

/** A Kafka buffer, input or output could not do what was asked; `code` says which case. */
export class KafkaBufferError extends CodefeedrError {}

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
      { cause },
    );
  }
}

export class KafkaCommitFailedError extends KafkaBufferError {
  constructor(group: string, cause: unknown) {
    super(
      'KAFKA_COMMIT_FAILED',
      `Kafka consumer group "${group}" could not commit its offsets: ${String((cause as Error)?.message ?? cause)}. The records will be delivered again after a restart (at-least-once); check the brokers if this repeats.`,
      { group },
      { cause },
    );
  }
}

export class KafkaTopicNotReadyError extends KafkaBufferError {
  constructor(topic: string) {
    super(
      'KAFKA_TOPIC_NOT_READY',
      `Kafka topic "${topic}" was created but its partitions have no leader yet. Check that enough brokers are up for its replication factor, then retry.`,
      { topic },
    );
  }
}

export class KafkaSendIncompleteError extends KafkaBufferError {
  constructor(topic: string, partitions: readonly number[]) {
    super(
      'KAFKA_SEND_INCOMPLETE',
      `Kafka did not acknowledge the records for topic "${topic}" partition(s) ${partitions.join(', ')} after repeated sends. Check that those partitions have a leader (enough brokers up), then retry; nothing was committed for them.`,
      { topic, partitions: [...partitions] },
    );
  }
}
