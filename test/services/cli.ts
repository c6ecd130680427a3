// npm run services:up|down|status  →  node test/services/cli.ts up|down|status [names...]
//   up [names...]    start (idempotent) the named services, all five by default, in parallel
//   down [names...]  stop them and verify their processes are gone (down with no names
//                    also stops the fault-test Kafka cluster if it runs)
//   status           each service's URL and state (up/down), and the fault-test cluster's
// Exit code 1 when any up/down fails, 2 on bad usage.
import { kafkaCluster } from './kafka.ts';
import { down, forEachService, servicesByName, type Outcome } from './index.ts';

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

function report(verb: string, outcomes: Outcome[]): boolean {
  for (const o of outcomes) {
    if (o.ok) console.log(`${o.name.padEnd(14)} ${verb} (${seconds(o.ms)})`);
    else
      console.error(`${o.name.padEnd(14)} FAILED (${seconds(o.ms)})\n${o.error?.message ?? ''}\n`);
  }
  return outcomes.every((o) => o.ok);
}

async function main(argv: string[]): Promise<number> {
  const [command, ...names] = argv;
  switch (command) {
    case 'up': {
      const list = servicesByName(names);
      const outcomes = await forEachService(list, (s) => s.start());
      const ok = report('up', outcomes);
      if (ok) for (const s of list) console.log(`  ${s.name.padEnd(12)} ${s.url}`);
      return ok ? 0 : 1;
    }
    case 'down': {
      try {
        return report('down', await down(names)) ? 0 : 1;
      } catch (error) {
        const outcomes = (error as Error & { outcomes?: Outcome[] }).outcomes;
        if (outcomes === undefined) throw error;
        report('down', outcomes);
        return 1;
      }
    }
    case 'status': {
      const list = servicesByName(names);
      const states = await Promise.all(list.map(async (s) => ({ s, state: await s.status() })));
      for (const { s, state } of states)
        console.log(`${s.name.padEnd(14)} ${state.padEnd(9)} ${s.url}`);
      if (names.length === 0) {
        // Not managed by up; shown so a cluster left running by a fault test is visible.
        const cluster = kafkaCluster();
        const { state } = await cluster.status();
        console.log(
          `${cluster.name.padEnd(14)} ${state.padEnd(9)} ${cluster.brokers.join(',')}  (fault tests only)`,
        );
      }
      return 0;
    }
    default:
      console.error(
        'usage: node test/services/cli.ts up|down|status [kafka|redis|postgres|mongodb|verdaccio ...]',
      );
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  },
);
