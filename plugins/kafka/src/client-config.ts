import { redactText, z } from '@codefeedr/core';
import kafkajs from 'kafkajs';
import { clampKafkajsThrottleTimer } from './kafkajs-request-queue.js';
import type {
  Kafka as KafkaClient,
  KafkaConfig,
  logCreator,
  RetryOptions,
  SASLOptions,
} from 'kafkajs';
import { KafkaUnavailableError, NETWORK_ERROR_REASONS } from './errors.js';
import { probePlatformatic } from './platformatic-client.js';

const { Kafka, logLevel } = kafkajs;

/** Connection settings shared by the Kafka buffer, input and output. Passed through to kafkajs. */
export const kafkaClientConfigSchema = z.object({
  brokers: z.array(z.string().min(1)).min(1).describe('Bootstrap brokers, host:port.'),
  client: z
    .enum(['kafkajs', 'platformatic'])
    .default('kafkajs')
    .describe(
      'The Node Kafka client underneath: kafkajs (every feature, exactly-once too) or @platformatic/kafka (faster hops and lower latency; at-least-once only).',
    ),
  clientId: z
    .string()
    .min(1)
    .default('codefeedr')
    .describe('Kafka client id (shows in broker logs and quotas).'),
  ssl: z
    .union([
      z.boolean(),
      z.object({
        ca: z.string().optional(),
        cert: z.string().optional(),
        key: z.string().optional(),
        rejectUnauthorized: z.boolean().optional(),
      }),
    ])
    .optional()
    .describe('TLS: true, or PEM strings.'),
  sasl: z
    .object({
      mechanism: z.enum(['plain', 'scram-sha-256', 'scram-sha-512']),
      username: z.string().min(1),
      password: z.string().min(1),
    })
    .optional()
    .describe('SASL credentials; never logged.'),
  connectionTimeoutMs: z.number().int().positive().default(3_000),
  requestTimeoutMs: z.number().int().positive().default(30_000),
  logLevel: z
    .enum(['nothing', 'error', 'warn', 'info', 'debug'])
    .default('error')
    .describe('kafkajs log level; logs go to stderr as JSON lines, credentials removed.'),
});

export type KafkaClientConfig = z.output<typeof kafkaClientConfigSchema>;

const LEVELS = {
  nothing: logLevel.NOTHING,
  error: logLevel.ERROR,
  warn: logLevel.WARN,
  info: logLevel.INFO,
  debug: logLevel.DEBUG,
} as const;

const LEVEL_NAMES: Record<number, string> = {
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
};

// kafkajs log entries carry request payloads and client config; only these fields are
// copied out, so credentials can never reach a log line. The line is then redacted like the
// runtime's own, so a broker address from ${ENV} reads the same here as in the final error.
const SAFE_LOG_FIELDS = [
  'broker',
  'topic',
  'partition',
  'groupId',
  'memberId',
  'error',
  'retryCount',
  'retryTime',
];

const redactingLogCreator: logCreator =
  () =>
  ({ namespace, level, log }) => {
    const fields: Record<string, unknown> = {};
    for (const name of SAFE_LOG_FIELDS) {
      if (log[name] !== undefined) fields[name] = log[name];
    }
    process.stderr.write(
      `${redactText(JSON.stringify({ level: LEVEL_NAMES[level] ?? level, source: `kafkajs.${namespace}`, message: log.message, ...fields }))}\n`,
    );
  };

function kafkaConfigOf(
  config: KafkaClientConfig,
  clientIdSuffix: string | undefined,
  retry?: RetryOptions,
): KafkaConfig {
  const kafkaConfig: KafkaConfig = {
    brokers: config.brokers,
    clientId: clientIdSuffix ? `${config.clientId}-${clientIdSuffix}` : config.clientId,
    connectionTimeout: config.connectionTimeoutMs,
    requestTimeout: config.requestTimeoutMs,
    logLevel: LEVELS[config.logLevel],
    logCreator: redactingLogCreator,
    ...(retry === undefined ? {} : { retry }),
  };
  if (config.ssl !== undefined) kafkaConfig.ssl = config.ssl;
  if (config.sasl !== undefined) kafkaConfig.sasl = config.sasl as SASLOptions;
  return kafkaConfig;
}

/** A kafkajs client for the given settings; its logs go through the redacting log creator. */
export function createKafkaClient(config: KafkaClientConfig, clientIdSuffix?: string): KafkaClient {
  clampKafkajsThrottleTimer();
  return new Kafka(kafkaConfigOf(config, clientIdSuffix));
}

