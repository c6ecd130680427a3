// Core's in-memory buffer runs the same conformance suite as every buffer plugin. It lives
// in this process, so the SIGKILL crash tests (which need a buffer a child process can
// reach) do not apply: no `worker` is given.
import { memoryBuffer } from '@codefeedr/core';
import { bufferConformanceSuite } from './index.js';

bufferConformanceSuite({
  name: 'memory',
  create: () => memoryBuffer.create({}),
  capabilities: memoryBuffer.capabilities,
});
