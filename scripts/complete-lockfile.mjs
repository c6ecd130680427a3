#!/usr/bin/env node
// Adds lockfile entries for other platforms' optional native packages (@nx/nx-darwin-arm64,
// @rollup/rollup-win32-x64-msvc, ...). The npm mirror on our machines does not serve them, so
// `npm install` leaves them out of package-lock.json and `npm ci` then refuses the lockfile as
// out of sync. Each entry is what npm writes with a full registry: the exact version the parent
// pins, `optional`, and the os/cpu/libc read from the package name, so npm ci skips it on any
// other platform and never fetches it. Run after `npm install` changes the lockfile:
//   node scripts/complete-lockfile.mjs
import { readFileSync, writeFileSync } from 'node:fs';

const file = new URL('../package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(file, 'utf8'));
const OS = [
  'darwin',
  'linux',
  'win32',
  'freebsd',
  'openbsd',
  'android',
  'openharmony',
  'sunos',
  'aix',
  'netbsd',
];
const CPU = ['arm64', 'x64', 'arm', 'ia32', 'loong64', 'ppc64', 'riscv64', 's390x', 'mips64el'];

function platformOf(name) {
  const parts = name.split('/').pop().split('-');
  const os = parts.find((p) => OS.includes(p));
  const cpu = parts.find((p) => CPU.includes(p));
  if (!os || !cpu) return undefined;
  const entry = { os: [os], cpu: [cpu] };
  if (os === 'linux') {
    if (parts.some((p) => p.startsWith('musl'))) entry.libc = ['musl'];
    else if (parts.some((p) => p.startsWith('gnu'))) entry.libc = ['glibc'];
  }
  return entry;
}

const present = new Set(
  Object.keys(lock.packages).map((path) => path.replace(/^.*node_modules\//, '')),
);
let added = 0;
for (const meta of Object.values(lock.packages)) {
  for (const [dep, version] of Object.entries(meta.optionalDependencies ?? {})) {
    if (present.has(dep)) continue;
    const platform = platformOf(dep);
    if (!platform || !/^\d+\.\d+\.\d+/.test(version)) continue; // only exact, platform-named pins
    lock.packages[`node_modules/${dep}`] = { version, ...platform, optional: true };
    present.add(dep);
    added += 1;
  }
}
lock.packages = Object.fromEntries(
  Object.entries(lock.packages).sort(([a], [b]) =>
    a === '' ? -1 : b === '' ? 1 : a.localeCompare(b),
  ),
);
writeFileSync(file, JSON.stringify(lock, null, 2) + '\n');
console.log(`package-lock.json: ${added} optional platform entr${added === 1 ? 'y' : 'ies'} added`);
