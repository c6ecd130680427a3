// Redis 7 from Debian's redis-server package, in the foreground under our own pid file,
// no persistence (tests only need streams and consumer groups while it runs).
import { existsSync } from 'node:fs';
import { Redis } from 'ioredis';
import { aptInstall, processService, serviceDir } from './common.ts';
import { HOST, endpoints, ports } from './endpoints.ts';

const REDIS_SERVER = '/usr/bin/redis-server';

async function ping(): Promise<boolean> {
  const client = new Redis({
    host: HOST,
    port: ports.redis,
    lazyConnect: true,
    connectTimeout: 1_000,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null, // one attempt per probe; the caller decides whether to retry
  });
  client.on('error', () => undefined); // reported through the rejected connect()
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } finally {
    client.disconnect();
  }
}

export const redis = processService({
  name: 'redis',
  url: endpoints.redisUrl,
  cmdlineMarker: 'redis-server',
  // Redis rewrites its process title to "redis-server 127.0.0.1:<port>".
  settingsMarker: `redis-server ${HOST}:${ports.redis}`,
  install: () => aptInstall(['redis-server'], () => existsSync(REDIS_SERVER)),
  command: () => ({
    file: REDIS_SERVER,
    args: [
      '--bind',
      HOST,
      '--port',
      String(ports.redis),
      '--daemonize',
      'no', // we own the process and its pid
      '--dir',
      serviceDir('redis'),
      '--save',
      '',
      '--appendonly',
      'no',
    ],
  }),
  probe: ping,
  startTimeoutMs: 30_000,
  stopGraceMs: 10_000,
});
