import { EgressConfigurationError } from '@egress/core';
import type { PoolClient } from 'pg';
import { advisoryClassId, type SchemaNames } from './schema-names.js';

interface Migration {
  readonly version: number;
  /** What the step does, named in the error when it fails. */
  readonly description: string;
  readonly statements: (names: SchemaNames) => readonly string[];
}

/**
 * The schema, one step per version. Steps are only ever appended: a database migrated by a newer
 * release carries versions this list does not know, and `migrate` refuses to touch it.
 */
const migrations: readonly Migration[] = [
  {
    version: 1,
    description: 'create the queue tables',
    statements: ({ table, sequence, index }) => [
      `CREATE SEQUENCE ${sequence('event_seq')}`,
      `CREATE SEQUENCE ${sequence('serve_seq')}`,
      // When each partition was last served, for round-robin; a partition without a row goes first.
      `CREATE TABLE ${table('partitions')} (
        destination text NOT NULL,
        partition text NOT NULL,
        served_at bigint NOT NULL DEFAULT 0,
        PRIMARY KEY (destination, partition)
      )`,
      `CREATE TABLE ${table('events')} (
        seq bigint NOT NULL DEFAULT nextval('${sequence('event_seq')}') PRIMARY KEY,
        id text NOT NULL UNIQUE,
        destination text NOT NULL,
        partition text NOT NULL,
        payload text NOT NULL,
        size integer NOT NULL,
        sent_at bigint NOT NULL,
        attempts integer NOT NULL DEFAULT 0,
        batch_id text
      )`,
      `CREATE INDEX ${index('events_waiting')} ON ${table('events')} (destination, partition, seq) WHERE batch_id IS NULL`,
      `CREATE INDEX ${index('events_batch')} ON ${table('events')} (batch_id) WHERE batch_id IS NOT NULL`,
      `CREATE TABLE ${table('batches')} (
        id text PRIMARY KEY,
        destination text NOT NULL,
        partition text NOT NULL,
        first_seq bigint NOT NULL,
        available_at bigint NOT NULL,
        lease_until bigint,
        lease_token text,
        owner text
      )`,
      `CREATE INDEX ${index('batches_partition')} ON ${table('batches')} (destination, partition, first_seq)`,
      // When a formed batch is ready again: its lease's end while leased, else its retry time.
      `CREATE INDEX ${index('batches_ready')} ON ${table('batches')} (destination, partition, (coalesce(lease_until, available_at)))`,
      `CREATE TABLE ${table('dead_letters')} (
        id text PRIMARY KEY,
        destination text NOT NULL,
        partition text NOT NULL,
        payload text NOT NULL,
        size integer NOT NULL,
        sent_at bigint NOT NULL,
        attempts integer NOT NULL,
        error_name text NOT NULL,
        error_message text NOT NULL,
        error_at bigint NOT NULL,
        dead_at bigint NOT NULL
      )`,
      `CREATE INDEX ${index('dead_letters_destination')} ON ${table('dead_letters')} (destination, id)`,
    ],
  },
  {
    version: 2,
    description: 'create the delivered and failed counters',
    statements: ({ table }) => [
      // Totals per partition, added to in each settlement's transaction; they outlive the partition's events.
      `CREATE TABLE ${table('counters')} (
        destination text NOT NULL,
        partition text NOT NULL,
        delivered bigint NOT NULL DEFAULT 0,
        failed bigint NOT NULL DEFAULT 0,
        PRIMARY KEY (destination, partition)
      )`,
    ],
  },
  {
    version: 3,
    description: 'index formed batches by the time they are due',
    // Single-event claims lease due batches across every partition of a destination at once.
    statements: ({ table, index }) => [`CREATE INDEX ${index('batches_due')} ON ${table('batches')} (destination, (coalesce(lease_until, available_at)))`],
  },
  {
    version: 4,
    description: 'record each producer\'s last enqueue write; spread each partition\'s counters over slots',
    statements: ({ table, index }) => [
      // An enqueue is one statement that also records its write number here, so that a write whose
      // answer was lost can be looked up afterwards (and fenced off, should it still be running).
      `CREATE TABLE ${table('producers')} (
        producer text PRIMARY KEY,
        last_write bigint NOT NULL DEFAULT 0,
        fence bigint NOT NULL DEFAULT 0,
        written_at bigint NOT NULL
      )`,
      // Each worker adds to the row of its own slot, so that workers settling batches of one
      // partition do not queue for one row lock; a partition's totals are the sum of its rows.
      `ALTER TABLE ${table('counters')} ADD COLUMN slot smallint NOT NULL DEFAULT 0`,
      // The primary key's name is PostgreSQL's default for the table, prefix included.
      `ALTER TABLE ${table('counters')} DROP CONSTRAINT ${index('counters_pkey')}`,
      `ALTER TABLE ${table('counters')} ADD PRIMARY KEY (destination, partition, slot)`,
    ],
  },
  {
    version: 5,
    description: "keep each event's trace context",
    // What `Tracing.sent` returned at the send, NULL when tracing is off; a nullable column without a default rewrites no rows.
    statements: ({ table }) => [`ALTER TABLE ${table('events')} ADD COLUMN trace text`, `ALTER TABLE ${table('dead_letters')} ADD COLUMN trace text`],
  },
  {
    version: 6,
    description: 'create the partition states',
    statements: ({ table }) => [
      // Partitions paused by the circuit breaker or disabled; claims skip them, so every worker sharing the schema obeys.
      `CREATE TABLE ${table('partition_states')} (
        destination text NOT NULL,
        partition text NOT NULL,
        state text NOT NULL CHECK (state IN ('paused', 'disabled')),
        since bigint NOT NULL,
        probe_at bigint NOT NULL,
        failures integer NOT NULL,
        reason text NOT NULL,
        PRIMARY KEY (destination, partition)
      )`,
    ],
  },
];

