export const PACKAGE_NAME = '@codefeedr/pipelines-github';

// Modules in alphabetical order of their component exports (activityTransform, githubToMongo,
// githubToPostgres, issueResponseTime, issueResponseTimeTransform, pipeline, repositoryActivity,
// repositoryActivityTransform, summaryOutput, trendingRepositories, trendingRepositoriesTransform,
// untypedEvents): an ESM namespace lists
// exports alphabetically, vitest's in import order, and the manifest must be the same either way.
export * from './activity.js';
export * from './github-to-mongo-pipeline.js';
export * from './github-to-postgres-pipeline.js';
export * from './issue-response-time-pipeline.js';
export * from './issue-response-time-stats.js';
export * from './github-summary-pipeline.js';
export * from './github-summary.js';
export * from './repository-activity-pipeline.js';
export * from './repository-activity-counts.js';
export * from './summary-output.js';
export * from './trending-repositories-pipeline.js';
export * from './trending-repositories-ranking.js';
export * from './untyped-events.js';
export * from './github-event-routes.js';
export * from './errors.js';
export * from './windowed-output.js';
