import { type ColumnDescription, databaseMessage, type Dialect, type ErrorClass, errorCode, lastValueCache, toBuffer } from './dialect.js';
import { textOf, type ValueKind } from './value-kind.js';

// SQLite keeps any value in any column; the declared type only sets the affinity, and names what
// the column was created for.
const columnTypes: Record<ValueKind, string> = {
  number: 'REAL',
  boolean: 'BOOLEAN',
  date: 'DATE',
  timestamp: 'DATETIME',
  timestamptz: 'DATETIME',
  json: 'JSON',
  bytes: 'BLOB',
  text: 'TEXT',
};

const kindsByType: Record<string, ValueKind> = {
  REAL: 'number',
  BOOLEAN: 'boolean',
  DATE: 'date',
  DATETIME: 'timestamp',
  JSON: 'json',
  BLOB: 'bytes',
  TEXT: 'text',
};

interface SqliteConnection {
  prepare(sql: string): { reader: boolean; all(...values: unknown[]): unknown[]; run(...values: unknown[]): unknown };
}

export const sqliteDialect: Dialect = {
  name: 'sqlite',
  // better-sqlite3 is built with SQLITE_MAX_VARIABLE_NUMBER 32766.
  maxParameters: 32_766,
  maxStatementCharacters: 256 * 1024 * 1024,
  foldsColumnNames: true,
  widensColumns: false,
  // IMMEDIATE takes the write lock at once, so two writers never deadlock upgrading a read lock.
  begin: 'BEGIN IMMEDIATE',
  tableOptions: '',
  quote: (identifier) => `"${identifier.replace(/"/g, '""')}"`,
  placeholder: () => '?',
  columnType: (kind) => columnTypes[kind],
  systemColumns(eventIdColumn, sentAtColumn) {
    return `${this.quote(eventIdColumn)} TEXT NOT NULL PRIMARY KEY, ${this.quote(sentAtColumn)} TEXT NOT NULL`;
  },
  ignoreDuplicates(eventIdColumn) {
    return ` ON CONFLICT (${this.quote(eventIdColumn)}) DO NOTHING`;
  },
  sentAt: lastValueCache((milliseconds) => new Date(milliseconds).toISOString()),
  encode(value, column) {
    if (value === null || value === undefined) return null;
    if (column === 'text') return textOf(value);
    if (typeof value === 'boolean') return value ? 1 : 0;
    if (value instanceof Uint8Array) return toBuffer(value);
    if (typeof value === 'object') return JSON.stringify(value);
    return value;
  },
  async describeTable(execute, table) {
    const rows = await execute('SELECT name, type FROM pragma_table_info(?)', [table]);
    if (rows.length === 0) return undefined;
    return rows.map((row): ColumnDescription => ({ name: String(row.name), kind: kindsByType[String(row.type).toUpperCase()] ?? 'other', type: String(row.type) }));
  },
  addColumns(table, columns) {
    return columns.map((column) => `ALTER TABLE ${this.quote(table)} ADD COLUMN ${this.quote(column.name)} ${columnTypes[column.kind]}`);
  },
  widenToText() {
    throw new Error('SQLite columns keep values of any type; they are never widened');
  },
  async run(connection, sql, values) {
    const statement = (connection as SqliteConnection).prepare(sql);
    if (statement.reader) return statement.all(...values) as Record<string, unknown>[];
    statement.run(...values);
    return [];
  },
  classify: classifySqliteError,
};

function classifySqliteError(error: unknown, statement: 'ddl' | 'dml'): ErrorClass {
  const code = errorCode(error);
  if (code === undefined || !code.startsWith('SQLITE_')) return 'retryable';
  const message = databaseMessage(error);
  if (code === 'SQLITE_ERROR') {
    if (/no such table|has no column named|no such column/i.test(message)) return 'stale-schema';
    if (/duplicate column name|already exists/i.test(message)) return 'schema-race';
    return 'permanent';
  }
  if (code.startsWith('SQLITE_CONSTRAINT') || code === 'SQLITE_MISMATCH' || code === 'SQLITE_TOOBIG') {
    return statement === 'dml' ? 'row' : 'permanent';
  }
  if (code === 'SQLITE_RANGE') return 'permanent';
  // BUSY, LOCKED, IOERR, FULL, CANTOPEN, READONLY...: the file or another writer may let go.
  return 'retryable';
}
