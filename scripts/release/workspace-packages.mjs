import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const repositoryRoot = resolve(import.meta.dirname, '../..');

/** Every package this repository publishes: the non-private ones under packages/ and adapters/. */
export function publishedPackages() {
  const found = [];
  for (const group of ['packages', 'adapters']) {
    for (const folder of readdirSync(join(repositoryRoot, group)).sort()) {
      const manifestPath = join(repositoryRoot, group, folder, 'package.json');
      if (!existsSync(manifestPath)) continue;
      const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
      if (manifest.private) continue;
      found.push({ name: manifest.name, version: manifest.version, directory: join(repositoryRoot, group, folder), relativeDirectory: `${group}/${folder}`, manifest });
    }
  }
  return found;
}
