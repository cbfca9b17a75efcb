import {
  EgressConfigurationError,
  PermanentError,
  RetryableError,
  defineDestination,
  silentLogger,
  type Batch,
  type DeliveryReport,
  type Destination,
  type Logger,
} from '@egress/core';
import type { Knex } from 'knex';
import { withConnection } from './database-connection.js';
import { databaseMessage, type ColumnDescription, type Dialect } from './dialect.js';
import { dialectFor, openKnex } from './knex-instance.js';
import { neededColumns, prepareRows } from './row-preparation.js';
import { RowWriter, type RowFailure } from './row-writer.js';
import { eventIdColumn, sentAtColumn, sqlInputSchema, type SqlInput, type SqlPayload } from './sql-input.js';
import { TableSchemas } from './table-schemas.js';

export interface SqlOptions<Name extends string = 'sql'> {
  /** A knex instance (the application keeps it and closes it) or a knex configuration (the destination opens its own pool and closes it at `close()`); client `pg`, `mysql2` or `better-sqlite3`. */
  knex: Knex | Knex.Config;
  /** The `$send.<name>` this destination answers to, to write to several databases; `sql` by default. */
  name?: Name;
}

/**
 * Appends each `$send.sql({ table, payload })` as one row of `table` in PostgreSQL, MySQL/MariaDB
 * or SQLite. Tables are created on first use and widened as new fields appear; every row carries
 * its event id under a unique constraint, so a retried batch inserts nothing twice.
 */
export function sql<const Name extends string = 'sql'>(options: SqlOptions<Name>): Destination<NoInfer<Name>, SqlInput, SqlPayload> {
  const label = `[${options?.name ?? 'sql'}]`;
  if (typeof options !== 'object' || options === null || options.knex === undefined || options.knex === null) {
    throw new EgressConfigurationError('Missing required option (a knex instance or a knex configuration)', `${label} option "knex"`);
  }
  let logger: Logger = silentLogger;
  const { knex, owned } = openKnex(options.knex, label, () => logger);
  const dialect = dialectFor(knex, label);
  const schemas = new TableSchemas(dialect, () => logger);

  async function deliverTable(table: string, events: Batch<SqlPayload>['events'], signal: AbortSignal): Promise<RowFailure[]> {
    const needed = neededColumns(events);
    try {
      return await withConnection(knex, dialect, signal, async (execute, connection) => {
        for (let attempt = 1; ; attempt += 1) {
          try {
            const columns = await schemas.prepare(execute, table, needed);
            const used = [...needed.keys()].map((field) => columns.get(schemas.key(field))!);
            const system = [eventIdColumn, sentAtColumn].map((name) => columns.get(schemas.key(name)));
            if (system.some((column) => column === undefined)) {
              throw new PermanentError(`[sql] ${table}: the table exists without the ${eventIdColumn} and ${sentAtColumn} columns this destination writes`);
            }
            const writer = new RowWriter(dialect, table, [...(system as ColumnDescription[]), ...used]);
            return await writer.write(connection, prepareRows(dialect, events, needed, used));
          } catch (error) {
            // The table or a column vanished or changed behind our back: read the schema again, once.
            schemas.forget(table);
            if (attempt === 1 && !RetryableError.isInstance(error) && dialect.classify(error, 'dml') === 'stale-schema') continue;
            throw error;
          }
        }
      });
    } catch (error) {
      throw outcome(error, table, dialect);
    }
  }

  return defineDestination({
    name: (options.name ?? 'sql') as Name,
    input: sqlInputSchema,
    // Pipedream writes once a minute; a few seconds keeps rows fresh while one INSERT still carries
    // thousands of them. Attempts are bounded by age (a day), not by count: a database down for
    // hours loses nothing.
    defaults: {
      batch: { maxEvents: 5000, maxDelay: '5s', maxBytes: '8MiB' },
      retry: { maxAttempts: 100_000, initialDelay: '1s', maxDelay: '1m', maxAge: '1d' },
      concurrency: 4,
      timeout: '2m',
    },
    limits: { maxEvents: 100_000, maxBytes: 256 * 1024 * 1024 },
    partition: (payload) => payload.table,
    secrets: () => connectionSecrets(knex),
    async deliver(batch, context): Promise<DeliveryReport | void> {
      const tables = new Map<string, Batch<SqlPayload>['events'][number][]>();
      for (const event of batch.events) {
        const group = tables.get(event.payload.table);
        if (group) group.push(event);
        else tables.set(event.payload.table, [event]);
      }
      const failures: RowFailure[] = [];
      for (const [table, events] of tables) failures.push(...(await deliverTable(table, events, context.signal)));
      if (failures.length > 0) return { failures };
    },
    start(context) {
      logger = context.logger;
    },
    async stop() {
      if (owned) await knex.destroy();
    },
    async health() {
      try {
        await withConnection(knex, dialect, undefined, (execute) => execute('SELECT 1'));
        return { ok: true, message: `${dialect.name} reachable` };
      } catch (error) {
        return { ok: false, message: databaseMessage(error) };
      }
    },
  });
}

function outcome(error: unknown, table: string, dialect: Dialect): Error {
  if (RetryableError.isInstance(error) || PermanentError.isInstance(error)) return error;
  const message = `[sql] ${table}: ${databaseMessage(error)}`;
  const kind = dialect.classify(error, 'dml');
  if (kind === 'permanent' || kind === 'row') return new PermanentError(message, { cause: error });
  return new RetryableError(message, { cause: error });
}

/** The database password in the knex configuration, as given or inside a connection URL. */
function connectionSecrets(knex: Knex): string[] {
  const connection = (knex.client as { config?: { connection?: unknown } }).config?.connection;
  const fromUrl = (text: unknown): string[] => {
    if (typeof text !== 'string') return [];
    try {
      const password = new URL(text).password;
      return password ? [password, decodeURIComponent(password)] : [];
    } catch {
      return [];
    }
  };
  if (typeof connection === 'string') return fromUrl(connection);
  if (typeof connection !== 'object' || connection === null) return [];
  const { password, connectionString } = connection as { password?: unknown; connectionString?: unknown };
  return [...(typeof password === 'string' ? [password] : []), ...fromUrl(connectionString)];
}
