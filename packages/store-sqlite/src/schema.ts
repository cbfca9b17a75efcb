import { EgressConfigurationError } from '@egress/core';
import type BetterSqlite3 from 'better-sqlite3';

/** Marks a file as an Egress queue (`PRAGMA application_id`): the bytes of "Egr1". */
export const APPLICATION_ID = 0x45677231;

/** The schema this version of the package writes and reads (`PRAGMA user_version`). */
export const SCHEMA_VERSION = 4;

/** Tables a version-1 queue holds; a file claiming to be ours without them is damaged. */
const version1Tables = ['egress_meta', 'egress_queues', 'egress_events', 'egress_batches', 'egress_dead', 'egress_holders'] as const;

/** Tables a queue of each version holds. */
function tablesOfVersion(version: number): readonly string[] {
  const tables: string[] = [...version1Tables];
  if (version >= 2) tables.push('egress_counters');
  if (version >= 3) tables.push('egress_partition_states');
  return tables;
}

/**
 * Version 1.
 *
 * - `egress_queues` gives each (destination, partition) a small integer, so event rows and the
 *   waiting index carry an integer instead of repeating the partition text (often a URL).
 * - `egress_events` holds every event still to deliver, waiting (`batch IS NULL`) or in a batch.
 *   `seq` is the arrival order (the watermark), assigned from `egress_meta.last_seq` so it never
 *   goes back even when the table empties. The partial index `egress_events_waiting` is what claim
 *   reads to decide whether a partition is ready and to form batches in arrival order; it carries
 *   `sent_at`, `size` (and `batch`, always NULL there) so that decision, the counts at open and
 *   `stats()` never touch the rows and their payloads.
 * - `egress_batches` holds formed batches: leased (`leased = 1`, `ready_at` = lease expiry) or
 *   waiting for a retry or a new lease (`ready_at` = when it may be claimed). A batch keeps its id
 *   and its events across retries. `holder` is the store instance holding the lease, `lease` the
 *   token handed out with this claim, so a late settlement from an earlier lease is recognised.
 * - `egress_dead` holds dead letters with their last error.
 * - `egress_holders` lists the store instances that have the file open, so that a restart can tell
 *   leases held by a dead process from leases held by a live one.
 */
const schemaVersion1 = `
CREATE TABLE egress_meta (
  key TEXT PRIMARY KEY,
  value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO egress_meta (key, value) VALUES ('last_seq', 0);

CREATE TABLE egress_queues (
  queue INTEGER PRIMARY KEY AUTOINCREMENT,
  destination TEXT NOT NULL,
  partition TEXT NOT NULL,
  UNIQUE (destination, partition)
);

CREATE TABLE egress_events (
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL,
  queue INTEGER NOT NULL,
  payload TEXT NOT NULL,
  size INTEGER NOT NULL,
  sent_at INTEGER NOT NULL,
  attempts INTEGER NOT NULL,
  batch INTEGER
);
CREATE UNIQUE INDEX egress_events_id ON egress_events (id);
CREATE INDEX egress_events_waiting ON egress_events (queue, seq, sent_at, size, batch) WHERE batch IS NULL;
CREATE INDEX egress_events_batch ON egress_events (batch, seq, size) WHERE batch IS NOT NULL;

CREATE TABLE egress_batches (
  batch INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  queue INTEGER NOT NULL,
  first_seq INTEGER NOT NULL,
  ready_at INTEGER NOT NULL,
  leased INTEGER NOT NULL,
  holder TEXT,
  lease TEXT
);
CREATE INDEX egress_batches_ready ON egress_batches (queue, ready_at);

CREATE TABLE egress_dead (
  id TEXT NOT NULL UNIQUE,
  destination TEXT NOT NULL,
  partition TEXT NOT NULL,
  payload TEXT NOT NULL,
  size INTEGER NOT NULL,
  sent_at INTEGER NOT NULL,
  attempts INTEGER NOT NULL,
  error_name TEXT NOT NULL,
  error_message TEXT NOT NULL,
  error_at INTEGER NOT NULL,
  dead_at INTEGER NOT NULL
);
CREATE INDEX egress_dead_destination ON egress_dead (destination, id);

CREATE TABLE egress_holders (
  token TEXT PRIMARY KEY,
  host TEXT NOT NULL,
  pid INTEGER NOT NULL,
  opened_at INTEGER NOT NULL
) WITHOUT ROWID;
`;

/**
 * Version 2 adds `egress_counters`: delivered and failed totals per (destination, partition), added
 * to in each settlement's transaction. Keyed by name rather than by `egress_queues.queue`, because
 * a queue row is forgotten once its partition empties and the totals outlive it.
 */
const schemaVersion2 = `
CREATE TABLE egress_counters (
  destination TEXT NOT NULL,
  partition TEXT NOT NULL,
  delivered INTEGER NOT NULL DEFAULT 0,
  failed INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (destination, partition)
) WITHOUT ROWID;
`;

