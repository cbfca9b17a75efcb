#!/usr/bin/env node
// Lints every packed package the way a registry user would meet it: publint (package.json, exports,
// files) and Are the Types Wrong (declarations under node10, node16 CJS and ESM, and bundlers).
// Usage: node scripts/release/check-packages.mjs [folder of tarballs]; packs first when none is given.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { packPackages } from './pack-packages.mjs';
import { repositoryRoot } from './workspace-packages.mjs';

const started = Date.now();
const given = process.argv[2];
const tarballs = given
  ? readdirSync(resolve(given)).filter((file) => file.endsWith('.tgz')).map((file) => join(resolve(given), file))
  : packPackages(mkdtempSync(join(tmpdir(), 'egress-packed-'))).map((entry) => entry.tarball);
if (tarballs.length === 0) throw new Error(`no .tgz in ${given}`);

const bin = (name) => join(repositoryRoot, 'node_modules', '.bin', name);
const failures = [];
for (const tarball of tarballs) {
  const checks = [
    ['publint', [bin('publint'), 'run', tarball, '--strict', '--level', 'warning']],
    ['attw', [bin('attw'), tarball, '--format', 'table-flipped', '--no-emoji', '--no-color']],
  ];
  for (const [label, [command, ...args]] of checks) {
    const result = spawnSync(command, args, { encoding: 'utf8' });
    const output = `${result.stdout}${result.stderr}`.trim();
    if (result.status !== 0) {
      failures.push(`${label} ${tarball}`);
      console.log(`[${label}] FAIL ${tarball}\n${output}\n`);
    } else {
      console.log(`[${label}] ok   ${tarball.split('/').at(-1)}`);
    }
  }
}
console.log(`[check-packages] ${tarballs.length} packages, ${failures.length} failures, ${((Date.now() - started) / 1000).toFixed(1)} s`);
if (failures.length > 0) process.exit(1);
