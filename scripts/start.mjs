#!/usr/bin/env node
// `npm start`: builds what the main job needs without lerna's chatter on the screen, then runs
// it. The build's output is kept and shown only when the build fails; a terminal sees one
// progress line. Arguments after `npm start --` go to the job (`npm start -- --live`).
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const tty = process.stderr.isTTY === true;
const started = Date.now();

function run(command, args, options, onSpawn = () => {}) {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: root, ...options });
    onSpawn(child);
    let output = '';
    child.stdout?.on('data', (chunk) => (output += chunk));
    child.stderr?.on('data', (chunk) => (output += chunk));
    child.on('close', (code, signal) => resolve({ code: code ?? 1, signal, output }));
  });
}

const BUILD = ['lerna', 'run', 'build', '--scope', '@codefeedr/pipelines-github'];
const dots = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
let tick = 0;
const progress = tty
  ? setInterval(() => {
      const seconds = ((Date.now() - started) / 1000).toFixed(0);
      process.stderr.write(`\r${dots[tick++ % dots.length]} building the packages… ${seconds} s`);
    }, 100)
  : undefined;
if (!tty) process.stderr.write('building the packages…\n');
const build = await run('npx', [...BUILD, '--include-dependencies'], {
  stdio: ['ignore', 'pipe', 'pipe'],
  env: { ...process.env, NX_DAEMON: 'false', NX_NO_CLOUD: 'true' },
});
if (progress) {
  clearInterval(progress);
  process.stderr.write('\r\x1b[2K');
}
if (build.code !== 0) {
  process.stderr.write(build.output);
  process.stderr.write(
    `\nnpm start: the build failed (exit ${build.code}); its output is above.\n`,
  );
  process.exit(build.code);
}
process.stderr.write(`built in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);

// Built above with the job's dependencies: the V8 flags every pipeline process starts with.
const { PIPELINE_V8_FLAGS } = await import('@codefeedr/core');
const job = await run(
  process.execPath,
  [
    ...PIPELINE_V8_FLAGS,
    'plugins/pipelines-github/dist/cli.js',
    '--output',
    '.tmp/github-events.ndjson',
    ...process.argv.slice(2),
  ],
  { stdio: 'inherit' },
  (child) => {
    // A terminal's Ctrl-C reaches the job itself (same process group), which stops gracefully;
    // this process only waits for it. A SIGTERM sent to this process alone is passed on.
    process.on('SIGINT', () => {});
    process.on('SIGTERM', () => child.kill('SIGTERM'));
  },
);
process.exit(job.signal ? 1 : job.code);