/**
 * Version 3 adds `egress_partition_states`: partitions paused by the circuit breaker or disabled,
 * kept in the file so that a restart and every process sharing it see them. Keyed by name, like
 * the counters, because the state outlives the partition's queue row.
 */
const schemaVersion3 = `
CREATE TABLE egress_partition_states (
  destination TEXT NOT NULL,
  partition TEXT NOT NULL,
  state TEXT NOT NULL,
  since INTEGER NOT NULL,
  probe_at INTEGER NOT NULL,
  failures INTEGER NOT NULL,
  reason TEXT NOT NULL,
  PRIMARY KEY (destination, partition)
) WITHOUT ROWID;
`;

/**
 * Version 4 adds `trace` to events and dead letters: the trace context of the event's `send` (see
 * `Tracing` in @egress/core), NULL when tracing is off. Adding a nullable column rewrites no rows.
 */
const schemaVersion4 = `
ALTER TABLE egress_events ADD COLUMN trace TEXT;
ALTER TABLE egress_dead ADD COLUMN trace TEXT;
`;

/** The steps from each version to the next: `migrations[n]` takes a version-n file to n + 1. */
const migrations: Record<number, string> = { 1: schemaVersion2, 2: schemaVersion3, 3: schemaVersion4 };

/** What a file holds before anything is written to it. */
export type DatabaseIdentity =
  | { kind: 'empty' }
  | { kind: 'ours'; version: number }
  | { kind: 'foreign'; applicationId: number; tables: string[] };

/** Reads, without writing anything, whether the file is empty, ours (and which version) or someone else's. */
export function identifyDatabase(database: BetterSqlite3.Database): DatabaseIdentity {
  const applicationId = database.pragma('application_id', { simple: true }) as number;
  const version = database.pragma('user_version', { simple: true }) as number;
  const tables = (database.prepare("SELECT name FROM sqlite_schema WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name").all() as { name: string }[]).map(
    (row) => row.name,
  );
  if (applicationId === APPLICATION_ID) return { kind: 'ours', version };
  if (applicationId === 0 && version === 0 && tables.length === 0) return { kind: 'empty' };
  return { kind: 'foreign', applicationId, tables };
}

/** Version 1 and every step after it: the tables of the current version, in a file without them. */
function createCurrentTables(database: BetterSqlite3.Database): void {
  database.exec(schemaVersion1);
  for (let version = 1; version < SCHEMA_VERSION; version += 1) database.exec(migrations[version]!);
}

/** Creates the current schema in an empty file, in one transaction. */
export function createSchema(database: BetterSqlite3.Database): void {
  database.transaction(() => {
    createCurrentTables(database);
    database.pragma(`application_id = ${APPLICATION_ID}`);
    database.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}

/**
 * Brings a file of an older version up to the current one, in one transaction. The version is read
 * again under the write lock, so two processes opening the same old file migrate it once.
 */
export function migrateSchema(database: BetterSqlite3.Database): void {
  database.transaction(() => {
    let version = database.pragma('user_version', { simple: true }) as number;
    while (version < SCHEMA_VERSION) {
      database.exec(migrations[version]!);
      version += 1;
    }
    database.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}

/** Tables of the given version missing from a file that says it is ours. */
export function missingTables(database: BetterSqlite3.Database, version: number): string[] {
  const present = new Set((database.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'").all() as { name: string }[]).map((row) => row.name));
  return tablesOfVersion(version).filter((table) => !present.has(table));
}

/** Where the schema version is kept when the queue's tables live in the application's database. */
const sharedVersionKey = 'schema_version';

/**
 * Creates or migrates the queue's tables inside the application's own database. The file's
 * `application_id` and `user_version` are the application's (migration tools use them), so the
 * version is kept in `egress_meta` instead, and the application's tables are left alone.
 */
export function prepareSharedSchema(database: BetterSqlite3.Database, where: string): void {
  database.transaction(() => {
    const present = (database.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name = 'egress_meta'").get() as { name: string } | undefined) !== undefined;
    if (!present) {
      createCurrentTables(database);
      database.prepare('INSERT INTO egress_meta (key, value) VALUES (?, ?)').run(sharedVersionKey, SCHEMA_VERSION);
      return;
    }
    const row = database.prepare('SELECT value FROM egress_meta WHERE key = ?').get(sharedVersionKey) as { value: number } | undefined;
    if (row === undefined) {
      throw new EgressConfigurationError('holds egress_ tables without a schema version: it is a queue file of its own; open it with { path } instead of { database }', where);
    }
    if (row.value > SCHEMA_VERSION) {
      throw new EgressConfigurationError(
        `holds queue tables written by a newer @egress/store-sqlite (schema version ${row.value}; this version reads up to ${SCHEMA_VERSION}); upgrade @egress/store-sqlite. Nothing was changed`,
        where,
      );
    }
    for (let version = row.value; version < SCHEMA_VERSION; version += 1) database.exec(migrations[version]!);
    database.prepare('UPDATE egress_meta SET value = ? WHERE key = ?').run(SCHEMA_VERSION, sharedVersionKey);
  }).immediate();
}
