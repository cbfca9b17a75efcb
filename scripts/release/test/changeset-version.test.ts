import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, expect, test } from 'vitest';

const repositoryRoot = resolve(import.meta.dirname, '../../..');
const changesetBin = join(repositoryRoot, 'node_modules', '.bin', 'changeset');
const scratchFolders: string[] = [];

afterAll(() => {
  for (const folder of scratchFolders) rmSync(folder, { recursive: true, force: true });
});

/**
 * A scratch copy of the repository's tracked files (the working tree's version of them), holding
 * only the given changesets, or the repository's own when none are given.
 */
function scratchRepository(changesets?: Record<string, string>, configure?: (config: Record<string, unknown>) => void): string {
  const folder = mkdtempSync(join(tmpdir(), 'egress-changeset-'));
  scratchFolders.push(folder);
  const files = execFileSync('git', ['ls-files', '-co', '--exclude-standard'], { cwd: repositoryRoot, encoding: 'utf8' }).split('\n').filter(Boolean);
  for (const file of files) {
    if (!file.endsWith('package.json') && !file.startsWith('.changeset/') && file !== 'pnpm-workspace.yaml') continue;
    if (changesets && file.startsWith('.changeset/') && file.endsWith('.md') && !file.endsWith('README.md')) continue;
    try {
      cpSync(join(repositoryRoot, file), join(folder, file), { recursive: false });
    } catch (error) {
      // A file deleted in the working tree but still tracked is not part of the copy.
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  for (const [name, content] of Object.entries(changesets ?? {})) writeFileSync(join(folder, '.changeset', `${name}.md`), content);
  if (configure) {
    const configPath = join(folder, '.changeset', 'config.json');
    const config = JSON.parse(readFileSync(configPath, 'utf8')) as Record<string, unknown>;
    configure(config);
    writeFileSync(configPath, JSON.stringify(config, null, 2));
  }
  return folder;
}

function versionsAfterChangesetVersion(folder: string): Record<string, string> {
  execFileSync(changesetBin, ['version'], { cwd: folder, stdio: ['ignore', 'ignore', 'pipe'] });
  const versions: Record<string, string> = {};
  for (const group of ['packages', 'adapters']) {
    for (const entry of readdirSync(join(folder, group))) {
      const manifest = JSON.parse(readFileSync(join(folder, group, entry, 'package.json'), 'utf8')) as { name: string; version: string };
      versions[manifest.name] = manifest.version;
    }
  }
  return versions;
}

function currentVersions(): Record<string, string> {
  const versions: Record<string, string> = {};
  for (const group of ['packages', 'adapters']) {
    for (const entry of readdirSync(join(repositoryRoot, group))) {
      try {
        const manifest = JSON.parse(readFileSync(join(repositoryRoot, group, entry, 'package.json'), 'utf8')) as { name: string; version: string };
        versions[manifest.name] = manifest.version;
      } catch {
        // A folder without a manifest is not a package.
      }
    }
  }
  return versions;
}

function bumped(version: string, level: 'minor' | 'patch'): string {
  const [major, minor, patch] = version.split('.').map(Number) as [number, number, number];
  return level === 'minor' ? `${major}.${minor + 1}.0` : `${major}.${minor}.${patch + 1}`;
}

const changeset = (releases: Record<string, 'minor' | 'patch'>, summary: string) =>
  `---\n${Object.entries(releases).map(([name, level]) => `"${name}": ${level}`).join('\n')}\n---\n\n${summary}\n`;

test('a minor release of core bumps core alone: adapters, stores, testkit, CLI and demo keep their versions', () => {
  const before = currentVersions();
  const after = versionsAfterChangesetVersion(scratchRepository({ 'core-feature': changeset({ '@egress/core': 'minor' }, 'A new option.') }));
  expect(after['@egress/core']).toBe(bumped(before['@egress/core']!, 'minor'));
  for (const [name, version] of Object.entries(before)) if (name !== '@egress/core') expect(after[name], name).toBe(version);
}, 60_000);

test('a patch of core and a minor release of one adapter bump exactly those two', () => {
  const before = currentVersions();
  const after = versionsAfterChangesetVersion(
    scratchRepository({ 'core-fix': changeset({ '@egress/core': 'patch' }, 'A fix.'), 'http-feature': changeset({ '@egress/http': 'minor' }, 'A new http option.') }),
  );
  expect(after['@egress/core']).toBe(bumped(before['@egress/core']!, 'patch'));
  expect(after['@egress/http']).toBe(bumped(before['@egress/http']!, 'minor'));
  for (const [name, version] of Object.entries(before)) if (name !== '@egress/core' && name !== '@egress/http') expect(after[name], name).toBe(version);
}, 60_000);

test('without onlyUpdatePeerDependentsWhenOutOfRange, the same minor of core would force a major release of every peer', () => {
  const before = currentVersions();
  const after = versionsAfterChangesetVersion(
    scratchRepository({ 'core-feature': changeset({ '@egress/core': 'minor' }, 'A new option.') }, (config) => delete config.___experimentalUnsafeOptions_WILL_CHANGE_IN_PATCH),
  );
  expect(before['@egress/http']!.startsWith('0.')).toBe(true);
  expect(after['@egress/http']).toBe('1.0.0');
}, 60_000);

test('the changesets waiting in the repository release every package below 1.0.0, each at most one minor up', () => {
  const before = currentVersions();
  const after = versionsAfterChangesetVersion(scratchRepository());
  for (const [name, version] of Object.entries(after)) {
    expect(version, name).toMatch(/^0\.\d+\.\d+$/);
    expect([before[name], bumped(before[name]!, 'patch'), bumped(before[name]!, 'minor')], name).toContain(version);
  }
}, 60_000);

test('changeset version keeps the wide workspace ranges on core', () => {
  const folder = scratchRepository({ 'core-feature': changeset({ '@egress/core': 'minor' }, 'A new option.') });
  versionsAfterChangesetVersion(folder);
  const manifest = JSON.parse(readFileSync(join(folder, dirname('adapters/http/package.json'), 'package.json'), 'utf8')) as { peerDependencies: Record<string, string> };
  expect(manifest.peerDependencies['@egress/core']).toBe('workspace:>=0.1.0 <1');
}, 60_000);
