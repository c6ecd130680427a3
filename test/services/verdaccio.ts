// Verdaccio (the test workspace's dependency), an npm registry for publish/install flows.
// Offline on purpose: no uplinks, so every package in it was published by a test.
// It runs on Node 24 (node_modules/.bin/node); verdaccio 6.10 needs Node >= 22.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { ROOT, processService, serviceDir } from './common.ts';
import { HOST, endpoints, ports } from './endpoints.ts';

const dir = serviceDir('verdaccio');
const configFile = join(dir, 'config.yaml');

function verdaccioBin(): string {
  const pkg = createRequire(import.meta.url).resolve('verdaccio/package.json');
  return join(dirname(pkg), 'bin', 'verdaccio');
}

/** Node 24 from the root devDependency `node`; the system Node is too old for verdaccio 6.10. */
function node24(): string {
  const local = join(ROOT, 'node_modules', '.bin', 'node');
  return existsSync(local) ? local : process.execPath;
}

function writeConfig(): void {
  const access = { access: '$all', publish: '$authenticated', unpublish: '$authenticated' };
  // JSON is valid YAML, which spares us quoting rules ('@*/*', '$all').
  const config = {
    storage: join(dir, 'storage'),
    auth: { htpasswd: { file: join(dir, 'htpasswd'), max_users: 10_000 } },
    uplinks: {},
    packages: { '@*/*': access, '**': access },
    publish: { allow_offline: true },
    // The audit middleware would forward `npm audit` to registry.npmjs.org: off, we are offline.
    middlewares: { audit: { enabled: false } },
    server: { keepAliveTimeout: 60 },
    listen: `${HOST}:${ports.verdaccio}`,
    log: { type: 'stdout', format: 'pretty', level: 'http' },
  };
  mkdirSync(join(dir, 'storage'), { recursive: true });
  writeFileSync(configFile, `${JSON.stringify(config, null, 2)}\n`);
}

async function ping(): Promise<boolean> {
  const response = await fetch(new URL('/-/ping', endpoints.npmRegistry), {
    signal: AbortSignal.timeout(1_000),
  });
  await response.body?.cancel();
  return response.ok;
}

export const verdaccio = processService({
  name: 'verdaccio',
  url: endpoints.npmRegistry,
  cmdlineMarker: 'verdaccio',
  install: async () => {
    // Installed by `npm install` as a dependency of the test workspace; resolving it proves that.
    verdaccioBin();
  },
  prepare: async () => writeConfig(),
  command: () => ({
    file: node24(),
    args: [verdaccioBin(), '--config', configFile, '--listen', `${HOST}:${ports.verdaccio}`],
    cwd: dir,
  }),
  probe: ping,
  startTimeoutMs: 60_000,
  stopGraceMs: 10_000,
});

export interface NpmUser {
  name: string;
  password: string;
  token: string;
}

/**
 * Registers a user (`npm adduser` does the same request) and returns its token. Names
 * default to a random one, so parallel tests never collide.
 */
export async function createNpmUser(
  name = `cf-${randomBytes(6).toString('hex')}`,
  password = randomBytes(12).toString('hex'),
): Promise<NpmUser> {
  const url = new URL(
    `/-/user/org.couchdb.user:${encodeURIComponent(name)}`,
    endpoints.npmRegistry,
  );
  const response = await fetch(url, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      name,
      password,
      type: 'user',
      roles: [],
      date: new Date().toISOString(),
    }),
    signal: AbortSignal.timeout(10_000),
  });
  const body = (await response.json()) as { token?: string; error?: string };
  if (!response.ok || typeof body.token !== 'string') {
    throw new Error(
      `creating npm user ${name} failed: HTTP ${response.status} ${body.error ?? ''}`,
    );
  }
  return { name, password, token: body.token };
}

/**
 * Writes `<folder>/.npmrc` pointing npm at Verdaccio with the given token, and returns
 * its path. Pass it to npm as `--userconfig` too, so ~/.npmrc is never read or written.
 * audit/fund/update-notifier are off because they would try to reach the internet.
 */
export function writeNpmrc(folder: string, token: string): string {
  const registry = new URL(endpoints.npmRegistry);
  const file = join(folder, '.npmrc');
  writeFileSync(
    file,
    [
      `registry=${endpoints.npmRegistry}`,
      `//${registry.host}/:_authToken=${token}`,
      'audit=false',
      'fund=false',
      'update-notifier=false',
      '',
    ].join('\n'),
  );
  return file;
}

/**
 * process.env without npm's own npm_config_* variables. Under `npm test`, npm exports
 * its configuration (registry, userconfig, ...) as environment variables, and those
 * would override the per-folder .npmrc of a child `npm` process.
 */
export function npmChildEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.toLowerCase().startsWith('npm_config_')) env[key] = value;
  }
  return env;
}

/** createNpmUser + writeNpmrc: a folder ready for `npm publish` / `npm install`. */
export async function prepareNpmFolder(folder: string): Promise<{ npmrc: string; user: NpmUser }> {
  const user = await createNpmUser();
  return { npmrc: writeNpmrc(folder, user.token), user };
}
