import { type ColumnDescription, type Dialect, type ErrorClass, errorCode, lastValueCache, toBuffer } from './dialect.js';
import { textOf, type ValueKind } from './value-kind.js';

const columnTypes: Record<ValueKind, string> = {
  number: 'double precision',
  boolean: 'boolean',
  date: 'date',
  timestamp: 'timestamp',
  timestamptz: 'timestamptz',
  json: 'jsonb',
  bytes: 'bytea',
  text: 'text',
};

// `format_type()` spellings, with any precision removed.
const kindsByType: Record<string, ValueKind> = {
  'double precision': 'number',
  boolean: 'boolean',
  date: 'date',
  'timestamp without time zone': 'timestamp',
  'timestamp with time zone': 'timestamptz',
  jsonb: 'json',
  json: 'json',
  bytea: 'bytes',
  text: 'text',
  'character varying': 'text',
};

interface PgConnection {
  query(config: { text: string; values: unknown[] }): Promise<{ rows: Record<string, unknown>[] }>;
}

export const postgresDialect: Dialect = {
  name: 'postgresql',
  maxParameters: 65_535,
  maxStatementCharacters: 256 * 1024 * 1024,
  foldsColumnNames: false,
  widensColumns: true,
  begin: 'BEGIN',
  tableOptions: '',
  quote: (identifier) => `"${identifier.replace(/"/g, '""')}"`,
  placeholder: (index) => `$${index + 1}`,
  columnType: (kind) => columnTypes[kind],
  systemColumns(eventIdColumn, sentAtColumn) {
    return `${this.quote(eventIdColumn)} uuid PRIMARY KEY, ${this.quote(sentAtColumn)} timestamptz NOT NULL`;
  },
  ignoreDuplicates(eventIdColumn) {
    return ` ON CONFLICT (${this.quote(eventIdColumn)}) DO NOTHING`;
  },
  sentAt: lastValueCache((milliseconds) => new Date(milliseconds).toISOString()),
  encode(value, column) {
    if (value === null || value === undefined) return null;
    if (column === 'text') return textOf(value);
    if (value instanceof Uint8Array) return toBuffer(value);
    // A column of the user's own type (e.g. `text[]`) gets the array as `pg` binds it: an array literal.
    if (column === 'other' && Array.isArray(value)) return value;
    // Otherwise JSON text: `pg` would turn an array into a PostgreSQL array literal.
    if (typeof value === 'object') return JSON.stringify(value);
    return value;
  },
  async describeTable(execute, table) {
    const rows = await execute(
      `SELECT a.attname AS name, format_type(a.atttypid, NULL) AS type FROM pg_attribute a
        WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped`,
      [this.quote(table)],
    );
    if (rows.length === 0) return undefined;
    return rows.map((row): ColumnDescription => ({ name: String(row.name), kind: kindsByType[String(row.type)] ?? 'other', type: String(row.type) }));
  },
  addColumns(table, columns) {
    const clauses = columns.map((column) => `ADD COLUMN IF NOT EXISTS ${this.quote(column.name)} ${columnTypes[column.kind]}`);
    return [`ALTER TABLE ${this.quote(table)} ${clauses.join(', ')}`];
  },
  widenToText(table, column) {
    const quoted = this.quote(column);
    return `ALTER TABLE ${this.quote(table)} ALTER COLUMN ${quoted} TYPE text USING ${quoted}::text`;
  },
  async run(connection, sql, values) {
    const result = await (connection as PgConnection).query({ text: sql, values: values as unknown[] });
    // A multi-statement string answers with an array of results; this destination never sends one.
    return result.rows ?? [];
  },
  arrayInsert(table, columns, rows, suffix) {
    // PostgreSQL parses and plans a VALUES list of thousands of rows slowly; one array per column
    // is one small statement (as many parameters as columns) and inserts about twice as fast.
    // `unnest` would flatten a column that is itself an array, so such tables use VALUES lists.
    if (columns.some((column) => column.type.endsWith(']'))) return undefined;
    const values = columns.map((_, index) => arrayLiteral(rows, index));
    const arrays = columns.map((column, index) => `$${index + 1}::${column.type}[]`);
    const names = columns.map((column) => this.quote(column.name)).join(', ');
    return { sql: `INSERT INTO ${this.quote(table)} (${names}) SELECT * FROM unnest(${arrays.join(', ')})${suffix}`, values };
  },
  classify: classifyPostgresError,
};

function classifyPostgresError(error: unknown, statement: 'ddl' | 'dml'): ErrorClass {
  const code = errorCode(error);
  // SQLSTATE codes are five characters; anything else is a Node.js or driver error (connection refused, reset, terminated).
  if (code === undefined || code.length !== 5) return 'retryable';
  if (code === '42P01' || code === '42703') return 'stale-schema';
  // 23505 on the catalog (`pg_type_typname_nsp_index`) is how two concurrent CREATE TABLE IF NOT EXISTS collide.
  if (code === '42P07' || code === '42701' || code === '42710' || (statement === 'ddl' && code === '23505')) return 'schema-race';
  const errorClass = code.slice(0, 2);
  if (errorClass === '22' || errorClass === '23') return 'row';
  // Missing privileges are fixed by an operator, not by changing the event: keep it queued.
  if (code === '42501') return 'retryable';
  if (errorClass === '42' || errorClass === '0A' || errorClass === '54') return 'permanent';
  // 08 connection, 40 serialization/deadlock, 53 resources, 55P03 lock timeout, 57 shutdown/cancel, 58 system, XX internal.
  return 'retryable';
}

const needsEscape = /["\\]/;
const escaped = /["\\]/g;

/**
 * The PostgreSQL array literal of one column of the rows. Written here rather than by `pg`, which
 * inspects and escapes every element through several generic steps: this is most of the client's
 * work for a large batch. Values are already encoded: null, number, boolean, string or Buffer.
 */
function arrayLiteral(rows: readonly (readonly unknown[])[], column: number): string {
  const parts = new Array<string>(rows.length);
  for (let index = 0; index < rows.length; index += 1) {
    const value = rows[index]![column];
    if (value === null || value === undefined) parts[index] = 'NULL';
    else if (typeof value === 'number') parts[index] = String(value);
    else if (typeof value === 'boolean') parts[index] = value ? 't' : 'f';
    else if (Buffer.isBuffer(value)) parts[index] = `"\\\\x${value.toString('hex')}"`;
    else {
      const text = String(value);
      parts[index] = needsEscape.test(text) ? `"${text.replace(escaped, '\\$&')}"` : `"${text}"`;
    }
  }
  return `{${parts.join(',')}}`;
}