// Node's socket error codes, in words a user acts on.

// kafkajs's names for "no broker could be talked to" (KafkaJSNumberOfRetriesExceeded wraps them).
const CONNECTION_ERRORS = new Set([
  'KafkaJSConnectionError',
  'KafkaJSConnectionClosedError',
  'KafkaJSRequestTimeoutError',
  'KafkaJSBrokerNotFound',
]);

interface ErrorLike {
  name?: unknown;
  code?: unknown;
  type?: unknown;
  message?: unknown;
  cause?: unknown;
  originalError?: unknown;
  errors?: unknown;
}

/** kafkajs errors nest through `cause`/`originalError`; the innermost one says what happened. */
function errorChain(error: unknown): ErrorLike[] {
  const chain: ErrorLike[] = [];
  let current: unknown = error;
  while (typeof current === 'object' && current !== null && chain.length < 8) {
    const e = current as ErrorLike;
    chain.push(e);
    current = e.cause ?? e.originalError;
  }
  return chain;
}

/** Whether a kafkajs error means no broker could be reached (as opposed to one refusing a request). */
export function isKafkaConnectionError(error: unknown): boolean {
  return errorChain(error).some(
    (e) =>
      (typeof e.name === 'string' && CONNECTION_ERRORS.has(e.name)) ||
      (typeof e.code === 'string' && e.code in NETWORK_ERROR_REASONS),
  );
}

// What the broker answers a transactional producer whose transactional id a newer producer
// initialised (Kafka's zombie fencing); kafkajs 2.2.4 names code 90 only by its number.
const FENCED_TYPES = new Set([
  'INVALID_PRODUCER_EPOCH',
  'PRODUCER_FENCED',
  'TRANSACTION_COORDINATOR_FENCED',
]);
const FENCED_CODES = new Set([47, 90]);

/** Whether a kafkajs error means a newer producer with the same transactional id fenced this one. */
export function isKafkaProducerFencedError(error: unknown): boolean {
  return errorChain(error).some(
    (e) =>
      (typeof e.type === 'string' && FENCED_TYPES.has(e.type)) ||
      (typeof e.code === 'number' && FENCED_CODES.has(e.code)) ||
      (Array.isArray(e.errors) && e.errors.some(isKafkaProducerFencedError)),
  );
}

/**
 * Awaits a kafkajs connect; one that found no broker becomes a KafkaUnavailableError naming
 * `owner` and the configured brokers (retryable: the runtime may try again).
 */
export async function connectOrUnavailable(
  connect: Promise<void>,
  owner: string,
  brokers: readonly string[],
): Promise<void> {
  try {
    await connect;
  } catch (error) {
    if (!isKafkaConnectionError(error)) throw error;
    throw new KafkaUnavailableError(owner, brokers, connectionReason(error), error, {
      retryable: true,
    });
  }
}

/** The innermost error's socket code in words, else its message. */
export function connectionReason(error: unknown): string {
  const chain = errorChain(error);
  for (const e of [...chain].reverse()) {
    if (typeof e.code === 'string' && e.code in NETWORK_ERROR_REASONS)
      return NETWORK_ERROR_REASONS[e.code]!;
  }
  const last = chain[chain.length - 1];
  return String(last?.message ?? error);
}

// Three quick attempts: a refused or unresolvable address fails in well under a second, a
// silent one after three connectionTimeoutMs, instead of kafkajs's default six attempts with
// backoff (10-16 s) and a log line per attempt.
const PROBE_RETRY: RetryOptions = { retries: 2, initialRetryTime: 100, maxRetryTime: 500 };

/**
 * Connects to the brokers once and disconnects, with the probe's short retries and no client
 * logs: an unreachable cluster fails at start with one KafkaUnavailableError naming `owner`
 * and the addresses, before any stage has run.
 */
export async function probeKafka(config: KafkaClientConfig, owner: string): Promise<void> {
  if (config.client === 'platformatic') return probePlatformatic(config, owner);
  clampKafkajsThrottleTimer();
  const client = new Kafka({
    ...kafkaConfigOf(config, 'probe', PROBE_RETRY),
    logLevel: logLevel.NOTHING,
  });
  const admin = client.admin();
  try {
    await admin.connect();
  } catch (error) {
    // Already retried (PROBE_RETRY): the runtime must not try again, it would only be slower.
    throw new KafkaUnavailableError(owner, config.brokers, connectionReason(error), error, {
      retryable: false,
    });
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}
