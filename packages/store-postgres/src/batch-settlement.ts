import type { ClaimedBatch, Settlement } from '@egress/core';
import type { PoolClient, QueryConfig, QueryResult, QueryResultRow } from 'pg';
import { prepared } from './prepared-statement.js';
import { textPerSchema, type SchemaNames } from './schema-names.js';

/** A pool or a connection inside a transaction. */
export interface Queryable {
  query<Row extends QueryResultRow>(config: QueryConfig): Promise<QueryResult<Row>>;
}

/** One `settle` call: the batch, the lease token this store holds for it, and what became of it. */
export interface SettlementRequest {
  readonly claimed: ClaimedBatch;
  /** Undefined when this store never held the batch (it then settles whatever lease the batch has). */
  readonly token: string | undefined;
  readonly settlement: Settlement;
}

/** What a settlement removed from the queue, for the local capacity count. */
export interface Removed {
  readonly events: number;
  readonly bytes: number;
}

const nothingRemoved: Removed = { events: 0, bytes: 0 };

/** Whether every event of the batch arrived: such settlements are written together in one statement. */
export function deliversWholeBatch({ claimed, settlement }: SettlementRequest): boolean {
  if (settlement.retry || settlement.dead.length > 0 || settlement.delivered.length < claimed.events.length) return false;
  const delivered = new Set(settlement.delivered);
  return claimed.events.every((event) => delivered.has(event.id));
}

/**
 * Deletes fully delivered batches and their events, and adds them to the delivered totals, in one
 * statement for any number of batches. A batch whose lease another worker has taken over is left
 * alone (that worker delivers it again): the delete checks the lease token, and a delete that waited
 * for a claim's row lock checks it again on the row the claim left. The batch rows are not locked
 * before they are deleted (the delete takes the lock itself: one write to each row, not two); they
 * are handed over in key order, and counter rows are written in key order, so that workers settling
 * batches of the same partitions do not deadlock on the counters. Two workers settle the same batch
 * only after a lease was taken over.
 *
 * The commit does not wait for the WAL to reach disk: a settlement lost to a database crash leaves
 * its batches leased, and they are delivered again when the lease runs out, as after a worker crash.
 */
export async function settleDelivered(executor: Queryable, names: SchemaNames, counterSlot: number, requests: readonly SettlementRequest[]): Promise<Removed[]> {
  const inKeyOrder = [...requests].sort((a, b) => (a.claimed.id < b.claimed.id ? -1 : a.claimed.id > b.claimed.id ? 1 : 0));
  const statement = prepared(settleDeliveredText(names), [inKeyOrder.map((request) => request.claimed.id), inKeyOrder.map((request) => request.token ?? null), counterSlot]);
  const result = await executor.query<{ batch_id: string; count: string; bytes: string }>(statement);
  const byBatch = new Map(result.rows.map((row) => [row.batch_id, { events: Number(row.count), bytes: Number(row.bytes) }]));
  return requests.map((request) => byBatch.get(request.claimed.id) ?? nothingRemoved);
}

const settleDeliveredText = textPerSchema(({ table }) => `WITH relaxed AS (
       SELECT set_config('synchronous_commit', 'off', true) AS setting
     ), input AS (
       SELECT * FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS t(id, token, position) WHERE EXISTS (SELECT 1 FROM relaxed)
     ), dropped AS (
       DELETE FROM ${table('batches')} b USING (SELECT * FROM input ORDER BY position) AS input
       WHERE b.id = input.id AND (input.token IS NULL OR b.lease_token = input.token)
       RETURNING b.id, b.destination, b.partition
     ), removed AS (
       DELETE FROM ${table('events')} e USING dropped WHERE e.batch_id = dropped.id
       RETURNING e.batch_id, e.size, dropped.destination, dropped.partition
     ), counted AS (
       INSERT INTO ${table('counters')} AS c (destination, partition, slot, delivered)
       SELECT destination, partition, $3, count(*) FROM removed GROUP BY destination, partition ORDER BY destination, partition
       ON CONFLICT (destination, partition, slot) DO UPDATE SET delivered = c.delivered + EXCLUDED.delivered
     )
     SELECT batch_id, count(*) AS count, coalesce(sum(size), 0) AS bytes FROM removed GROUP BY batch_id`);

/**
 * Any settlement, inside the caller's transaction: delivered events leave, dead ones move to the
 * dead letters, retried ones wait in their retry batch, and events it does not mention wait again.
 */
