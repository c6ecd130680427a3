import type { SASLOptions } from '@platformatic/kafka';
import { Admin } from '@platformatic/kafka';
import type { KafkaClientConfig } from './client-config.js';
import { KafkaUnavailableError, NETWORK_ERROR_REASONS } from './errors.js';
import { errorsIn } from './nested-errors.js';

/*
 * The connection settings of kafkaClientConfigSchema in @platformatic/kafka's terms, and its
 * errors in this plugin's. One place, so the buffer, its producers and consumers agree.
 */

const SASL_MECHANISMS = {
  plain: 'PLAIN',
  'scram-sha-256': 'SCRAM-SHA-256',
  'scram-sha-512': 'SCRAM-SHA-512',
} as const;

/** What every @platformatic/kafka client of this buffer is created with (clientId, brokers, TLS, SASL, timeouts). */
export interface PlatformaticBaseOptions {
  clientId: string;
  bootstrapBrokers: string[];
  connectTimeout: number;
  timeout: number;
  /** The client's own retries of a failed request (it refreshes metadata between them). */
  retries: number;
  retryDelay: number;
  tls?: { ca?: string; cert?: string; key?: string; rejectUnauthorized?: boolean };
  sasl?: SASLOptions;
}

export function platformaticOptionsOf(
  config: KafkaClientConfig,
  clientIdSuffix: string | undefined,
): PlatformaticBaseOptions {
  const options: PlatformaticBaseOptions = {
    clientId: clientIdSuffix ? `${config.clientId}-${clientIdSuffix}` : config.clientId,
    bootstrapBrokers: [...config.brokers],
    connectTimeout: config.connectionTimeoutMs,
    timeout: config.requestTimeoutMs,
    retries: 5,
    retryDelay: 250,
  };
  if (config.ssl !== undefined && config.ssl !== false)
    options.tls = config.ssl === true ? {} : { ...config.ssl };
  if (config.sasl !== undefined)
    options.sasl = {
      mechanism: SASL_MECHANISMS[config.sasl.mechanism],
      username: config.sasl.username,
      password: config.sasl.password,
    };
  return options;
}

/** Whether a @platformatic/kafka error means no broker could be reached. */
export function isPlatformaticConnectionError(error: unknown): boolean {
  return errorsIn(error).some(
    (e) =>
      e.code === 'PLT_KFK_NETWORK' ||
      e.code === 'PLT_KFK_TIMEOUT' ||
      (typeof e.code === 'string' && e.code in NETWORK_ERROR_REASONS),
  );
}

/** Whether a @platformatic/kafka error carries the Kafka protocol error `apiId` (e.g. REBALANCE_IN_PROGRESS). */
export function hasKafkaError(error: unknown, ...apiIds: string[]): boolean {
  return errorsIn(error).some((e) => typeof e.apiId === 'string' && apiIds.includes(e.apiId));
}

function connectionReason(error: unknown): string {
  const chain = errorsIn(error);
  for (const e of chain)
    if (typeof e.code === 'string' && e.code in NETWORK_ERROR_REASONS)
      return NETWORK_ERROR_REASONS[e.code]!;
  return String(chain[chain.length - 1]?.message ?? error);
}

/** `operation` on `owner`'s brokers; not reaching any becomes a KafkaUnavailableError (retryable). */
export async function unavailableAs<T>(
  operation: Promise<T>,
  owner: string,
  brokers: readonly string[],
): Promise<T> {
  try {
    return await operation;
  } catch (error) {
    if (!isPlatformaticConnectionError(error)) throw error;
    throw new KafkaUnavailableError(owner, brokers, connectionReason(error), error, {
      retryable: true,
    });
  }
}

/**
 * Asks the brokers for their metadata once, without retries: an unreachable cluster fails at
 * start with one KafkaUnavailableError naming `owner` and the addresses, as the kafkajs probe does.
 */
export async function probePlatformatic(config: KafkaClientConfig, owner: string): Promise<void> {
  const admin = new Admin({ ...platformaticOptionsOf(config, 'probe'), retries: 0 });
  try {
    await admin.metadata({ topics: [] });
  } catch (error) {
    throw new KafkaUnavailableError(owner, config.brokers, connectionReason(error), error, {
      retryable: false,
    });
  } finally {
    await admin.close().catch(() => undefined);
  }
}
