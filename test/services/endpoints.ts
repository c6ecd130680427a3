// Ports and connection strings of the harness's servers. Every port can be moved with an
// environment variable, so two checkouts (or a port already in use) do not collide.

export const HOST = '127.0.0.1';

function portFromEnv(variable: string, fallback: number): number {
  const raw = process.env[variable];
  if (raw === undefined || raw === '') return fallback;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new Error(`${variable}=${raw} is not a TCP port`);
  }
  return port;
}

export const ports = {
  kafka: portFromEnv('CODEFEEDR_KAFKA_PORT', 9092),
  /** KRaft controller listener of the single-node broker: always the broker port + 1. */
  kafkaController: portFromEnv('CODEFEEDR_KAFKA_PORT', 9092) + 1,
  /** First port of the on-demand three-broker cluster (brokers at +0, +2, +4; controllers +1, +3, +5). */
  kafkaCluster: portFromEnv('CODEFEEDR_KAFKA_CLUSTER_PORT', 19092),
  redis: portFromEnv('CODEFEEDR_REDIS_PORT', 6390),
  postgres: portFromEnv('CODEFEEDR_POSTGRES_PORT', 5433),
  mongodb: portFromEnv('CODEFEEDR_MONGODB_PORT', 27018),
  verdaccio: portFromEnv('CODEFEEDR_VERDACCIO_PORT', 4873),
} as const;

export const endpoints = {
  /** kafkajs `brokers` entry: host:port. */
  kafkaBrokers: `${HOST}:${ports.kafka}`,
  redisUrl: `redis://${HOST}:${ports.redis}`,
  /** Trust authentication: user postgres, no password. */
  postgresUrl: `postgres://postgres@${HOST}:${ports.postgres}/postgres`,
  mongodbUrl: `mongodb://${HOST}:${ports.mongodb}/`,
  /** With the trailing slash, as npm writes registry URLs. */
  npmRegistry: `http://${HOST}:${ports.verdaccio}/`,
} as const;

/** The variables global setup puts in process.env for every test worker. */
export function endpointEnv(): Record<string, string> {
  return {
    CODEFEEDR_KAFKA_BROKERS: endpoints.kafkaBrokers,
    CODEFEEDR_REDIS_URL: endpoints.redisUrl,
    CODEFEEDR_POSTGRES_URL: endpoints.postgresUrl,
    CODEFEEDR_MONGODB_URL: endpoints.mongodbUrl,
    CODEFEEDR_NPM_REGISTRY: endpoints.npmRegistry,
  };
}
