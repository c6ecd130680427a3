// A MongoDB-wire-protocol server: FerretDB v1 with its pure-Go SQLite backend (data
// persists under .services/mongodb/data). No mongod can be installed on these machines.
//
// Build recipe (cached binary under .cache/ferretdb-<version>/):
// `go install github.com/FerretDB/FerretDB/cmd/ferretdb@v1.24.2` fails here: the Go proxy
// answers 403 on the module's @v/list during go install's deprecation check. Building
// `cmd/ferretdb` as a dependency of a throwaway module gets past that, but the binary then
// panics at start because the module zip lacks the generated build/version/version.txt.
// So: `go mod download` the exact version (no @v/list needed), copy the module into the
// cache, write the version.txt that FerretDB's own `task gen-version` would generate,
// and `go build ./cmd/ferretdb` inside it with CGO disabled.
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { MongoClient } from 'mongodb';
import { cacheDir, commandExists, processService, run, serviceDir, withLock } from './common.ts';
import { HOST, endpoints, ports } from './endpoints.ts';

const FERRETDB_MODULE = 'github.com/FerretDB/FerretDB';
const FERRETDB_VERSION = 'v1.24.2';

const buildDir = cacheDir(`ferretdb-${FERRETDB_VERSION}`);
const binary = join(buildDir, 'ferretdb');
const dir = serviceDir('mongodb');
const dataDir = join(dir, 'data');
const stateDir = join(dir, 'state');

async function buildFerretDB(): Promise<void> {
  await withLock('ferretdb-build', async () => {
    if (existsSync(binary)) return;
    if (!commandExists('go'))
      throw new Error('go is not on PATH: FerretDB is built from the Go module proxy');
    // GOTOOLCHAIN=local: never download another Go toolchain; GOFLAGS cleared so a
    // user's -mod=vendor or similar cannot change the build.
    const env = { ...process.env, CGO_ENABLED: '0', GOTOOLCHAIN: 'local', GOFLAGS: '' };
    const download = JSON.parse(
      await run('go', ['mod', 'download', '-json', `${FERRETDB_MODULE}@${FERRETDB_VERSION}`], {
        cwd: buildDir,
        env,
      }),
    ) as { Dir?: string; Error?: string };
    if (download.Dir === undefined)
      throw new Error(`go mod download failed: ${download.Error ?? 'no Dir'}`);
    const src = join(buildDir, 'src');
    rmSync(src, { recursive: true, force: true });
    cpSync(download.Dir, src, { recursive: true });
    chmodRecursive(src); // the module cache is read-only; we add one generated file
    writeFileSync(join(src, 'build', 'version', 'version.txt'), `${FERRETDB_VERSION}\n`);
    const tmp = `${binary}.tmp`;
    await run('go', ['build', '-buildvcs=false', '-trimpath', '-o', tmp, './cmd/ferretdb'], {
      cwd: src,
      env,
    });
    renameSync(tmp, binary); // atomic: a half-written binary never counts as cached
    rmSync(src, { recursive: true, force: true });
  });
}

function chmodRecursive(path: string): void {
  // cpSync keeps the module cache's 0444/0555 modes; make the copy writable.
  chmodSync(path, 0o755);
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    const full = join(path, entry.name);
    if (entry.isDirectory()) chmodRecursive(full);
    else chmodSync(full, 0o644);
  }
}

async function ping(): Promise<boolean> {
  const client = new MongoClient(endpoints.mongodbUrl, {
    serverSelectionTimeoutMS: 1_000,
    connectTimeoutMS: 1_000,
    // A server that accepts connections but never answers (a stuck SQLite lock) is not ready;
    // a busy one answers a ping well within this.
    socketTimeoutMS: 15_000,
  });
  try {
    const reply = await client.db('admin').command({ ping: 1 });
    return reply.ok === 1;
  } finally {
    await client.close();
  }
}

export const mongodb = processService({
  name: 'mongodb',
  url: endpoints.mongodbUrl,
  cmdlineMarker: binary,
  settingsMarker: `--listen-addr=${HOST}:${ports.mongodb}`,
  install: buildFerretDB,
  prepare: async () => {
    mkdirSync(dataDir, { recursive: true });
    mkdirSync(stateDir, { recursive: true });
  },
  command: () => ({
    file: binary,
    args: [
      '--handler=sqlite',
      `--sqlite-url=file:${dataDir}/`,
      `--listen-addr=${HOST}:${ports.mongodb}`,
      `--state-dir=${stateDir}`,
      '--telemetry=disable',
      '--debug-addr=-', // no metrics/pprof HTTP listener on a fixed port (8088)
      '--log-format=text',
    ],
  }),
  probe: ping,
  startTimeoutMs: 30_000,
  stopGraceMs: 10_000,
});
