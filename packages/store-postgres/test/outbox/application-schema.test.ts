import { EgressConfigurationError } from '@egress/core';
import { afterAll, describe, expect, test } from 'vitest';
import { postgresStore } from '../../src/index.js';
import { dropSchemas, postgresUrl, query, randomSchema } from '../postgres-test-schema.js';

const connectionString = postgresUrl!;
const schemas: string[] = [];

/** A schema the application already uses: it holds the application's own tables. */
async function applicationSchema(...tables: string[]): Promise<string> {
  const schema = randomSchema();
  schemas.push(schema);
  await query(`CREATE SCHEMA "${schema}"`);
  for (const table of tables) await query(`CREATE TABLE "${schema}"."${table}" (id integer PRIMARY KEY)`);
  return schema;
}

async function openFails(options: Parameters<typeof postgresStore>[0]): Promise<unknown> {
  const store = postgresStore(options);
  try {
    await store.open();
    return undefined;
  } catch (error) {
    return error;
  } finally {
    await store.close();
  }
}

afterAll(() => dropSchemas(schemas));

describe.skipIf(!postgresUrl)('the queue in the application’s own schema', () => {
  test('with a table prefix its tables go beside the application’s, which stay untouched', async () => {
    const schema = await applicationSchema('orders', 'events', 'migrations');
    const store = postgresStore({ connectionString, schema, tablePrefix: 'egress_' });
    await store.open();
    await store.close();
    const tables = await query<{ name: string }>(`SELECT tablename AS name FROM pg_tables WHERE schemaname = $1 ORDER BY 1`, [schema]);
    expect(tables.map((row) => row.name)).toEqual(['egress_batches', 'egress_counters', 'egress_dead_letters', 'egress_events', 'egress_migrations', 'egress_partition_states', 'egress_partitions', 'egress_producers', 'events', 'migrations', 'orders']);
    // Opened again, it finds its own tables and migrates nothing.
    const again = postgresStore({ connectionString, schema, tablePrefix: 'egress_' });
    await again.open();
    await again.close();
  });

  test('without a prefix a schema holding other tables is refused, and the error points at tablePrefix', async () => {
    const schema = await applicationSchema('orders');
    const error = await openFails({ connectionString, schema });
    expect(EgressConfigurationError.isInstance(error)).toBe(true);
    expect((error as Error).message).toMatch(/does not belong to @egress\/store-postgres.*tablePrefix/);
  });

  test('a prefix whose names are taken by the application is refused, naming them, and nothing is created', async () => {
    const schema = await applicationSchema('orders', 'app_events');
    const error = await openFails({ connectionString, schema, tablePrefix: 'app_' });
    expect((error as Error).message).toContain('already holds app_events');
    const tables = await query<{ name: string }>(`SELECT tablename AS name FROM pg_tables WHERE schemaname = $1 ORDER BY 1`, [schema]);
    expect(tables.map((row) => row.name)).toEqual(['app_events', 'orders']);
  });

  test('bad prefixes are refused when the store is created', () => {
    expect(() => postgresStore({ connectionString, tablePrefix: '1st_' })).toThrow(/option "tablePrefix"/);
    expect(() => postgresStore({ connectionString, tablePrefix: 'a"b' })).toThrow(/letters, digits and underscores/);
    expect(() => postgresStore({ connectionString, schema: 'a'.repeat(40), tablePrefix: 'b'.repeat(15) })).toThrow(/at most 49 characters/);
  });
});
