// Core's file state store (the default under a checkpoint directory) runs the same suite as
// every buffer's state store. Two stores on one directory are two workers on one machine.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileStateStore } from '@codefeedr/core';
import { afterAll } from 'vitest';
import { stateStoreConformanceSuite } from './index.js';

const dir = mkdtempSync(join(tmpdir(), 'codefeedr-file-state-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

stateStoreConformanceSuite({ name: 'file', create: async () => new FileStateStore(dir) });
