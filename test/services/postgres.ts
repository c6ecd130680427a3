// PostgreSQL from Debian's packages, as a throwaway cluster under .services/postgres.
// PostgreSQL refuses to run as root, so initdb and pg_ctl run as the `postgres` user and
// that user owns the whole directory. pg_ctl starts the postmaster in its own session,
// and data/postmaster.pid is the pid file.
import { chownSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import {
  START_MARKER,
  aptInstall,
  livePid,
  logTail,
  probeSafely,
  run,
  serviceDir,
  terminate,
  waitForExit,
  waitUntilReady,
  withLock,
  type Service,
  type ServiceState,
} from './common.ts';
import { HOST, endpoints, ports } from './endpoints.ts';

const NAME = 'postgres';
const dir = serviceDir(NAME);
const dataDir = join(dir, 'data');
const socketDir = join(dir, 'run'); // our own unix socket dir, not /var/run/postgresql
const logFile = join(dir, 'postgres.log');
const pidFile = join(dataDir, 'postmaster.pid');
// The postmaster's command line names our data dir (so it is ours: stop it) and our
// port (so it is the server the URL points at: status up).
const marker = `-D ${dataDir}`;
const settingsMarker = `-p ${ports.postgres}`;

/** Server binaries of the installed major version (15 on Debian 12), newest first. */
function binDir(): string | undefined {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return undefined;
  const versions = readdirSync(base)
    .filter((v) => existsSync(join(base, v, 'bin', 'pg_ctl')))
    .sort((a, b) => Number(b) - Number(a));
  const preferred = versions.includes('15') ? '15' : versions[0];
  return preferred === undefined ? undefined : join(base, preferred, 'bin');
}

function requireBinDir(): string {
  const bin = binDir();
  if (bin === undefined)
    throw new Error('PostgreSQL server binaries not found under /usr/lib/postgresql');
  return bin;
}

function asPostgres(tool: string, args: string[]): Promise<string> {
  // cwd must be readable by postgres, or the tools warn about /root.
  return run('runuser', ['-u', 'postgres', '--', join(requireBinDir(), tool), ...args], {
    cwd: dir,
  });
}

async function query(): Promise<boolean> {
  const client = new pg.Client({
    connectionString: endpoints.postgresUrl,
    connectionTimeoutMillis: 1_000,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const result = await client.query<{ ok: number }>('SELECT 1 AS ok');
    return result.rows[0]?.ok === 1;
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function status(): Promise<ServiceState> {
  if (livePid(pidFile, marker) === undefined || livePid(pidFile, settingsMarker) === undefined)
    return 'down';
  return (await probeSafely(query)) ? 'up' : 'down';
}

async function chownToPostgres(paths: string[]): Promise<void> {
  const uid = Number((await run('id', ['-u', 'postgres'])).trim());
  const gid = Number((await run('id', ['-g', 'postgres'])).trim());
  for (const path of paths) chownSync(path, uid, gid);
}

async function stopUnlocked(): Promise<void> {
  const pid = livePid(pidFile, marker);
  if (pid === undefined) return;
  // Fast shutdown: disconnect clients, checkpoint, exit.
  await asPostgres('pg_ctl', ['stop', '-D', dataDir, '-m', 'fast', '-w', '-t', '30']).catch(
    () => undefined,
  );
  if (!(await waitForExit(pid, 5_000))) await terminate(pid, 5_000);
}

async function install(): Promise<void> {
  await aptInstall(['postgresql'], () => binDir() !== undefined);
}

async function start(): Promise<void> {
  await withLock(NAME, async () => {
    if ((await status()) === 'up') return;
    await stopUnlocked();
    await install();
    mkdirSync(socketDir, { recursive: true });
    await chownToPostgres([dir, socketDir]);
    if (!existsSync(join(dataDir, 'PG_VERSION'))) {
      await asPostgres('initdb', [
        '-D',
        dataDir,
        '--auth=trust',
        '--username=postgres',
        '--encoding=UTF8',
        '--no-sync',
      ]);
    }
    // Settings for a disposable test server: loopback only, our port, no fsync.
    const options = [
      `-c listen_addresses=${HOST}`,
      `-p ${ports.postgres}`,
      `-k ${socketDir}`,
      '-c fsync=off',
      '-c synchronous_commit=off',
      '-c full_page_writes=off',
      '-c max_connections=200',
    ].join(' ');
    // pg_ctl (as postgres) appends to the log, so it must exist with postgres as owner.
    writeFileSync(logFile, `${START_MARKER} ${NAME} at ${new Date().toISOString()}\n`, {
      flag: 'a',
    });
    await chownToPostgres([logFile]);
    try {
      // -w makes pg_ctl fail when the postmaster dies; readiness is still our own query.
      await asPostgres('pg_ctl', [
        'start',
        '-D',
        dataDir,
        '-l',
        logFile,
        '-w',
        '-t',
        '60',
        '-o',
        options,
      ]);
      await waitUntilReady(NAME, () => probeSafely(query), {
        timeoutMs: 60_000,
        isDead: () => livePid(pidFile, marker) === undefined,
      });
    } catch (error) {
      await stopUnlocked().catch(() => undefined);
      throw new Error(
        `${NAME} failed to start: ${(error as Error).message}\n${logTail([logFile])}`,
        {
          cause: error,
        },
      );
    }
  });
}

export const postgres: Service = {
  name: NAME,
  url: endpoints.postgresUrl,
  install,
  start,
  stop: () => withLock(NAME, stopUnlocked),
  status,
};
