// The checked-in API reports (report*.api.md beside each package.json) match what the build
// exports: a public API change without its reviewed report fails the suite. `npm test` builds
// first, so the reports are compared with this commit's code.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { expect, it } from 'vitest';

it('every published package has an up-to-date API report', () => {
  const root = join(import.meta.dirname, '..');
  const run = spawnSync(process.execPath, [join(root, 'scripts', 'api-reports.mjs'), '--check'], {
    cwd: root,
    encoding: 'utf8',
  });
  expect(run.stderr + run.stdout).toContain('API reports are up to date.');
  expect(run.status).toBe(0);
}, 180_000);
