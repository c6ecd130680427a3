import { CodefeedrError } from '@codefeedr/core';

/** The `url` setting is not a Redis URL. Names the problem, never the URL (it may hold a password). */
export class RedisUrlError extends CodefeedrError {
  constructor(problem: string) {
    super(
      'CONFIG_INVALID',
      `The Redis \`url\` setting is not a Redis URL: ${problem}. Write redis://[user:password@]host:port[/db] (put the password in \${ENV}).`,
      { problem },
    );
  }
}

/** Redis refused the user or password: a retry cannot fix it. */
export class RedisAuthError extends CodefeedrError {
  constructor(address: string, cause: unknown) {
    super(
      'REDIS_AUTH_FAILED',
      `Redis at ${address} refused the user or password of the \`url\` setting. Check them (a password with @, / or : may be written as it is; the part after the last @ is the host).`,
      { address },
      { cause },
    );
  }
}

/** Redis could not be reached or refused the connection. Names host:port only, never credentials. */
export class RedisUnavailableError extends CodefeedrError {
  constructor(address: string, cause: unknown) {
    super(
      'REDIS_UNAVAILABLE',
      `Could not connect to Redis at ${address}: ${scrubbedMessage(cause)}. Start Redis (npm run services:up in this repo) or fix the \`url\` setting.`,
      { address },
      { cause, retryable: true },
    );
  }
}

/** A producer was asked to write to a topic that does not exist and auto-creation is off. */
export class RedisTopicNotFoundError extends CodefeedrError {
  constructor(topic: string) {
    super(
      'TOPIC_NOT_FOUND',
      `Redis buffer topic "${topic}" does not exist. Create it with admin.ensureTopic({ name: "${topic}", partitions }) or set autoCreateTopics: true.`,
      { topic },
    );
  }
}

/** Redis rejected some entries of a batch. The batch may be partly written: resend it (at-least-once). */
export class RedisSendError extends CodefeedrError {
  constructor(topic: string, failed: number, total: number, cause: unknown) {
    super(
      'REDIS_SEND_FAILED',
      `Redis rejected ${failed} of ${total} records sent to topic "${topic}": ${scrubbedMessage(cause)}. Check the Redis server (memory limit, OOM command not allowed) and resend the batch.`,
      { topic, failed, total },
      { cause, retryable: true },
    );
  }
}

/** A topic name or spec the Redis buffer cannot represent. */
export class RedisTopicSpecError extends CodefeedrError {
  constructor(topic: string, problem: string) {
    super('TOPIC_INVALID', `Redis buffer topic "${topic}" is invalid: ${problem}.`, {
      topic,
      problem,
    });
  }
}

/** A transactional producer was asked for: Redis Streams offer no transactions across streams and groups. */
export class RedisTransactionsUnsupportedError extends CodefeedrError {
  constructor() {
    super(
      'TRANSACTIONS_UNSUPPORTED',
      'The Redis buffer has no transactions (capabilities.transactions is false): run the pipeline at-least-once with idempotent sinks, or use the Kafka buffer for exactly-once.',
    );
  }
}

/** An operation on a consumer or producer after close(). */
export class RedisClientClosedError extends CodefeedrError {
  constructor(what: string) {
    super(
      'CLIENT_CLOSED',
      `This Redis ${what} is closed. Create a new one from the buffer instead of reusing a closed one.`,
      { what },
    );
  }
}

/** A key-manager request that cannot be served as asked (not "no key available": that is `undefined`). */
export class KeyRequestError extends CodefeedrError {
  constructor(target: string, problem: string) {
    super('KEY_REQUEST_INVALID', `Key request for target "${target}" is invalid: ${problem}.`, {
      target,
      problem,
    });
  }
}

/** Messages from the Redis client, with anything that looks like URL credentials removed. */
export function scrubbedMessage(cause: unknown): string {
  const message = cause instanceof Error ? cause.message : String(cause);
  return message.replace(/\/\/[^/@\s]*@/g, '//***@');
}
