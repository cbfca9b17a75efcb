import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { defineConfig } from 'vitest/config';

/**
 * Tests run against each package's sources, not its build: every workspace package name resolves
 * to its `src/index.ts` (and `@egress/x/sub` to `src/sub.ts`), so `pnpm test` needs no build step.
 */
function workspaceSourceAliases() {
  const aliases: { find: RegExp; replacement: string }[] = [];
  for (const group of ['packages', 'adapters']) {
    if (!existsSync(group)) continue;
    for (const folder of readdirSync(group)) {
      const manifest = join(group, folder, 'package.json');
      if (!existsSync(manifest)) continue;
      const { name } = JSON.parse(readFileSync(manifest, 'utf8')) as { name: string };
      const source = resolve(group, folder, 'src');
      const escaped = name.replace(/[/.]/g, '\\$&');
      aliases.push({ find: new RegExp(`^${escaped}$`), replacement: join(source, 'index.ts') });
      aliases.push({ find: new RegExp(`^${escaped}/(.+)$`), replacement: join(source, '$1.ts') });
    }
  }
  return aliases;
}

export default defineConfig({
  resolve: { alias: workspaceSourceAliases() },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'adapters/*/test/**/*.test.ts', 'docs/**/*.test.ts', 'examples/*/test/**/*.test.ts', 'scripts/release/test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
