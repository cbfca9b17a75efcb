// Runs one benchmark (`pnpm bench http`) or all of them (`pnpm bench`): every `bench/*.bench.ts`,
// through tsx. @egress/* resolve to the packages' builds (see bench/tsconfig.json); `pnpm bench` builds them first.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const wanted = process.argv.slice(2);
const available = readdirSync(here).filter((file) => file.endsWith('.bench.ts')).map((file) => file.replace(/\.bench\.ts$/, ''));
const selected = wanted.length > 0 ? wanted : available;
for (const name of selected) {
  if (!available.includes(name)) {
    console.error(`no benchmark named "${name}" (available: ${available.join(', ') || 'none'})`);
    process.exit(2);
  }
}
for (const name of selected) {
  console.log(`\n== ${name} ==`);
  const result = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', join(here, `${name}.bench.ts`)], {
    stdio: 'inherit',
    cwd: here,
    env: { ...process.env, TSX_TSCONFIG_PATH: join(here, 'tsconfig.json') },
  });
  if (result.status !== 0) process.exit(result.status ?? 1);
}
