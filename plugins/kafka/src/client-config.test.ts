import { createServer, type AddressInfo } from 'node:net';
import { silentLogger, type StageContext } from '@codefeedr/core';
import { describe, expect, it } from 'vitest';
import { KafkaBuffer, kafkaBufferConfigSchema } from './buffer.js';
import { kafkaBuffer } from './kafka-buffer.js';
import { KafkaUnavailableError } from './errors.js';
import { kafkaInput } from './kafka-input.js';
import { kafkaOutput } from './kafka-output.js';

/** A loopback port nothing listens on: bound by a server that is closed again at once. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve, reject) =>
    server.close((error) => (error ? reject(error) : resolve())),
  );
  return port;
}

/** What `action` writes to stderr, and how it settled. */
async function capturingStderr(
  action: () => Promise<unknown>,
): Promise<{ written: string; error: unknown; ms: number }> {
  const written: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array) => {
    written.push(String(chunk));
    return true;
  }) as typeof process.stderr.write;
  const started = Date.now();
  let error: unknown;
  try {
    await action();
  } catch (e) {
    error = e;
  } finally {
    process.stderr.write = write;
  }
  return { written: written.join(''), error, ms: Date.now() - started };
}

const stageContext = (stageId: string): StageContext => ({
  stageId,
  pipelineName: 'unreachable',
  logger: silentLogger,
  signal: new AbortController().signal,
});

describe('Kafka client settings', () => {
  it('never lets SASL credentials reach a log line or an error message', async () => {
    const password = 'pw-never-print-7f3a9c';
    const brokers = process.env.CODEFEEDR_KAFKA_BROKERS?.split(',');
    if (!brokers)
      throw new Error(
        'CODEFEEDR_KAFKA_BROKERS is not set: run through vitest (its global setup starts Kafka).',
      );
    // The broker speaks PLAINTEXT without SASL: the handshake fails, with debug logging on.
    const buffer = new KafkaBuffer(
      kafkaBufferConfigSchema.parse({
        brokers,
        sasl: { mechanism: 'plain', username: 'alice', password },
        logLevel: 'debug',
        connectionTimeoutMs: 1_000,
        requestTimeoutMs: 2_000,
      }),
    );
    const { written, error: failure } = await capturingStderr(async () => {
      try {
        await buffer.producer({ clientId: 'sasl-probe' });
      } finally {
        await buffer.close().catch(() => undefined);
      }
    });
    expect(failure).toBeInstanceOf(Error);
    expect(written.length).toBeGreaterThan(0); // debug logging did run
    expect(written).not.toContain(password);
    expect(String((failure as Error).message)).not.toContain(password);
    expect(JSON.stringify(failure)).not.toContain(password);
  });

  it('an unreachable cluster fails at start: the buffer or stage and the address named, fast, no client log lines', async () => {
    const address = `127.0.0.1:${await closedPort()}`;
    // The default logLevel ("error") would print kafkajs's connection errors: none may appear.
    const cases: [string, () => Promise<unknown>][] = [
      ['the Kafka buffer', async () => kafkaBuffer.create({ brokers: [address] })],
      [
        'stage "events" (kafka-input)',
        async () =>
          kafkaInput
            .create('events', { brokers: [address], topic: 'never-read' })
            .createSource(stageContext('events')),
      ],
      [
        'stage "out" (kafka-output)',
        async () =>
          kafkaOutput
            .create('out', { brokers: [address], topic: 'never-written' })
            .createSink(stageContext('out')),
      ],
    ];
    for (const [owner, open] of cases) {
      const { written, error, ms } = await capturingStderr(open);
      expect(error, owner).toBeInstanceOf(KafkaUnavailableError);
      const failure = error as KafkaUnavailableError;
      expect(failure.code).toBe('KAFKA_UNAVAILABLE');
      expect(failure.message).toContain(`Could not connect to Kafka at ${address} for ${owner}`);
      expect(failure.message).toContain('nothing accepts connections there (ECONNREFUSED)');
      expect(failure.message).toContain(`the \`brokers\` setting of ${owner}`);
      // Already retried by the probe: the runtime fails the stage instead of retrying again.
      expect(failure.retryable).toBe(false);
      // (Clients of other tests may still log; none of this address's attempts may.)
      expect(written).not.toContain(address);
      expect(ms).toBeLessThan(3_000);
    }
  });

  it('the probe lets a reachable cluster through, and a buffer made with `new` still works', async () => {
    const brokers = process.env.CODEFEEDR_KAFKA_BROKERS?.split(',');
    if (!brokers) throw new Error('CODEFEEDR_KAFKA_BROKERS is not set: run through vitest.');
    const buffer = await kafkaBuffer.create({ brokers, logLevel: 'nothing' });
    try {
      const topic = `cf-probe-${process.pid}-${Date.now()}`;
      await buffer.admin.ensureTopic({ name: topic, partitions: 1 });
      expect(await buffer.admin.describeTopic(topic)).toEqual({ name: topic, partitions: 1 });
      await buffer.admin.deleteTopic(topic);
    } finally {
      await buffer.close();
    }
  });

  it('reports every config problem at once', () => {
    const result = kafkaBufferConfigSchema.safeParse({ brokers: [], partitions: 0, acks: 1 });
    expect(result.success).toBe(false);
    const paths = result.error!.issues.map((i) => i.path.join('.'));
    expect(paths).toEqual(expect.arrayContaining(['brokers', 'partitions']));
  });
});
