import type { ValueKind } from './value-kind.js';

/** A column as the database describes it. */
export interface ColumnDescription {
  /** The column's name as stored. */
  readonly name: string;
  /** What the column holds; `other` for a type this destination did not create (kept and bound as is). */
  readonly kind: ValueKind | 'other';
  /** The database's name for the column's type. */
  readonly type: string;
}

/** A database connection taken from the knex pool, driven through its own driver. */
export type DriverConnection = unknown;

/** How a failed statement is handled. */
export type ErrorClass =
  /** A later attempt may succeed: connection loss, deadlock, serialization failure, lock timeout, busy. */
  | 'retryable'
  /** Retrying cannot help, and no single row is to blame (e.g. too many columns). */
  | 'permanent'
  /** A value of one row broke a type or a constraint: the row can be found and failed alone. */
  | 'row'
  /** The table or a column vanished or changed since the schema was read. */
  | 'stale-schema'
  /** Another writer created the same table or column first. */
  | 'schema-race';

/** Everything that differs between PostgreSQL, MySQL/MariaDB and SQLite. */
export interface Dialect {
  /** Name for messages. */
  readonly name: 'postgresql' | 'mysql' | 'sqlite';
  /** Most bind parameters one statement may carry. */
  readonly maxParameters: number;
  /** Rough ceiling on one statement's values, in characters, to stay under packet limits. */
  readonly maxStatementCharacters: number;
  /** Column names compare ignoring case (MySQL, SQLite). */
  readonly foldsColumnNames: boolean;
  /** A column can change its type to text in place (SQLite cannot, and stores any value in any column). */
  readonly widensColumns: boolean;
  /** Statement that opens a transaction. */
  readonly begin: string;
  /** The identifier, quoted and escaped. */
  quote(identifier: string): string;
  /** Placeholder for the bind parameter at zero-based `index`. */
  placeholder(index: number): string;
  /** Column type for a kind of value. */
  columnType(kind: ValueKind): string;
  /** Definitions of the columns every table starts with: the event id (unique) and the time it was sent. */
  systemColumns(eventIdColumn: string, sentAtColumn: string): string;
  /** Suffix of `CREATE TABLE (...)`. */
  readonly tableOptions: string;
  /** Clause that turns an insert of an event id already present into a no-op. */
  ignoreDuplicates(eventIdColumn: string): string;
  /** The `_egress_sent_at` value for Unix milliseconds. */
  sentAt(milliseconds: number): unknown;
  /** A value ready to bind into a column of the given kind. */
  encode(value: unknown, column: ValueKind | 'other'): unknown;
  /** The table's columns, or undefined when it does not exist. */
  describeTable(execute: Execute, table: string): Promise<ColumnDescription[] | undefined>;
  /** Statements that add columns (one statement when the dialect allows several per ALTER). */
  addColumns(table: string, columns: readonly { name: string; kind: ValueKind }[]): string[];
  /** Statement that turns a column into text, keeping its values as text. */
  widenToText(table: string, column: string): string;
  /** Runs one statement on a pooled connection and returns its rows. */
  run(connection: DriverConnection, sql: string, values: readonly unknown[]): Promise<Record<string, unknown>[]>;
  /**
   * One statement inserting every row whatever their number, when the dialect has one that beats a
   * VALUES list (PostgreSQL: one array per column through `unnest`); undefined to use VALUES lists.
   */
  arrayInsert?(table: string, columns: readonly ColumnDescription[], rows: readonly (readonly unknown[])[], suffix: string): { sql: string; values: unknown[] } | undefined;
  /** How to handle an error raised by `run` while changing the schema (`ddl`) or inserting rows (`dml`). */
  classify(error: unknown, statement: 'ddl' | 'dml'): ErrorClass;
}

/** Runs one statement on the connection at hand. */
export type Execute = (sql: string, values?: readonly unknown[]) => Promise<Record<string, unknown>[]>;

/** The database's own message, without anything a client library prepended. */
export function databaseMessage(error: unknown): string {
  if (error instanceof Error) {
    const sqlMessage = (error as { sqlMessage?: unknown }).sqlMessage;
    return typeof sqlMessage === 'string' ? sqlMessage : error.message || error.name;
  }
  return String(error);
}

/** The `code` of a driver error (SQLSTATE for PostgreSQL, `SQLITE_*`, `ER_*` or a Node.js system error). */
export function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

export function toBuffer(value: Uint8Array): Buffer {
  return Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

/**
 * Wraps a formatter of Unix milliseconds so that consecutive events of the same millisecond (common:
 * a batch is sent in bursts) reuse the last result instead of formatting a date for each row.
 */
export function lastValueCache<T>(format: (milliseconds: number) => T): (milliseconds: number) => T {
  let lastMilliseconds = Number.NaN;
  let lastValue: T | undefined;
  return (milliseconds) => {
    if (milliseconds !== lastMilliseconds) {
      lastValue = format(milliseconds);
      lastMilliseconds = milliseconds;
    }
    return lastValue as T;
  };
}
