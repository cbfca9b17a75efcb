import { randomBytes } from 'node:crypto';
import { testDatabaseUrl } from '@egress/testkit';
import pg from 'pg';

/** The test database, or undefined (with a message saying why) when none is configured outside CI. */
export const postgresUrl = testDatabaseUrl('postgres');

/** A schema name no other test run uses: several people share the test database. */
export function randomSchema(): string {
  return `egress_test_${randomBytes(6).toString('hex')}`;
}

/** Runs one statement on a connection of its own, outside any store. */
export async function query<Row extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<Row[]> {
  const client = new pg.Client({ connectionString: postgresUrl });
  await client.connect();
  try {
    return (await client.query<Row>(text, values)).rows;
  } finally {
    await client.end();
  }
}

export async function dropSchemas(schemas: Iterable<string>): Promise<void> {
  for (const schema of schemas) await query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
}
