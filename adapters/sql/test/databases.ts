import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testDatabaseUrl } from '@egress/testkit';
import knexFactory, { type Knex } from 'knex';

/** One database the tests run against, with its own connection for reading back what arrived. */
export interface TestDatabase {
  readonly name: 'postgresql' | 'mysql' | 'sqlite';
  /** A knex configuration for the destination under test (its own pool). */
  config(overrides?: Partial<Knex.Config>): Knex.Config;
  /** The tests' own connection: rows are read back with plain queries, never through the adapter. */
  readonly reader: Knex;
  /** Rows of a table, oldest event first. */
  rows(table: string): Promise<Record<string, unknown>[]>;
  /** Column name → type as the database reports it (lower case). */
  columnTypes(table: string): Promise<Record<string, string>>;
  dropTable(table: string): Promise<void>;
  close(): Promise<void>;
}

/** A table name no other test run uses. */
export function uniqueTable(label: string): string {
  return `egress_sql_${label}_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
}

export function postgresDatabase(): TestDatabase | undefined {
  const url = testDatabaseUrl('postgres');
  if (!url) return undefined;
  const config = (overrides: Partial<Knex.Config> = {}): Knex.Config => ({ client: 'pg', connection: url, pool: { min: 0, max: 4 }, ...overrides });
  const reader = knexFactory(config());
  return {
    name: 'postgresql',
    config,
    reader,
    async rows(table) {
      return (await reader.raw(`SELECT * FROM ?? ORDER BY "_egress_event_id"`, [table])).rows;
    },
    async columnTypes(table) {
      const result = await reader.raw('SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ?', [table]);
      return Object.fromEntries(result.rows.map((row: { column_name: string; data_type: string }) => [row.column_name, row.data_type.toLowerCase()]));
    },
    async dropTable(table) {
      await reader.raw('DROP TABLE IF EXISTS ??', [table]);
    },
    close: () => reader.destroy(),
  };
}

export function mysqlDatabase(): TestDatabase | undefined {
  const url = testDatabaseUrl('mysql');
  if (!url) return undefined;
  const config = (overrides: Partial<Knex.Config> = {}): Knex.Config => ({ client: 'mysql2', connection: url, pool: { min: 0, max: 4 }, ...overrides });
  const reader = knexFactory(config());
  return {
    name: 'mysql',
    config,
    reader,
    async rows(table) {
      const [rows] = await reader.raw('SELECT * FROM ?? ORDER BY `_egress_event_id`', [table]);
      return rows;
    },
    async columnTypes(table) {
      const [rows] = await reader.raw('SELECT COLUMN_NAME AS name, COLUMN_TYPE AS type FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?', [table]);
      return Object.fromEntries((rows as { name: string; type: string }[]).map((row) => [row.name, row.type.toLowerCase()]));
    },
    async dropTable(table) {
      await reader.raw('DROP TABLE IF EXISTS ??', [table]);
    },
    close: () => reader.destroy(),
  };
}

export function sqliteDatabase(): TestDatabase {
  const directory = mkdtempSync(join(tmpdir(), 'egress-sql-'));
  const filename = join(directory, 'events.db');
  const config = (overrides: Partial<Knex.Config> = {}): Knex.Config => ({ client: 'better-sqlite3', connection: { filename }, useNullAsDefault: true, ...overrides });
  const reader = knexFactory(config());
  return {
    name: 'sqlite',
    config,
    reader,
    async rows(table) {
      return reader.raw('SELECT * FROM ?? ORDER BY "_egress_event_id"', [table]);
    },
    async columnTypes(table) {
      const rows: { name: string; type: string }[] = await reader.raw('SELECT name, type FROM pragma_table_info(?)', [table]);
      return Object.fromEntries(rows.map((row) => [row.name, row.type.toLowerCase()]));
    },
    async dropTable(table) {
      await reader.raw('DROP TABLE IF EXISTS ??', [table]);
    },
    async close() {
      await reader.destroy();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

/** Every database available here: SQLite always, PostgreSQL and MariaDB when their URLs are set. */
export function testDatabases(): TestDatabase[] {
  return [postgresDatabase(), mysqlDatabase(), sqliteDatabase()].filter((database): database is TestDatabase => database !== undefined);
}
