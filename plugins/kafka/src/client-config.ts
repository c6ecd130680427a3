import { z } from '@codefeedr/core';
import kafkajs from 'kafkajs';
import type { Kafka as KafkaClient, KafkaConfig, logCreator, SASLOptions } from 'kafkajs';

const { Kafka, logLevel } = kafkajs;

/** Connection settings shared by the Kafka buffer, input and output. Passed through to kafkajs. */
export const kafkaClientConfigSchema = z.object({
  brokers: z.array(z.string().min(1)).min(1).describe('Bootstrap brokers, host:port.'),
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
// copied out, so credentials can never reach a log line.
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
      `${JSON.stringify({ level: LEVEL_NAMES[level] ?? level, source: `kafkajs.${namespace}`, message: log.message, ...fields })}\n`,
    );
  };

/** A kafkajs client for the given settings; its logs go through the redacting log creator. */
export function createKafkaClient(config: KafkaClientConfig, clientIdSuffix?: string): KafkaClient {
  const kafkaConfig: KafkaConfig = {
    brokers: config.brokers,
    clientId: clientIdSuffix ? `${config.clientId}-${clientIdSuffix}` : config.clientId,
    connectionTimeout: config.connectionTimeoutMs,
    requestTimeout: config.requestTimeoutMs,
    logLevel: LEVELS[config.logLevel],
    logCreator: redactingLogCreator,
  };
  if (config.ssl !== undefined) kafkaConfig.ssl = config.ssl;
  if (config.sasl !== undefined) kafkaConfig.sasl = config.sasl as SASLOptions;
  return new Kafka(kafkaConfig);
}
