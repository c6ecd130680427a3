#!/usr/bin/env node
// Checked before the CLI loads: on an older Node its dependencies would fail with
// an obscure error instead of this one line.
const major = Number(process.versions.node.split('.')[0]);
if (major < 22) {
  process.stderr.write(
    `error codefeedr needs Node.js 22 or newer; this is ${process.version}. Install a current Node.js (or run it through npx/npm scripts with a newer one). [NODE_TOO_OLD]\n`,
  );
  process.exitCode = 1;
} else {
  // `codefeedr stages | head`: a closed pipe ends the command quietly, as Unix tools do.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(0);
    throw error;
  });
  const { main } = await import('./program.js');
  process.exitCode = await main(process.argv.slice(2));
}
