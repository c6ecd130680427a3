export const PACKAGE_NAME = '@codefeedr/testkit';
export {
  bufferConformanceSuite,
  type BufferConformanceOptions,
  type BufferWorkerSpec,
} from './buffer-conformance.js';
export {
  testRecords,
  decodeTestRecord,
  sendInBatches,
  type TestRecordValue,
} from './test-records.js';
export { waitFor, WaitTimeoutError, type WaitForOptions } from './wait-for.js';
export {
  WorkerProcess,
  testkitWorkerDir,
  typescriptNodeOptions,
  type WorkerEvent,
  type WorkerProcessOptions,
} from './worker-process.js';
