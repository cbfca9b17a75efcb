import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, test } from 'vitest';

const repositoryRoot = resolve(import.meta.dirname, '../../..');
const repositoryUrl = 'https://github.com/egress-dev/egress';

interface Manifest {
  name: string;
  version: string;
  private?: boolean;
  license?: string;
  keywords?: string[];
  homepage?: string;
  bugs?: { url?: string };
  repository?: { type?: string; url?: string; directory?: string };
  files?: string[];
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

const published = ['packages', 'adapters'].flatMap((group) =>
  readdirSync(join(repositoryRoot, group))
    .filter((folder) => existsSync(join(repositoryRoot, group, folder, 'package.json')))
    .map((folder) => ({ directory: `${group}/${folder}`, manifest: JSON.parse(readFileSync(join(repositoryRoot, group, folder, 'package.json'), 'utf8')) as Manifest }))
    .filter(({ manifest }) => !manifest.private),
);

test('there are packages to check', () => {
  expect(published.map(({ manifest }) => manifest.name)).toEqual(expect.arrayContaining(['@egress/core', '@egress/cli', '@egress/demo', '@egress/http', '@egress/testkit']));
});

describe.each(published)('$manifest.name', ({ directory, manifest }) => {
  test('has the metadata a registry page needs, pointing at its folder of the repository', () => {
    expect(manifest.license).toBe('MIT');
    expect(manifest.repository).toEqual({ type: 'git', url: `git+${repositoryUrl}.git`, directory });
    expect(manifest.homepage).toBe(`${repositoryUrl}/tree/main/${directory}#readme`);
    expect(manifest.bugs).toEqual({ url: `${repositoryUrl}/issues` });
    expect(manifest.keywords?.length).toBeGreaterThan(2);
    expect(manifest.keywords).toContain('egress');
  });

  test('ships the MIT LICENSE and a README that stands alone outside the repository', () => {
    expect(readFileSync(join(repositoryRoot, directory, 'LICENSE'), 'utf8')).toBe(readFileSync(join(repositoryRoot, 'LICENSE'), 'utf8'));
    const readme = readFileSync(join(repositoryRoot, directory, 'README.md'), 'utf8');
    expect(readme.startsWith(`# ${manifest.name}\n`)).toBe(true);
    expect(readme).toMatch(new RegExp(`(npm install|npx)[^\\n]* ${manifest.name.replace('/', '\\/')}`));
    expect(readme).toMatch(/```ts\n[\s\S]*?```/);
    expect(readme).toContain(repositoryUrl);
    // Relative links break on the registry's page and in node_modules.
    for (const [, target] of readme.matchAll(/\]\(([^)]+)\)/g)) expect(target, 'link').toMatch(/^https:\/\//);
  });

  test('ships its sources beside the source maps', () => {
    expect(manifest.files).toEqual(expect.arrayContaining(['dist', 'src']));
  });

  test('accepts every 0.x release of core from 0.1.0 on, and any other Egress package likewise', () => {
    for (const field of ['dependencies', 'peerDependencies'] as const) {
      for (const [name, range] of Object.entries(manifest[field] ?? {})) {
        if (name.startsWith('@egress/')) expect(range, `${field} ${name}`).toBe('workspace:>=0.1.0 <1');
      }
    }
  });

  test('is on the one versioning scheme: 0.x', () => {
    expect(manifest.version).toMatch(/^0\.\d+\.\d+$/);
  });
});

test('@egress/cli installs no demo stand-ins', () => {
  const cli = published.find(({ manifest }) => manifest.name === '@egress/cli')!.manifest;
  for (const standIn of ['s3rver', 'smtp-server', 'better-sqlite3']) expect(Object.keys(cli.dependencies ?? {})).not.toContain(standIn);
});
