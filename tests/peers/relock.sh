#!/usr/bin/env bash
# Rewrites package-lock.json from package.json (npm install --package-lock-only), then adds
# the entries npm leaves out when the registry it reaches does not serve some platforms'
# optional packages (opencode's darwin/windows/musl builds, a clipboard addon's): without
# them `npm ci` refuses the lockfile as out of sync. Each added entry carries its platform
# (os, cpu, libc), so npm skips it here as it skips any other platform's package.
set -euo pipefail
cd "$(dirname "$0")"
npm install --package-lock-only --no-audit --no-fund --loglevel=error
node - package-lock.json <<'JS'
const fs = require('node:fs');
const file = process.argv[2];
const lock = JSON.parse(fs.readFileSync(file, 'utf8'));
const pkgs = lock.packages;
const platform = (name) => ({
  os: /darwin/.test(name) ? 'darwin' : /win(32|dows)/.test(name) ? 'win32' : /linux/.test(name) ? 'linux' : null,
  cpu: /arm64/.test(name) ? 'arm64' : /x64/.test(name) ? 'x64' : null,
  libc: /musl/.test(name) ? 'musl' : /gnu/.test(name) ? 'glibc' : null,
});
// Where node would find `dep` from the package at `path`: the nearest node_modules up.
const placed = (path, dep) => {
  for (let p = path; ; ) {
    if (pkgs[(p ? p + '/' : '') + 'node_modules/' + dep]) return true;
    if (!p) return false;
    const i = p.lastIndexOf('/node_modules/');
    p = i < 0 ? '' : p.slice(0, i);
  }
};
const added = [];
for (const [path, entry] of Object.entries(pkgs)) {
  for (const [dep, version] of Object.entries(entry.optionalDependencies ?? {})) {
    if (placed(path, dep)) continue;
    const { os, cpu, libc } = platform(dep);
    if (!os || !cpu) throw new Error(`${dep}@${version} is missing and its platform is not in its name`);
    pkgs[`node_modules/${dep}`] = { version, optional: true, os: [os], cpu: [cpu], ...(libc && { libc: [libc] }) };
    added.push(`${dep}@${version}`);
  }
}
const order = (a, b) => (a === '' ? -1 : b === '' ? 1 : a < b ? -1 : a > b ? 1 : 0);
lock.packages = Object.fromEntries(Object.entries(pkgs).sort(([a], [b]) => order(a, b)));
fs.writeFileSync(file, JSON.stringify(lock, null, 2) + '\n');
if (added.length) console.error(`relock.sh: added ${added.length} entries the registry does not serve: ${added.join(', ')}`);
JS
