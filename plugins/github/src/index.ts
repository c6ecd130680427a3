export const PACKAGE_NAME = '@codefeedr/plugin-github';

export * from './errors.js';
export * from './event-types.js';
export * from './event-transforms.js';
export * from './events-input.js';
export * from './key-manager.js';
export * from './recent-id-window.js';
export * from './replay-input.js';
export * from './gap-backfill.js';
export * from './github-feed.js';
