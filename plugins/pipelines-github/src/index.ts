export const PACKAGE_NAME = '@codefeedr/pipelines-github';

export * from './activity.js';
export * from './github-summary.js';
export * from './summary-output.js';
export * from './github-summary-pipeline.js';
