// Build step: ship templates/plugin inside the package as dist/template, with its
// @codefeedr/* ranges set to the versions being built (so a scaffolded plugin depends on
// the release that scaffolded it). Runs on Node >= 22 from `npm run build`.
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';

const cliDir = join(import.meta.dirname, '..');
const repo = join(cliDir, '..', '..');
const source = join(repo, 'templates', 'plugin');
const target = join(cliDir, 'dist', 'template');
const skipped = new Set(['node_modules', 'dist', '.tmp', 'coverage', 'CHANGELOG.md']);

rmSync(target, { recursive: true, force: true });
cpSync(source, target, { recursive: true, filter: (path) => !skipped.has(basename(path)) });

const versions = new Map();
for (const group of ['packages', 'plugins']) {
  for (const name of existsSync(join(repo, group)) ? readdirSync(join(repo, group)) : []) {
    const file = join(repo, group, name, 'package.json');
    if (!existsSync(file)) continue;
    const pkg = JSON.parse(readFileSync(file, 'utf8'));
    versions.set(pkg.name, pkg.version);
  }
}
const pkgFile = join(target, 'package.json');
const pkg = JSON.parse(readFileSync(pkgFile, 'utf8'));
for (const field of ['dependencies', 'devDependencies', 'peerDependencies']) {
  for (const dep of Object.keys(pkg[field] ?? {})) {
    if (versions.has(dep)) pkg[field][dep] = `^${versions.get(dep)}`;
  }
}
writeFileSync(pkgFile, `${JSON.stringify(pkg, null, 2)}\n`);
console.log(`template copied to ${target}`);
