/**
 * `@codefeedr/core/buffer`: what a buffer plugin's author needs and a pipeline's author does
 * not — the buffer contracts, Kafka's partitioner, the header names the runtime reserves, and
 * the memory buffer as the reference implementation. Stable, like the root export.
 */
export * from './buffer.js';
export { defineBuffer, type BufferComponent } from './component.js';
export { murmur2, murmur2Partition } from './murmur2.js';
export * from './reserved-headers.js';
export { MemoryBuffer, UnknownPartitionError } from './memory-buffer.js';
export type { Serde } from './serde.js';
