import { EgressConfigurationError, type Logger } from '@egress/core';
import knexFactory, { type Knex } from 'knex';
import { databaseMessage, type Dialect } from './dialect.js';
import { mysqlDialect } from './mysql-dialect.js';
import { postgresDialect } from './postgres-dialect.js';
import { sqliteDialect } from './sqlite-dialect.js';

const dialectsByDriver: Record<string, Dialect> = {
  pg: postgresDialect,
  mysql2: mysqlDialect,
  'better-sqlite3': sqliteDialect,
};
const clientAliases: Record<string, string> = { pg: 'pg', postgres: 'pg', postgresql: 'pg', mysql2: 'mysql2', 'better-sqlite3': 'better-sqlite3' };

/** The dialect of a knex instance's driver; only the drivers this destination speaks to directly. */
export function dialectFor(knex: Knex, label: string): Dialect {
  const dialect = dialectsByDriver[knex.client.driverName];
  if (dialect === undefined) {
    throw new EgressConfigurationError(`knex client "${knex.client.driverName}" is not supported (expected pg, mysql2 or better-sqlite3)`, `${label} option "knex"`);
  }
  return dialect;
}

/** The application's knex instance as given (not owned), or a new one built from a configuration (owned). */
export function openKnex(given: Knex | Knex.Config, label: string, logger: () => Logger): { knex: Knex; owned: boolean } {
  if (typeof given === 'function' && typeof (given as Knex).client === 'object') return { knex: given as Knex, owned: false };
  if (typeof given !== 'object') {
    throw new EgressConfigurationError(`expected a knex instance or a knex configuration, got ${typeof given}`, `${label} option "knex"`);
  }
  const client = typeof given.client === 'string' ? clientAliases[given.client] : undefined;
  if (client === undefined) {
    throw new EgressConfigurationError(`"client" must be "pg", "mysql2" or "better-sqlite3", got ${JSON.stringify(given.client)}`, `${label} option "knex"`);
  }
  try {
    // knex prints pool errors (every refused connection while the database is down) to the console
    // unless told otherwise; they belong in the application's logger, and the outcome is reported anyway.
    const log = {
      warn: (message: unknown) => logger().debug({ destination: 'sql', detail: String(message) }, 'knex warning'),
      error: (message: unknown) => logger().warn({ destination: 'sql', detail: String(message) }, 'knex error'),
      deprecate: (method: unknown, alternative: unknown) => logger().debug({ destination: 'sql', method, alternative }, 'knex deprecation'),
      debug: () => {},
    };
    return { knex: knexFactory({ log, ...given, client, useNullAsDefault: true }), owned: true };
  } catch (error) {
    throw new EgressConfigurationError(databaseMessage(error), `${label} option "knex"`, { cause: error });
  }
}
