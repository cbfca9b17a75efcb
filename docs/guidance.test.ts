import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';

const page = (name: string) => readFileSync(join(import.meta.dirname, name), 'utf8');

/** The sections of a page, by their `## ` heading. */
function sections(text: string): Map<string, string> {
  const found = new Map<string, string>();
  for (const part of text.split(/^## /m).slice(1)) found.set(part.split('\n')[0]!, part);
  return found;
}

test('the deployment guide never sets producers and `egress worker` on one SQLite file, which the store warns is for one process', () => {
  const text = page('deployment.md');
  expect(text).toMatch(/\| SQLite \| `@egress\/store-sqlite` \| yes \| no: one process at a time \|/);
  for (const [heading, section] of sections(text)) {
    if (!/egress worker -c/.test(section)) continue;
    expect(section, heading).not.toMatch(/kind: sqlite|sqliteStore/);
    expect(section, heading).toMatch(/PostgreSQL|kind: postgres/);
  }
});

test('the SQL destination page shows a SQLite connection, as a program the docs test runs', () => {
  const text = page('destinations/sql.md');
  const runnable = [...text.matchAll(/^```ts runnable\n([\s\S]*?)^```/gm)].map((match) => match[1]!);
  expect(runnable.some((code) => code.includes("client: 'better-sqlite3'") && code.includes('useNullAsDefault: true'))).toBe(true);
  expect(text).toMatch(/client: 'mysql2'/);
});
