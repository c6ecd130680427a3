#!/usr/bin/env node
// API reports (Backstage's pattern, made by API Extractor): each published package's public
// API as checked-in markdown, `report.api.md` for its root export and `report-<name>.api.md`
// for a subpath export, so a public API change is a visible diff in review.
//   node scripts/api-reports.mjs           writes the reports (after `npm run build`)
//   node scripts/api-reports.mjs --check   fails, naming the packages, if a report is stale
import { Extractor, ExtractorConfig, ExtractorLogLevel } from '@microsoft/api-extractor';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const check = process.argv.includes('--check');
const only = process.argv.slice(2).filter((a) => !a.startsWith('--'));

/** Published workspaces and their entry points: [reportName, d.ts path]. */
function entries() {
  const out = [];
  for (const group of ['packages', 'plugins']) {
    for (const name of readdirSync(join(root, group)).sort()) {
      const dir = join(root, group, name);
      const pkgFile = join(dir, 'package.json');
      if (!existsSync(pkgFile)) continue;
      const pkg = JSON.parse(readFileSync(pkgFile, 'utf8'));
      if (pkg.private || (only.length > 0 && !only.includes(pkg.name))) continue;
      for (const [subpath, target] of Object.entries(pkg.exports ?? {})) {
        const types = typeof target === 'object' ? target.import?.types : undefined;
        if (types === undefined) continue;
        const report =
          subpath === '.' ? 'report' : `report-${subpath.slice(2).replace(/\//g, '-')}`;
        out.push({ pkg: pkg.name, dir, report, dts: join(dir, types) });
      }
    }
  }
  return out;
}

const stale = [];
for (const { pkg, dir, report, dts } of entries()) {
  if (!existsSync(dts)) {
    console.error(`${pkg}: ${relative(root, dts)} is missing; run \`npm run build\` first.`);
    process.exit(1);
  }
  const tempFolder = join(root, '.tmp', 'api-reports', pkg.replace('/', '+'));
  mkdirSync(tempFolder, { recursive: true });
  const config = ExtractorConfig.prepare({
    configObject: {
      projectFolder: dir,
      mainEntryPointFilePath: dts,
      compiler: {
        overrideTsconfig: {
          compilerOptions: {
            target: 'es2022',
            module: 'nodenext',
            moduleResolution: 'nodenext',
            strict: true,
            skipLibCheck: true,
            types: ['node'],
          },
          files: [dts],
        },
      },
      apiReport: {
        enabled: true,
        reportFileName: report,
        reportFolder: dir,
        reportTempFolder: tempFolder,
      },
      docModel: { enabled: false },
      dtsRollup: { enabled: false },
      tsdocMetadata: { enabled: false },
      messages: {
        // Release tags (@public/@beta) are not used yet: the subpath says what is stable.
        extractorMessageReporting: {
          'ae-missing-release-tag': { logLevel: ExtractorLogLevel.None },
          'ae-undocumented': { logLevel: ExtractorLogLevel.None },
          'ae-forgotten-export': { logLevel: ExtractorLogLevel.None, addToApiReportFile: false },
          default: { logLevel: ExtractorLogLevel.Warning },
        },
        tsdocMessageReporting: { default: { logLevel: ExtractorLogLevel.None } },
        compilerMessageReporting: { default: { logLevel: ExtractorLogLevel.Warning } },
      },
    },
    configObjectFullPath: undefined,
    packageJsonFullPath: join(dir, 'package.json'),
  });
  const result = Extractor.invoke(config, {
    localBuild: !check,
    messageCallback: (message) => {
      if (message.logLevel !== ExtractorLogLevel.Warning) message.handled = true;
      else {
        message.handled = true;
        if (!check) console.warn(`${pkg}: ${message.text}`);
      }
    },
  });
  if (check && result.apiReportChanged) stale.push(`${pkg} (${report}.api.md)`);
  else if (!result.succeeded && !result.apiReportChanged) {
    console.error(`${pkg}: API Extractor failed (${result.errorCount} errors)`);
    process.exit(1);
  }
}
if (stale.length > 0) {
  console.error(
    `The public API changed without its report: ${stale.join(', ')}.\nRun \`npm run build && npm run api:report\` and commit the reports (the diff is the API change to review).`,
  );
  process.exit(1);
}
console.log(check ? 'API reports are up to date.' : 'API reports written.');
