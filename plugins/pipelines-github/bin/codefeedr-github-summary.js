#!/usr/bin/env node
// Checked in rather than built, so npm links the command when it installs the workspace —
// before the first build (a fresh clone's `npm ci`) as well as after it.
await import('../dist/cli.js');
