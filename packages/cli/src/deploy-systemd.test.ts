// `codefeedr deploy --target systemd`: templated units checked by systemd's own
// `systemd-analyze verify` (installed on our machines; a missing one fails the test), each
// running `codefeedr run <file> --stage <id> --instance %i`, secrets in an EnvironmentFile only.
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI_DIR } from './cli-package.js';
import { cli, project } from './cli-fixture.js';

const stamp = `${process.pid}${Date.now() % 100_000}`;
const SECRETS = { KAFKA_BROKERS: `kafka-${stamp}.internal:9092`, API_TOKEN: `t0k@n/${stamp}` };

const PIPELINE = [
  'name: clicks',
  'buffer: { use: \'@codefeedr/plugin-kafka:kafka\', with: { brokers: "${KAFKA_BROKERS}" } }',
  'stages:',
  '  - { id: numbers, use: sequence, with: { to: 5 } }',
  '  - { id: sink, use: ndjson-file, from: numbers, with: { path: "/tmp/${API_TOKEN}.ndjson" } }',
  '',
].join('\n');

function kafkaProject(): string {
  const dir = project({ 'pipeline.yaml': PIPELINE });
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name: 'x', dependencies: { '@codefeedr/plugin-kafka': '*' } }),
  );
  return dir;
}

/** The [Service] settings of a unit, key to values (a key may repeat). */
function serviceSettings(text: string): Map<string, string[]> {
  const settings = new Map<string, string[]>();
  let section = '';
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) section = header[1]!;
    else if (section === 'Service') {
      const eq = line.indexOf('=');
      const key = line.slice(0, eq);
      settings.set(key, [...(settings.get(key) ?? []), line.slice(eq + 1)]);
    }
  }
  return settings;
}

describe('codefeedr deploy --target systemd', () => {
  it('writes one templated unit per stage that systemd-analyze verify accepts, secrets in the EnvironmentFile only', async () => {
    const dir = kafkaProject();
    const bin = join(CLI_DIR, 'bin', 'codefeedr.js');
    const envFile = join(dir, 'clicks.env');
    const result = await cli(
      [
        'deploy',
        'pipeline.yaml',
        '--target',
        'systemd',
        '--out',
        'units',
        '--workdir',
        dir,
        '--bin',
        bin,
        '--env-file',
        envFile,
        '--set',
        // systemd would expand `$` and `%`, and split at the space: all escaped.
        'sink.path=/tmp/a b$HOME%h.ndjson',
      ],
      dir,
      SECRETS,
    );
    expect(result.code, result.stderr).toBe(0);
    const files = readdirSync(join(dir, 'units')).sort();
    expect(files).toEqual([
      'clicks.env.example',
      'codefeedr-clicks-numbers@.service',
      'codefeedr-clicks-sink@.service',
    ]);
    const texts = files.map((f) => readFileSync(join(dir, 'units', f), 'utf8'));
    for (const text of [...texts, result.stdout, result.stderr])
      for (const secret of Object.values(SECRETS)) expect(text).not.toContain(secret);
    // The env file's keys, values left for the machine.
    expect(texts[0]).toMatch(/^KAFKA_BROKERS=$/m);
    expect(texts[0]).toMatch(/^API_TOKEN=$/m);
    writeFileSync(
      envFile,
      Object.entries(SECRETS)
        .map(([k, v]) => `${k}=${v}`)
        .join('\n'),
    );

    for (const [stage, text] of [
      ['numbers', texts[1]!],
      ['sink', texts[2]!],
    ] as const) {
      const service = serviceSettings(text);
      expect(service.get('ExecStart')).toEqual([
        `${bin} run pipeline.yaml --stage ${stage} --instance %i --set "sink.path=/tmp/a b$$HOME%%h.ndjson" --no-progress`,
      ]);
      expect(service.get('WorkingDirectory')).toEqual([dir]);
      expect(service.get('EnvironmentFile')).toEqual([envFile]);
      expect(service.get('Restart')).toEqual(['on-failure']);
      expect(service.get('KillSignal')).toEqual(['SIGTERM']);
      // systemd's own check of an instance of the template: exit 0 and no warning at all.
      const instance = join(dir, 'units', `codefeedr-clicks-${stage}@w1.service`);
      const verify = spawnSync('systemd-analyze', ['verify', instance], { encoding: 'utf8' });
      expect(verify.error, 'systemd-analyze is not installed').toBeUndefined();
      expect(verify.stderr).toBe('');
      expect(verify.status).toBe(0);
    }
    // The check itself: a unit systemd cannot run is refused.
    const broken = join(dir, 'units', 'codefeedr-broken@.service');
    writeFileSync(broken, texts[1]!.replace(bin, join(dir, 'no-such-codefeedr')));
    const refused = spawnSync('systemd-analyze', ['verify', broken.replace('@', '@w1')], {
      encoding: 'utf8',
    });
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toContain('is not executable');
    expect(execFileSync('systemd-analyze', ['--version'], { encoding: 'utf8' })).toMatch(
      /^systemd \d+/,
    );
  });

  it('prints the units on stdout without --out; no EnvironmentFile when the file has no ${VAR}', async () => {
    const dir = project({
      'p.yaml': PIPELINE.replace('"${KAFKA_BROKERS}"', '["127.0.0.1:9092"]').replace(
        '/tmp/${API_TOKEN}.ndjson',
        '/dev/null',
      ),
    });
    writeFileSync(
      join(dir, 'package.json'),
      JSON.stringify({ name: 'x', dependencies: { '@codefeedr/plugin-kafka': '*' } }),
    );
    const result = await cli(
      ['deploy', 'p.yaml', '-t', 'systemd', '--user', 'codefeedr', '--metrics-port', '9500'],
      dir,
    );
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('# ---- codefeedr-clicks-numbers@.service');
    expect(result.stdout).not.toContain('EnvironmentFile');
    const service = serviceSettings(result.stdout);
    expect(service.get('User')).toEqual(['codefeedr', 'codefeedr']);
    expect(service.get('ExecStart')![0]).toBe(
      '/opt/codefeedr/node_modules/.bin/codefeedr run p.yaml --stage numbers --instance %i --no-progress --metrics-port 9500 --metrics-host 0.0.0.0',
    );
  });
});
