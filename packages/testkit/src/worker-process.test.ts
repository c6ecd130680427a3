import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { waitFor } from './wait-for.js';
import { WorkerProcess } from './worker-process.js';

// Inside the repository, so the child resolves workspace packages through its node_modules.
const dir = join(
  import.meta.dirname,
  '..',
  '..',
  '..',
  '.tmp',
  `testkit-worker-${randomBytes(4).toString('hex')}`,
);
mkdirSync(dir, { recursive: true });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// A TypeScript child: a NodeNext `./x.js` import of a `.ts` file, a workspace package (its
// src/index.ts), a parameter property (needs type transformation, not just stripping).
writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
writeFileSync(
  join(dir, 'helper.ts'),
  `export class Greeter { constructor(private readonly name: string) {} greet(): string { return 'hi ' + this.name; } }\n`,
);
writeFileSync(
  join(dir, 'child.ts'),
  `import { Greeter } from './helper.js';
import { CodefeedrError } from '@codefeedr/core';
const error: CodefeedrError = new CodefeedrError('X', 'y');
process.stdout.write(JSON.stringify({ event: 'hello', text: new Greeter('ts').greet(), code: error.code }) + '\\n');
process.stdout.write('a plain line\\n');
setInterval(() => process.stdout.write(JSON.stringify({ event: 'tick' }) + '\\n'), 20);
`,
);

describe('WorkerProcess', () => {
  it('runs TypeScript children and reports their JSON-line events; SIGKILL ends them', async () => {
    const worker = new WorkerProcess({ script: join(dir, 'child.ts') });
    const hello = await worker.waitForEvent((e) => e.event === 'hello', 30_000, 'hello');
    expect(hello).toEqual({ event: 'hello', text: 'hi ts', code: 'X' });
    await waitFor(() => worker.events.filter((e) => e.event === 'tick').length >= 3, {
      description: '3 ticks',
    });
    expect(worker.tail()).toContain('a plain line');
    worker.kill('SIGKILL');
    expect(await worker.exited).toEqual({ code: null, signal: 'SIGKILL' });
    expect(worker.running).toBe(false);
  });

  it('fails a wait with the child output when the child exits first', async () => {
    writeFileSync(
      join(dir, 'dies.ts'),
      `console.error('boom: missing config'); process.exit(3);\n`,
    );
    const worker = new WorkerProcess({ script: join(dir, 'dies.ts') });
    await expect(worker.waitForEvent((e) => e.event === 'ready', 30_000, 'ready')).rejects.toThrow(
      /code 3[\s\S]*boom: missing config/,
    );
  });
});
