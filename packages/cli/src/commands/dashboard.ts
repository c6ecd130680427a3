import type { Command } from 'commander';
import type { CommandContext } from '../program.js';
import { UsageError } from '../cli-errors.js';
import { metricsBaseUrl } from '../dashboard-scrape.js';
import { startDashboardServer } from '../dashboard-server.js';

/** `--dashboard [port]` / `--port <port>`: a port number; true (the flag alone) is any free port. */
export function dashboardPort(option: string, value: string | true): number {
  if (value === true) return 0;
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65_535)
    throw new UsageError(`${option} ${value} is not a port number`);
  return port;
}

/** The base URLs of `--scrape`: each an http(s) URL of a `codefeedr run --metrics-port` endpoint. */
export function scrapeTargets(values: readonly string[]): string[] {
  return values.map((value) => {
    const url = metricsBaseUrl(value);
    if (url === undefined)
      throw new UsageError(
        `--scrape ${value} is not the http(s) URL of a metrics endpoint (e.g. http://127.0.0.1:9464, as \`codefeedr run --metrics-port\` prints it)`,
      );
    return url;
  });
}

export function registerDashboardCommand(program: Command, context: CommandContext): void {
  program
    .command('dashboard')
    .description(
      'Serve a live dashboard on 127.0.0.1 for a pipeline running as `codefeedr run --stage` workers: the DAG with per-stage figures, from their metrics endpoints (--metrics-port). Runs until Ctrl-C.',
    )
    .requiredOption(
      '--scrape <url...>',
      'metrics endpoints of the workers (http://host:port, as `run --metrics-port` prints them)',
    )
    .option('-p, --port <port>', 'serve the dashboard on this port (default: any free port)')
    .action(async (options: { scrape: string[]; port?: string }, command: Command) => {
      const out = context.output(command);
      try {
        const targets = scrapeTargets(options.scrape);
        const port = options.port === undefined ? 0 : dashboardPort('--port', options.port);
        const dashboard = await startDashboardServer({ targets, port });
        out.note(`dashboard at ${dashboard.url}/`);
        await new Promise<void>((resolve) => {
          process.once('SIGINT', resolve);
          process.once('SIGTERM', resolve);
        });
        await dashboard.close();
        out.data({ ok: true, url: dashboard.url, scraped: targets });
      } catch (error) {
        context.exitCode = out.failure(error);
      }
    });
}
