import type { Knex } from 'knex';
import { RetryableError } from '@egress/core';
import type { Dialect, DriverConnection, Execute } from './dialect.js';

/**
 * Runs `work` on one connection from the knex pool. Statements go straight to the driver: knex's
 * runner would prepend the whole statement, values included, to every error message, and those
 * messages end up in dead letters.
 */
export async function withConnection<T>(knex: Knex, dialect: Dialect, signal: AbortSignal | undefined, work: (execute: Execute, connection: DriverConnection) => Promise<T>): Promise<T> {
  if (signal?.aborted) throw new RetryableError('[sql] delivery aborted before it started', { cause: signal.reason });
  const connection: DriverConnection = await knex.client.acquireConnection();
  const execute: Execute = (sql, values = []) => {
    if (signal?.aborted) return Promise.reject(new RetryableError('[sql] delivery aborted', { cause: signal.reason }));
    return dialect.run(connection, sql, values);
  };
  try {
    return await work(execute, connection);
  } finally {
    await knex.client.releaseConnection(connection);
  }
}

/** Runs `work` in one transaction on the connection; rolls back when it throws. */
export async function inTransaction<T>(dialect: Dialect, connection: DriverConnection, work: (execute: Execute) => Promise<T>): Promise<T> {
  // Statements inside the transaction are not cut short by the abort signal: a half-sent COMMIT is worse than a late one.
  const execute: Execute = (sql, values = []) => dialect.run(connection, sql, values);
  await execute(dialect.begin);
  try {
    const result = await work(execute);
    await execute('COMMIT');
    return result;
  } catch (error) {
    try {
      await execute('ROLLBACK');
    } catch (rollbackError) {
      // A connection that cannot roll back is in an unknown state: knex's pool destroys connections marked so.
      (connection as Record<string, unknown>).__knex__disposed = rollbackError;
    }
    throw error;
  }
}