/** Every version this release knows, in order. */
export const schemaVersions: readonly number[] = migrations.map((migration) => migration.version);

/** The schema version this release writes and understands. */
export const SCHEMA_VERSION = migrations[migrations.length - 1]!.version;

/** Tables the store reads and writes at run time, with the rights it needs on each. */
export const runtimeTables = ['partitions', 'events', 'batches', 'dead_letters', 'counters', 'producers', 'partition_states'] as const;
const runtimeSequences = ['event_seq', 'serve_seq'] as const;

/** Every table, sequence and index the migrations create, by unprefixed name. */
const ownRelations = [
  'migrations',
  ...runtimeTables,
  ...runtimeSequences,
  'events_waiting',
  'events_batch',
  'batches_partition',
  'batches_ready',
  'batches_due',
  'dead_letters_destination',
] as const;

/**
 * Creates or upgrades the schema under a transaction-scoped advisory lock, so several processes
 * opening at once migrate it exactly once. A schema already at the current version is only read,
 * so a role with data rights alone (no CREATE) can open a schema an administrator migrated.
 */
export async function migrate(client: PoolClient, names: SchemaNames): Promise<void> {
  const where = names.prefix === '' ? `[postgres] schema "${names.schema}"` : `[postgres] schema "${names.schema}", table prefix "${names.prefix}"`;
  const step = async <T>(what: string, action: () => Promise<T>): Promise<T> => {
    try {
      return await action();
    } catch (error) {
      if (EgressConfigurationError.isInstance(error)) throw error;
      throw new EgressConfigurationError(`cannot ${what}: ${describe(error)}`, where, { cause: error });
    }
  };

  await step('begin the migration transaction', () => client.query('BEGIN'));
  try {
    await step('take the migration lock (pg_advisory_xact_lock)', () => client.query('SELECT pg_advisory_xact_lock($1, 0)', [advisoryClassId(names.scope)]));
    const found = await step('read the catalog', () =>
      client.query<{ schema_exists: boolean; usage: boolean | null; migrations_exists: boolean }>(
        `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1) AS schema_exists,
                (SELECT has_schema_privilege(oid, 'USAGE') FROM pg_namespace WHERE nspname = $1) AS usage,
                EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2) AS migrations_exists`,
        [names.schema, names.relation('migrations')],
      ),
    );
    const { schema_exists: schemaExists, usage, migrations_exists: migrationsExists } = found.rows[0]!;
    if (schemaExists && usage === false) {
      throw new EgressConfigurationError(`the role ${await currentRole(client)} has no USAGE privilege on the schema; grant it (GRANT USAGE ON SCHEMA ${names.quoted} TO ...) or use another schema`, where);
    }
    if (schemaExists && !migrationsExists && names.prefix === '') {
      const tables = await client.query<{ count: string }>(`SELECT count(*) AS count FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1`, [names.schema]);
      if (Number(tables.rows[0]!.count) > 0) {
        throw new EgressConfigurationError(
          'the schema exists and holds objects but no migrations table: it does not belong to @egress/store-postgres; choose another schema name, or give a "tablePrefix" to keep the queue beside the objects already there. Nothing was changed',
          where,
        );
      }
    }
    if (schemaExists && !migrationsExists && names.prefix !== '') {
      // In a schema shared with the application, only names the store would create must be free.
      const taken = await client.query<{ name: string }>(
        `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = ANY($2::text[]) ORDER BY 1`,
        [names.schema, ownRelations.map((name) => names.relation(name))],
      );
      if (taken.rows.length > 0) {
        throw new EgressConfigurationError(
          `the schema already holds ${taken.rows.map((row) => row.name).join(', ')} but no ${names.relation('migrations')} table: they do not belong to @egress/store-postgres; choose another table prefix, nothing was changed`,
          where,
        );
      }
    }
    let current = 0;
    if (migrationsExists) {
      const read = await step(`read ${names.table('migrations')}`, () => client.query<{ version: number | null }>(`SELECT max(version) AS version FROM ${names.table('migrations')}`));
      current = read.rows[0]!.version ?? 0;
    }
    if (current > SCHEMA_VERSION) {
      throw new EgressConfigurationError(
        `the schema is at version ${current}, written by a newer @egress/store-postgres; this release knows versions up to ${SCHEMA_VERSION}. Upgrade the package (nothing was changed)`,
        where,
      );
    }
    if (current < SCHEMA_VERSION) {
      if (!schemaExists) await step(`create the schema (CREATE SCHEMA ${names.quoted})`, () => client.query(`CREATE SCHEMA ${names.quoted}`));
      if (!migrationsExists) {
        await step(`create ${names.table('migrations')}`, () =>
          client.query(`CREATE TABLE ${names.table('migrations')} (version integer PRIMARY KEY, description text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`),
        );
      }
      for (const migration of migrations) {
        if (migration.version <= current) continue;
        for (const statement of migration.statements(names)) {
          await step(`apply migration ${migration.version} (${migration.description})`, () => client.query(statement));
        }
        await step(`record migration ${migration.version}`, () =>
          client.query(`INSERT INTO ${names.table('migrations')} (version, description) VALUES ($1, $2)`, [migration.version, migration.description]),
        );
      }
    }
    const missing = await step('check table privileges', () =>
      client.query<{ name: string }>(
        `SELECT name FROM unnest($1::text[]) AS name WHERE NOT has_table_privilege(quote_ident($2) || '.' || quote_ident(name), 'SELECT, INSERT, UPDATE, DELETE')`,
        [runtimeTables.map((name) => names.relation(name)), names.schema],
      ),
    );
    const sequences = await step('check sequence privileges', () =>
      client.query<{ name: string }>(
        `SELECT name FROM unnest($1::text[]) AS name WHERE NOT has_sequence_privilege(quote_ident($2) || '.' || quote_ident(name), 'USAGE, SELECT')`,
        [runtimeSequences.map((name) => names.relation(name)), names.schema],
      ),
    );
    if (missing.rows.length > 0 || sequences.rows.length > 0) {
      throw new EgressConfigurationError(
        `the role ${await currentRole(client)} lacks ${[
          ...missing.rows.map((row) => `SELECT, INSERT, UPDATE or DELETE on ${names.quoted}."${row.name}"`),
          ...sequences.rows.map((row) => `USAGE or SELECT on the sequence ${names.quoted}."${row.name}"`),
        ].join('; ')}`,
        where,
      );
    }
    await step('commit the migration', () => client.query('COMMIT'));
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

async function currentRole(client: PoolClient): Promise<string> {
  try {
    const result = await client.query<{ role: string }>('SELECT current_user AS role');
    return `"${result.rows[0]!.role}"`;
  } catch {
    return 'in use';
  }
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string' ? `${error.message} (SQLSTATE ${code})` : error.message;
  }
  return String(error);
}
