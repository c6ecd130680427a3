import { describe, expect, it } from 'vitest';
import { KafkaBuffer, kafkaBufferConfigSchema } from './buffer.js';

describe('Kafka client settings', () => {
  it('never lets SASL credentials reach a log line or an error message', async () => {
    const password = 'pw-never-print-7f3a9c';
    const brokers = process.env.CODEFEEDR_KAFKA_BROKERS?.split(',');
    if (!brokers)
      throw new Error(
        'CODEFEEDR_KAFKA_BROKERS is not set: run through vitest (its global setup starts Kafka).',
      );
    const written: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    }) as typeof process.stderr.write;
    let failure: unknown;
    try {
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
      await buffer
        .producer({ clientId: 'sasl-probe' })
        .catch((error: unknown) => (failure = error));
      await buffer.close().catch(() => undefined);
    } finally {
      process.stderr.write = write;
    }
    expect(failure).toBeInstanceOf(Error);
    expect(written.length).toBeGreaterThan(0); // debug logging did run
    expect(written.join('')).not.toContain(password);
    expect(String((failure as Error).message)).not.toContain(password);
    expect(JSON.stringify(failure)).not.toContain(password);
  });

  it('reports every config problem at once', () => {
    const result = kafkaBufferConfigSchema.safeParse({ brokers: [], partitions: 0, acks: 1 });
    expect(result.success).toBe(false);
    const paths = result.error!.issues.map((i) => i.path.join('.'));
    expect(paths).toEqual(expect.arrayContaining(['brokers', 'partitions']));
  });
});
