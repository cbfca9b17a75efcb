#!/usr/bin/env node
// Builds every published package and packs it with `pnpm pack`, as `pnpm publish` would: workspace
// ranges are replaced by real ones. Usage: node scripts/release/pack-packages.mjs <folder> [--no-build]
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { publishedPackages, repositoryRoot } from './workspace-packages.mjs';

/** pnpm 10 as the README runs it (`npx -y pnpm@10`), found once rather than started through npx for each package. */
function pnpmCommand() {
  return execFileSync('npm', ['exec', '--yes', '--package=pnpm@10', '-c', 'command -v pnpm'], { cwd: repositoryRoot, encoding: 'utf8' }).trim();
}

/** Packs every published package into `destination`; returns `{ name, version, tarball }` for each. */
export function packPackages(destination, { build = true } = {}) {
  mkdirSync(destination, { recursive: true });
  for (const file of readdirSync(destination)) if (file.endsWith('.tgz')) rmSync(join(destination, file));
  const pnpm = pnpmCommand();
  if (build) execFileSync(pnpm, ['build'], { cwd: repositoryRoot, stdio: ['ignore', 'ignore', 'inherit'] });
  return publishedPackages().map(({ name, version, directory }) => {
    const output = execFileSync(pnpm, ['pack', '--pack-destination', destination], { cwd: directory, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    const tarball = output.trim().split('\n').at(-1).trim();
    return { name, version, tarball: resolve(directory, tarball) };
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const destination = resolve(process.argv[2] ?? join(repositoryRoot, '.packed'));
  const started = Date.now();
  const packed = packPackages(destination, { build: !process.argv.includes('--no-build') });
  for (const { tarball } of packed) console.log(tarball);
  console.error(`[pack] ${packed.length} packages packed into ${destination} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}
