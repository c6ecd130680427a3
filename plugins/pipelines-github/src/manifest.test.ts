import { readFileSync } from 'node:fs';
import { manifestFromModule, validateManifest } from '@codefeedr/registry';
import { describe, expect, it } from 'vitest';
import * as plugin from './index.js';

const packageJson = JSON.parse(
  readFileSync(new URL('../package.json', import.meta.url), 'utf8'),
) as Record<string, unknown>;

describe('@codefeedr/pipelines-github manifest', () => {
  it('lists the prebuilt pipelines and their own stages', () => {
    const manifest = validateManifest(packageJson);
    expect(manifest.components.map((c) => [c.name, c.kind, c.export])).toEqual([
      ['activity', 'transform', 'activityTransform'],
      ['github-to-mongo', 'pipeline', 'githubToMongo'],
      ['github-to-postgres', 'pipeline', 'githubToPostgres'],
      ['issue-response-time', 'pipeline', 'issueResponseTime'],
      ['issue-response-time-stats', 'transform', 'issueResponseTimeTransform'],
      ['github-summary', 'pipeline', 'pipeline'],
      ['repository-activity', 'pipeline', 'repositoryActivity'],
      ['repository-activity-counts', 'transform', 'repositoryActivityTransform'],
      ['summary', 'output', 'summaryOutput'],
      ['trending-repositories', 'pipeline', 'trendingRepositories'],
      ['trending-repositories-ranking', 'transform', 'trendingRepositoriesTransform'],
      ['activity-trending', 'transform', 'activityTrendingTransform'],
      ['untyped-events', 'transform', 'untypedEvents'],
    ]);
  });

  it('matches what the code declares (regenerate with manifestFromModule when a config changes)', () => {
    expect(packageJson.codefeedr).toEqual(
      manifestFromModule(plugin as unknown as Record<string, unknown>),
    );
  });
});
