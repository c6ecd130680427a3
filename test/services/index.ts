// The five services `up` and global setup manage, and parallel up/down over them.
import type { Service } from './common.ts';
import { kafka, kafkaCluster } from './kafka.ts';
import { mongodb } from './mongodb.ts';
import { postgres } from './postgres.ts';
import { redis } from './redis.ts';
import { verdaccio } from './verdaccio.ts';

export type { Service, ServiceState } from './common.ts';
export { endpointEnv, endpoints, ports } from './endpoints.ts';

export const services: readonly Service[] = [kafka, redis, postgres, mongodb, verdaccio];

export const serviceNames = services.map((s) => s.name);

export function servicesByName(names: readonly string[]): Service[] {
  if (names.length === 0) return [...services];
  return names.map((name) => {
    const service = services.find((s) => s.name === name);
    if (service === undefined)
      throw new Error(`unknown service "${name}"; known: ${serviceNames.join(', ')}`);
    return service;
  });
}

export interface Outcome {
  name: string;
  ok: boolean;
  ms: number;
  error?: Error;
}

/**
 * Runs `action` for every service at once (they share nothing but apt, which
 * aptInstall serialises) and reports each outcome instead of stopping at the first
 * failure, so one broken server does not hide the state of the others.
 */
export async function forEachService(
  list: readonly Service[],
  action: (s: Service) => Promise<void>,
): Promise<Outcome[]> {
  return Promise.all(
    list.map(async (service) => {
      const started = performance.now();
      try {
        await action(service);
        return { name: service.name, ok: true, ms: performance.now() - started };
      } catch (error) {
        return {
          name: service.name,
          ok: false,
          ms: performance.now() - started,
          error: error as Error,
        };
      }
    }),
  );
}

/** Starts the named services (all five by default); throws one error naming every failure. */
export async function up(names: readonly string[] = []): Promise<Outcome[]> {
  const outcomes = await forEachService(servicesByName(names), (s) => s.start());
  throwIfFailed('up', outcomes);
  return outcomes;
}

/** Stops the named services (all five, plus a running fault-test cluster, by default). */
export async function down(names: readonly string[] = []): Promise<Outcome[]> {
  const outcomes = await forEachService(servicesByName(names), (s) => s.stop());
  if (names.length === 0) {
    const cluster = kafkaCluster();
    const started = performance.now();
    try {
      await cluster.stop();
      outcomes.push({ name: cluster.name, ok: true, ms: performance.now() - started });
    } catch (error) {
      outcomes.push({
        name: cluster.name,
        ok: false,
        ms: performance.now() - started,
        error: error as Error,
      });
    }
  }
  throwIfFailed('down', outcomes);
  return outcomes;
}

function throwIfFailed(verb: string, outcomes: Outcome[]): void {
  const failed = outcomes.filter((o) => !o.ok);
  if (failed.length === 0) return;
  const details = failed.map((o) => `## ${o.name}\n${o.error?.message ?? 'failed'}`).join('\n\n');
  const error = new Error(
    `services ${verb} failed for ${failed.map((o) => o.name).join(', ')}:\n\n${details}`,
  );
  (error as Error & { outcomes?: Outcome[] }).outcomes = outcomes;
  throw error;
}
