import { randomBytes } from 'node:crypto';
import { createBatchId, createEventId, EgressConfigurationError, EgressStoreUnavailableError } from '@egress/core';
import { afterAll, describe, expect, test } from 'vitest';
import { postgresStore, SCHEMA_VERSION } from '../src/index.js';
import { schemaVersions } from '../src/schema-migrations.js';
import { dropSchemas, postgresUrl, query, randomSchema } from './postgres-test-schema.js';

const created = new Set<string>();
const roles = new Set<string>();

async function openError(options: Parameters<typeof postgresStore>[0]): Promise<Error> {
  const store = postgresStore(options);
  try {
    await store.open();
  } catch (error) {
    return error as Error;
  } finally {
    await store.close();
  }
  throw new Error('open() succeeded');
}

/** A login role that may connect to the test database and nothing more (the server trusts local logins). */
/** A fresh schema created and migrated by the owner role, as an administrator would before handing it over. */
async function schemaMigratedByOwner(): Promise<string> {
  const schema = randomSchema();
  created.add(schema);
  const owner = postgresStore({ connectionString: postgresUrl!, schema });
  await owner.open();
  await owner.close();
  return schema;
}

async function roleWithoutRights(): Promise<{ role: string; url: string }> {
  const role = `egress_test_role_${randomBytes(5).toString('hex')}`;
  roles.add(role);
  await query(`CREATE ROLE "${role}" LOGIN`);
  const url = new URL(postgresUrl!);
  url.username = role;
  url.password = '';
  return { role, url: url.toString() };
}

