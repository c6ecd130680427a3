// vitest globalSetup (vitest.config.ts): brings all five servers up before any test file
// runs and publishes their connection strings as CODEFEEDR_* environment variables.
// It runs in vitest's main process before the worker forks are created, and forks
// inherit process.env, so every test in every package can read them
// (test/proof/env.proof.test.ts checks this). No teardown on purpose: the servers stay
// up for the next run and for `npm run services:status`; `npm run services:down` stops them.
import { endpointEnv, up } from './index.ts';

export default async function setup(): Promise<void> {
  await up();
  Object.assign(process.env, endpointEnv());
}
