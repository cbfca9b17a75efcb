import { describe, expect, test } from 'vitest';
import { mysqlDialect } from '../src/mysql-dialect.js';
import { postgresDialect } from '../src/postgres-dialect.js';
import { sqliteDialect } from '../src/sqlite-dialect.js';

// Errors shaped as the drivers raise them (pg: SQLSTATE in `code`; mysql2: `errno`; better-sqlite3:
// `SQLITE_*` in `code`), for the failures that are hard to provoke on demand against a shared server.
const driverError = (fields: Record<string, unknown>, message = 'failure') => Object.assign(new Error(message), fields);

describe('error classification', () => {
  test('PostgreSQL: deadlocks, serialization failures, lock timeouts and lost connections retry; data and constraint errors blame a row', () => {
    const classify = (code: string, statement: 'ddl' | 'dml' = 'dml') => postgresDialect.classify(driverError({ code }), statement);
    expect(['40P01', '40001', '55P03', '08006', '08001', '57P01', '53300', '57014', 'ECONNREFUSED', 'ECONNRESET', '42501'].map((code) => classify(code))).toEqual(Array(11).fill('retryable'));
    expect(['23505', '23514', '23502', '22P02', '22003', '22001'].map((code) => classify(code))).toEqual(Array(6).fill('row'));
    expect(['42601', '54011', '0A000'].map((code) => classify(code))).toEqual(Array(3).fill('permanent'));
    expect(['42P01', '42703'].map((code) => classify(code))).toEqual(['stale-schema', 'stale-schema']);
    expect(['42P07', '42701'].map((code) => classify(code, 'ddl'))).toEqual(['schema-race', 'schema-race']);
    expect(classify('23505', 'ddl')).toBe('schema-race');
    expect(postgresDialect.classify(new Error('Connection terminated unexpectedly'), 'dml')).toBe('retryable');
  });

  test('MySQL: deadlocks, lock waits and lost connections retry; strict-mode value errors blame a row', () => {
    const classify = (errno: number) => mysqlDialect.classify(driverError({ errno }), 'dml');
    expect([1213, 1205, 1040, 1053, 2006, 2013, 1142].map(classify)).toEqual(Array(7).fill('retryable'));
    expect([1062, 1048, 1264, 1265, 1292, 1366, 1406, 1452, 3140, 4025].map(classify)).toEqual(Array(10).fill('row'));
    expect([1064, 1117, 1118, 1153].map(classify)).toEqual(Array(4).fill('permanent'));
    expect([1146, 1054].map(classify)).toEqual(['stale-schema', 'stale-schema']);
    expect([1050, 1060].map(classify)).toEqual(['schema-race', 'schema-race']);
    expect(mysqlDialect.classify(driverError({ code: 'PROTOCOL_CONNECTION_LOST', errno: undefined }), 'dml')).toBe('retryable');
    expect(mysqlDialect.classify(driverError({ code: 'ECONNREFUSED', errno: -111 }), 'dml')).toBe('retryable');
  });

  test('SQLite: busy and locked retry; constraints blame a row; a missing table is stale', () => {
    const classify = (code: string, message = 'failure') => sqliteDialect.classify(driverError({ code }, message), 'dml');
    expect(['SQLITE_BUSY', 'SQLITE_BUSY_SNAPSHOT', 'SQLITE_LOCKED', 'SQLITE_IOERR_WRITE', 'SQLITE_CANTOPEN', 'SQLITE_FULL'].map((code) => classify(code))).toEqual(Array(6).fill('retryable'));
    expect(['SQLITE_CONSTRAINT_CHECK', 'SQLITE_CONSTRAINT_NOTNULL', 'SQLITE_MISMATCH', 'SQLITE_TOOBIG'].map((code) => classify(code))).toEqual(Array(4).fill('row'));
    expect(classify('SQLITE_ERROR', 'no such table: events')).toBe('stale-schema');
    expect(classify('SQLITE_ERROR', 'table events has no column named x')).toBe('stale-schema');
    expect(classify('SQLITE_ERROR', 'duplicate column name: x')).toBe('schema-race');
    expect(classify('SQLITE_ERROR', 'too many columns on events')).toBe('permanent');
  });
});
