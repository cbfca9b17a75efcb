import { type ColumnDescription, type Dialect, type ErrorClass, lastValueCache, toBuffer } from './dialect.js';
import { textOf, type ValueKind } from './value-kind.js';

const columnTypes: Record<ValueKind, string> = {
  number: 'DOUBLE',
  boolean: 'BOOLEAN',
  date: 'DATE',
  // DATETIME has no zone: zoned values are stored converted to UTC (see `encode`).
  timestamp: 'DATETIME(6)',
  timestamptz: 'DATETIME(6)',
  json: 'JSON',
  bytes: 'LONGBLOB',
  text: 'LONGTEXT',
};

const textTypes = new Set(['longtext', 'mediumtext', 'text', 'tinytext', 'varchar', 'char']);
const byteTypes = new Set(['longblob', 'mediumblob', 'blob', 'tinyblob', 'varbinary', 'binary']);

// Errors a single row's value or a constraint causes (strict mode): bad value, out of range, too long, not null, check, foreign key, invalid JSON.
const rowErrors = new Set([1048, 1062, 1263, 1264, 1265, 1292, 1366, 1367, 1406, 1451, 1452, 1690, 3140, 3819, 4025, 1364]);
// Statements this destination wrote that the server refuses for good: too many columns, row too large, bad identifier,
// and 1153, a packet above `max_allowed_packet`, which with statements split by size means one row alone is larger.
const permanentErrors = new Set([1059, 1064, 1103, 1117, 1118, 1153, 1166, 1074, 4111]);

interface MysqlConnection {
  query(sql: string, values: unknown[], callback: (error: Error | null, rows: unknown) => void): void;
}

export const mysqlDialect: Dialect = {
  name: 'mysql',
  maxParameters: 65_535,
  // The statement travels as one packet, and `max_allowed_packet` defaults to 16 MiB (MariaDB) or 64 MiB (MySQL 8).
  maxStatementCharacters: 4 * 1024 * 1024,
  foldsColumnNames: true,
  widensColumns: true,
  begin: 'START TRANSACTION',
  tableOptions: ' DEFAULT CHARACTER SET utf8mb4',
  quote: (identifier) => `\`${identifier.replace(/`/g, '``')}\``,
  placeholder: () => '?',
  columnType: (kind) => columnTypes[kind],
  systemColumns(eventIdColumn, sentAtColumn) {
    return `${this.quote(eventIdColumn)} CHAR(36) CHARACTER SET ascii NOT NULL PRIMARY KEY, ${this.quote(sentAtColumn)} DATETIME(3) NOT NULL`;
  },
  ignoreDuplicates(eventIdColumn) {
    // Not INSERT IGNORE: that would also turn bad values into warnings and store zeros in strict mode's place.
    const quoted = this.quote(eventIdColumn);
    return ` ON DUPLICATE KEY UPDATE ${quoted} = ${quoted}`;
  },
  sentAt: lastValueCache((milliseconds) => new Date(milliseconds).toISOString().slice(0, 23).replace('T', ' ')),
  encode(value, column) {
    if (value === null || value === undefined) return null;
    if (column === 'text') return textOf(value);
    if (value instanceof Uint8Array) return toBuffer(value);
    if (typeof value === 'object') return JSON.stringify(value);
    if (column === 'timestamp' && typeof value === 'string') return toDatetime(value);
    return value;
  },
  async describeTable(execute, table) {
    const rows = await execute(
      `SELECT COLUMN_NAME AS name, DATA_TYPE AS type, COLUMN_TYPE AS fullType FROM information_schema.COLUMNS
        WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?`,
      [table],
    );
    if (rows.length === 0) return undefined;
    const jsonColumns = await mariadbJsonColumns(execute, table);
    return rows.map((row): ColumnDescription => {
      const name = String(row.name);
      const type = String(row.type).toLowerCase();
      let kind: ColumnDescription['kind'] = 'other';
      if (type === 'double') kind = 'number';
      else if (type === 'tinyint' && String(row.fullType).toLowerCase().startsWith('tinyint(1)')) kind = 'boolean';
      else if (type === 'date') kind = 'date';
      else if (type === 'datetime') kind = 'timestamp';
      else if (type === 'json' || jsonColumns.has(name.toLowerCase())) kind = 'json';
      else if (byteTypes.has(type)) kind = 'bytes';
      else if (textTypes.has(type)) kind = 'text';
      return { name, kind, type };
    });
  },
  addColumns(table, columns) {
    const clauses = columns.map((column) => `ADD COLUMN ${this.quote(column.name)} ${columnTypes[column.kind]}`);
    return [`ALTER TABLE ${this.quote(table)} ${clauses.join(', ')}`];
  },
  widenToText(table, column) {
    return `ALTER TABLE ${this.quote(table)} MODIFY COLUMN ${this.quote(column)} LONGTEXT`;
  },
  run(connection, sql, values) {
    return new Promise((resolve, reject) => {
      (connection as MysqlConnection).query(sql, values as unknown[], (error, rows) => {
        if (error) reject(error);
        else resolve(Array.isArray(rows) ? (rows as Record<string, unknown>[]) : []);
      });
    });
  },
  classify: classifyMysqlError,
};

// MariaDB's JSON is LONGTEXT with a `json_valid` check named after the column; MySQL 8 has no
// TABLE_NAME in this view and reports JSON columns as `json` already.
async function mariadbJsonColumns(execute: Parameters<Dialect['describeTable']>[0], table: string): Promise<Set<string>> {
  try {
    const rows = await execute(
      `SELECT CONSTRAINT_NAME AS name, CHECK_CLAUSE AS clause FROM information_schema.CHECK_CONSTRAINTS
        WHERE CONSTRAINT_SCHEMA = DATABASE() AND TABLE_NAME = ?`,
      [table],
    );
    return new Set(rows.filter((row) => /^json_valid\(/i.test(String(row.clause))).map((row) => String(row.name).toLowerCase()));
  } catch {
    return new Set();
  }
}

// `2024-05-01T10:00:00.5+02:00` → `2024-05-01 08:00:00.5`, the UTC wall time DATETIME can hold.
function toDatetime(value: string): string {
  const zone = /(Z|[+-]\d{2}:?\d{2})$/.exec(value);
  if (!zone) return value.replace('T', ' ');
  const body = value.slice(0, zone.index);
  const fraction = /\.\d+$/.exec(body)?.[0] ?? '';
  const offset = zone[1] === 'Z' ? 'Z' : `${zone[1]!.slice(0, 3)}:${zone[1]!.slice(-2)}`;
  const instant = new Date(`${body.slice(0, 19).replace(' ', 'T')}${offset}`);
  return `${instant.toISOString().slice(0, 19).replace('T', ' ')}${fraction}`;
}

function classifyMysqlError(error: unknown, statement: 'ddl' | 'dml'): ErrorClass {
  const errno = (error as { errno?: unknown } | null)?.errno;
  // No server error number: connection refused, reset, lost (PROTOCOL_CONNECTION_LOST), pool timeout.
  if (typeof errno !== 'number' || errno < 1000) return 'retryable';
  if (errno === 1146 || errno === 1054) return 'stale-schema';
  if (errno === 1050 || errno === 1060) return 'schema-race';
  if (rowErrors.has(errno)) return statement === 'dml' ? 'row' : 'permanent';
  if (permanentErrors.has(errno)) return 'permanent';
  // 1205 lock wait timeout, 1213 deadlock, 1040 too many connections, 1053 shutdown, 2006/2013 gone away, privileges...
  return 'retryable';
}