describe.skipIf(!postgresUrl)('postgres store schema', () => {
  afterAll(async () => {
    await dropSchemas(created);
    for (const role of roles) {
      await query(`DROP OWNED BY "${role}"`);
      await query(`DROP ROLE IF EXISTS "${role}"`);
    }
  });

  test('several processes opening at once create the schema exactly once', async () => {
    const schema = randomSchema();
    created.add(schema);
    const stores = Array.from({ length: 5 }, () => postgresStore({ connectionString: postgresUrl!, schema }));
    await Promise.all(stores.map((store) => store.open()));
    await Promise.all(stores.map((store) => store.close()));
    const versions = await query<{ version: number }>(`SELECT version FROM "${schema}".migrations ORDER BY version`);
    expect(versions.map((row) => row.version)).toEqual(schemaVersions);
  });

  test('migrates a version-1 schema: its events stay and settlements are counted from then on', async () => {
    const schema = randomSchema();
    created.add(schema);
    const first = postgresStore({ connectionString: postgresUrl!, schema });
    await first.open();
    const events = Array.from({ length: 3 }, () => ({ id: createEventId(), destination: 'd', partition: 'p', payload: '{}', size: 2, sentAt: 1_000, attempts: 0 }));
    await first.enqueue(events);
    await first.close();
    // A version-1 schema is the current one without the counters table (version 2), the batches_due index (version 3), the producers table (version 4), the trace columns (version 5) and the partition states (version 6).
    await query(`DROP TABLE "${schema}".counters`);
    await query(`DROP TABLE "${schema}".producers`);
    await query(`DROP TABLE "${schema}".partition_states`);
    await query(`DROP INDEX "${schema}".batches_due`);
    await query(`ALTER TABLE "${schema}".events DROP COLUMN trace`);
    await query(`ALTER TABLE "${schema}".dead_letters DROP COLUMN trace`);
    await query(`DELETE FROM "${schema}".migrations WHERE version > 1`);

    const store = postgresStore({ connectionString: postgresUrl!, schema });
    await store.open();
    try {
      const { batches } = await store.claim({
        destination: 'd', now: 2_000, owner: 'test', maxBatches: 1, maxEvents: 10, maxBytes: 1_000_000, maxDelay: 0, force: false, fifo: false, leaseMs: 30_000,
      });
      const [delivered, retried, dead] = batches[0]!.events;
      const error = { name: 'RetryableError', message: 'busy', at: 2_000 };
      await store.settle(batches[0]!, {
        delivered: [delivered!.id],
        retry: { batchId: createBatchId('d', [retried!.id]), eventIds: [retried!.id], availableAt: 3_000, error },
        dead: [{ eventId: dead!.id, error }],
      });
    } finally {
      await store.close();
    }
    const versions = await query<{ version: number }>(`SELECT version FROM "${schema}".migrations ORDER BY version`);
    expect(versions.map((row) => row.version)).toEqual(schemaVersions);
    const counters = await query<{ delivered: string; failed: string }>(`SELECT sum(delivered)::text AS delivered, sum(failed)::text AS failed FROM "${schema}".counters WHERE destination = 'd' AND partition = 'p'`);
    expect(counters).toEqual([{ delivered: '1', failed: '2' }]);
    const traceColumns = await query<{ table_name: string }>(`SELECT table_name FROM information_schema.columns WHERE table_schema = $1 AND column_name = 'trace' ORDER BY table_name`, [schema]);
    expect(traceColumns.map((row) => row.table_name)).toEqual(['dead_letters', 'events']);
  });

  test('refuses a schema written by a newer release and changes nothing', async () => {
    const schema = randomSchema();
    created.add(schema);
    const first = postgresStore({ connectionString: postgresUrl!, schema });
    await first.open();
    const id = createEventId();
    await first.enqueue([{ id, destination: 'd', partition: '', payload: '{}', size: 2, sentAt: Date.now(), attempts: 0 }]);
    await first.close();
    await query(`INSERT INTO "${schema}".migrations (version, description) VALUES ($1, 'from the future')`, [SCHEMA_VERSION + 1]);

    const error = await openError({ connectionString: postgresUrl!, schema });
    expect(EgressConfigurationError.isInstance(error)).toBe(true);
    expect(error.message).toContain(`[postgres] schema "${schema}"`);
    expect(error.message).toContain(`version ${SCHEMA_VERSION + 1}`);
    expect(error.message).toContain('newer @egress/store-postgres');
    const rows = await query<{ id: string }>(`SELECT id FROM "${schema}".events`);
    expect(rows.map((row) => row.id)).toEqual([id]);
  });

  test('refuses a schema that holds tables of someone else', async () => {
    const schema = randomSchema();
    created.add(schema);
    await query(`CREATE SCHEMA "${schema}"`);
    await query(`CREATE TABLE "${schema}".events (name text)`);
    const error = await openError({ connectionString: postgresUrl!, schema });
    expect(error.message).toContain('does not belong to @egress/store-postgres');
    const columns = await query<{ column_name: string }>(`SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'events'`, [schema]);
    expect(columns.map((row) => row.column_name)).toEqual(['name']);
  });

  test('a role that may not create the schema gets an error naming what failed', async () => {
    const { role, url } = await roleWithoutRights();
    const [rights] = await query<{ allowed: boolean }>(`SELECT has_database_privilege($1, current_database(), 'CREATE') AS allowed`, [role]);
    expect(rights!.allowed, 'a fresh role must not be allowed to create schemas here').toBe(false);
    const schema = randomSchema();
    const error = await openError({ connectionString: url, schema });
    expect(EgressConfigurationError.isInstance(error)).toBe(true);
    expect(error.message).toContain(`cannot create the schema (CREATE SCHEMA "${schema}")`);
    expect(error.message).toContain('permission denied');
    expect(error.message).toContain('42501');
  });

  test('a role without USAGE on an existing schema hears which privilege is missing', async () => {
    const { role, url } = await roleWithoutRights();
    const schema = await schemaMigratedByOwner();
    const error = await openError({ connectionString: url, schema });
    expect(error.message).toContain(`the role "${role}" has no USAGE privilege on the schema`);
  });

  test('a role with USAGE but no table rights hears which tables it lacks', async () => {
    const { role, url } = await roleWithoutRights();
    const schema = await schemaMigratedByOwner();
    await query(`GRANT USAGE ON SCHEMA "${schema}" TO "${role}"`);
    await query(`GRANT SELECT ON "${schema}".migrations TO "${role}"`);
    const error = await openError({ connectionString: url, schema });
    expect(error.message).toContain(`the role "${role}" lacks SELECT, INSERT, UPDATE or DELETE on "${schema}"."partitions"`);
    expect(error.message).toContain(`USAGE or SELECT on the sequence "${schema}"."event_seq"`);
  });

  test('a role with data rights alone opens a schema an administrator migrated', async () => {
    const { role, url } = await roleWithoutRights();
    const schema = await schemaMigratedByOwner();
    await query(`GRANT USAGE ON SCHEMA "${schema}" TO "${role}"`);
    await query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "${schema}" TO "${role}"`);
    await query(`GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA "${schema}" TO "${role}"`);
    const store = postgresStore({ connectionString: url, schema });
    await store.open();
    const id = createEventId();
    await store.enqueue([{ id, destination: 'd', partition: '', payload: '{}', size: 2, sentAt: Date.now(), attempts: 0 }]);
    expect(await store.eventState(id)).toBe('pending');
    await store.close();
  });

  test('an unreachable server is a retryable error at open, naming the cause and not the password', async () => {
    const error = await openError({ connectionString: 'postgres://postgres:hunter2@127.0.0.1:1/none', schema: randomSchema() });
    expect(EgressStoreUnavailableError.isInstance(error)).toBe(true);
    expect(EgressConfigurationError.isInstance(error)).toBe(false);
    expect(error.message).toContain('[postgres] PostgreSQL could not be reached');
    expect(error.message).toContain('ECONNREFUSED');
    expect(error.message).not.toContain('hunter2');
  });
});