export async function settleBatch(client: PoolClient, names: SchemaNames, counterSlot: number, request: SettlementRequest, notify: (destination: string) => Promise<void>): Promise<Removed> {
  const { claimed, token, settlement } = request;
  const { table } = names;
  const batch = await client.query<{ lease_token: string | null }>(`SELECT lease_token FROM ${table('batches')} WHERE id = $1 FOR UPDATE`, [claimed.id]);
  const row = batch.rows[0];
  // Another worker took the batch over after our lease ran out: it delivers the same batch again.
  if (!row || (token !== undefined && row.lease_token !== token)) return nothingRemoved;

  const delivered = await client.query<{ size: number }>(`DELETE FROM ${table('events')} WHERE batch_id = $1 AND id = ANY($2::text[]) RETURNING size`, [
    claimed.id,
    settlement.delivered,
  ]);
  let failed = 0;
  if (settlement.dead.length > 0) {
    const buried = await client.query(
      `WITH failed AS (
         SELECT * FROM unnest($2::text[], $3::text[], $4::text[], $5::bigint[]) AS t(id, error_name, error_message, error_at)
       ), moved AS (
         DELETE FROM ${table('events')} e USING failed WHERE e.batch_id = $1 AND e.id = failed.id
         RETURNING e.id, e.destination, e.partition, e.payload, e.size, e.sent_at, e.attempts, e.trace, failed.error_name, failed.error_message, failed.error_at
       )
       INSERT INTO ${table('dead_letters')} (id, destination, partition, payload, size, sent_at, attempts, trace, error_name, error_message, error_at, dead_at)
       SELECT id, destination, partition, payload, size, sent_at, attempts, trace, error_name, error_message, error_at, error_at FROM moved
       ON CONFLICT (id) DO UPDATE SET error_name = EXCLUDED.error_name, error_message = EXCLUDED.error_message, error_at = EXCLUDED.error_at, dead_at = EXCLUDED.dead_at`,
      [
        claimed.id,
        settlement.dead.map((entry) => entry.eventId),
        settlement.dead.map((entry) => entry.error.name),
        settlement.dead.map((entry) => entry.error.message),
        settlement.dead.map((entry) => entry.error.at),
      ],
    );
    failed += buried.rowCount ?? 0;
  }
  const retry = settlement.retry;
  let keepBatch = false;
  if (retry && retry.eventIds.length > 0) {
    if (retry.batchId === claimed.id) {
      keepBatch = true;
      failed += retry.eventIds.length;
      await client.query(`UPDATE ${table('events')} SET batch_id = NULL WHERE batch_id = $1 AND NOT (id = ANY($2::text[]))`, [claimed.id, retry.eventIds]);
      await client.query(
        `UPDATE ${table('batches')} b SET available_at = $2, lease_until = NULL, lease_token = NULL, owner = NULL,
           first_seq = coalesce((SELECT min(seq) FROM ${table('events')} WHERE batch_id = $1), b.first_seq)
         WHERE id = $1`,
        [claimed.id, retry.availableAt],
      );
    } else {
      const moved = await client.query<{ moved: string }>(
        `WITH moved AS (
           UPDATE ${table('events')} SET batch_id = $2 WHERE batch_id = $1 AND id = ANY($3::text[]) RETURNING seq, destination, partition
         ), formed AS (
           INSERT INTO ${table('batches')} (id, destination, partition, first_seq, available_at)
           SELECT $2, min(destination), min(partition), min(seq), $4 FROM moved HAVING count(*) > 0
           ON CONFLICT (id) DO UPDATE SET available_at = EXCLUDED.available_at, first_seq = EXCLUDED.first_seq, lease_until = NULL, lease_token = NULL, owner = NULL
         )
         SELECT count(*) AS moved FROM moved`,
        [claimed.id, retry.batchId, retry.eventIds, retry.availableAt],
      );
      failed += Number(moved.rows[0]!.moved);
    }
  }
  let returned = 0;
  if (!keepBatch) {
    // Events the settlement does not mention wait again rather than being lost.
    const leftover = await client.query(`UPDATE ${table('events')} SET batch_id = NULL WHERE batch_id = $1`, [claimed.id]);
    returned = leftover.rowCount ?? 0;
    await client.query(`DELETE FROM ${table('batches')} WHERE id = $1`, [claimed.id]);
  }
  if (delivered.rows.length + failed > 0) {
    await client.query(
      `INSERT INTO ${table('counters')} AS c (destination, partition, slot, delivered, failed) VALUES ($1, $2, $5, $3, $4)
       ON CONFLICT (destination, partition, slot) DO UPDATE SET delivered = c.delivered + EXCLUDED.delivered, failed = c.failed + EXCLUDED.failed`,
      [claimed.destination, claimed.partition, delivered.rows.length, failed, counterSlot],
    );
  }
  if (returned > 0) await notify(claimed.destination);
  let bytes = 0;
  for (const deliveredRow of delivered.rows) bytes += deliveredRow.size;
  return { events: delivered.rows.length, bytes };
}
