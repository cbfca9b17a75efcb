import { EgressConfigurationError, type QueuedEvent } from '@egress/core';
import type { SchemaNames } from './schema-names.js';
import { isPostgresTransaction, type PostgresTransaction } from './transaction-adapters.js';

/**
 * Notifications of events written through an application's transaction carry this instead of a
 * store's id, so that every listening store wakes, the writing process's own included: the writer
 * cannot see the commit, PostgreSQL announces it.
 */
const applicationSource = 'application';

/** The `transaction` given to `run`, checked: only the adapters of this package are taken. */
export function asPostgresTransaction(transaction: unknown): PostgresTransaction {
  if (isPostgresTransaction(transaction)) return transaction;
  throw new EgressConfigurationError(
    'expected the application\'s transaction wrapped for the postgres store: pgTransaction(client), knexTransaction(trx), kyselyTransaction(trx), drizzleTransaction(tx) or prismaTransaction(tx) from @egress/store-postgres',
    'run options.transaction',
  );
}

/**
 * Inserts the events through the application's transaction, in order, with a NOTIFY that
 * PostgreSQL delivers only if that transaction commits: workers hear of the events when they can
 * claim them, never before, and never for a rollback. The events travel as one JSON parameter, so
 * every library passes it the same way (no array types to map).
 */
export async function insertWithinTransaction(transaction: PostgresTransaction, names: SchemaNames, events: readonly QueuedEvent[]): Promise<void> {
  const rows = events.map((event, position) => ({
    id: event.id,
    destination: event.destination,
    partition: event.partition,
    payload: event.payload,
    // Sizes are whole bytes in the table; an adapter that measures fractions is rounded up.
    size: Math.max(0, Math.ceil(event.size)),
    sent_at: event.sentAt,
    attempts: event.attempts,
    trace: event.trace ?? null,
    position,
  }));
  const { table } = names;
  await transaction.query(
    `WITH input AS (
       SELECT * FROM json_to_recordset($1::json)
         AS t(id text, destination text, partition text, payload text, size integer, sent_at bigint, attempts integer, trace text, position integer)
     ), notified AS (
       SELECT pg_notify($2, $3 || ' ' || destination) FROM (SELECT DISTINCT destination FROM input) AS destinations
     )
     INSERT INTO ${table('events')} (id, destination, partition, payload, size, sent_at, attempts, trace)
     SELECT id, destination, partition, payload, size, sent_at, attempts, trace FROM input
     WHERE (SELECT count(*) FROM notified) >= 0
     ORDER BY position`,
    [JSON.stringify(rows), names.channel, applicationSource],
  );
}
