import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ConsoleLogger } from '@codefeedr/core';
import {
  checkPipeline,
  discoverPlugins,
  loadPipeline,
  parsePipelineText,
} from '@codefeedr/registry';
import { afterAll, describe, expect, it } from 'vitest';
import { dropTables, postgresUrl, uniqueTable, withClient } from './postgres-test-support.js';

// The repository root: the registry finds this plugin as a workspace, as `codefeedr` does.
const root = fileURLToPath(new URL('../../../', import.meta.url));
const source = uniqueTable('pipe_src');
const target = uniqueTable('pipe_dst');
const positions = uniqueTable('pipe_pos');
// Trust auth accepts any password; this one proves special characters survive the file.
const PASSWORD = 'pa@ss/w:rd-in-env';

afterAll(async () => {
  await dropTables(source, target, positions);
});

describe('a pipeline file using the PostgreSQL input and output', () => {
  it('is listed by `codefeedr plugins list`', () => {
    const out = execFileSync(
      process.execPath,
      [`${root}packages/cli/bin/codefeedr.js`, 'plugins', 'list'],
      {
        cwd: root,
        encoding: 'utf8',
      },
    );
    expect(out).toContain('@codefeedr/plugin-postgres');
  });

  it('copies a table into another through the registry loader, secrets from the environment', async () => {
    await withClient(async (c) => {
      await c.query(
        `CREATE TABLE "${source}" (id bigserial PRIMARY KEY, repo text NOT NULL, commits integer NOT NULL)`,
      );
      await c.query(
        `INSERT INTO "${source}" (repo, commits) SELECT 'org/repo-' || (g % 40), g % 9 FROM generate_series(1, 2500) g`,
      );
    });
    const text = `
name: pg-copy
stages:
  - id: rows
    use: '@codefeedr/plugin-postgres:input'
    with: { url: '\${PG_URL}', password: '\${PG_PASSWORD}', table: ${source}, orderBy: id, key: repo }
  - id: save
    use: '@codefeedr/plugin-postgres:output'
    from: rows
    with:
      url: '\${PG_URL}'
      password: '\${PG_PASSWORD}'
      table: ${target}
      key: id
      # An inline run has no buffer positions to pass: the output logs a warning (checked for secrets below).
      storePositions: true
      positionsTable: ${positions}
      columns:
        id: { from: id, type: bigint }
        repo: { from: repo, type: text }
        commits: { from: commits, type: integer }
        read_at: $timestamp
`;
    const catalog = discoverPlugins(root);
    const spec = parsePipelineText(text, 'pg-copy.yaml', {
      env: { PG_URL: postgresUrl(), PG_PASSWORD: PASSWORD },
    });
    const pipeline = await loadPipeline(spec, catalog, checkPipeline(spec, catalog));
    const lines: string[] = [];
    const logger = new ConsoleLogger({
      level: 'debug',
      format: 'json',
      write: (line) => lines.push(line),
    });
    const summary = await pipeline.run({ mode: 'inline', batchSize: 300, logger });
    expect(summary.status).toBe('finished');
    expect(lines.some((line) => line.includes('storePositions is on'))).toBe(true);
    for (const shown of [JSON.stringify(summary), ...lines]) {
      expect(shown).not.toContain(PASSWORD);
      expect(shown).not.toContain(encodeURIComponent(PASSWORD));
    }

    const [copied, original] = await withClient(async (c) => [
      (await c.query(`SELECT id, repo, commits FROM "${target}" ORDER BY id`)).rows,
      (await c.query(`SELECT id::bigint AS id, repo, commits FROM "${source}" ORDER BY id`)).rows,
    ]);
    expect(copied).toEqual(original);
  });
});
