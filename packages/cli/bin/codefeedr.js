#!/usr/bin/env -S node --max-semi-space-size=16
// The flag is core's PIPELINE_V8_FLAGS (why: packages/core/src/pipeline-v8-flags.ts); a test
// keeps the two the same.
// Checked in rather than built, so npm links the `codefeedr` command when it installs the
// workspace — before the first build (a fresh clone's `npm ci`) as well as after it.
await import('../dist/bin.js');
