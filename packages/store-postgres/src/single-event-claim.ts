import { createBatchId, type ClaimRequest, type ClaimedBatch, type QueuedEvent } from '@egress/core';
import { toQueuedEvent, type ClaimLease } from './batch-claim.js';
import type { Queryable } from './batch-settlement.js';
import { prepared } from './prepared-statement.js';
import { textPerSchema, type SchemaNames } from './schema-names.js';

/** Partitions with waiting events examined per claim. */
const partitionsPerClaim = 32;

interface ClaimedRow {
  seq: string | null;
  id: string | null;
  payload: string | null;
  size: number | null;
  sent_at: string | null;
  attempts: number | null;
  trace: string | null;
  batch_id: string | null;
  partition: string | null;
  next_ready_at: string | null;
}

/**
 * Whether a claim can take the one-statement path: batches of one event each (webhooks, most
 * APIs), where every waiting event is a batch ready at once, in a partition that is not FIFO.
 */
export function claimsSingleEvents(request: ClaimRequest): boolean {
  return request.maxEvents === 1 && !request.fifo && request.partition === undefined;
}

/**
 * Claims single-event batches in one statement and one commit, however many: batches formed earlier
 * whose time has come (retries, released batches, expired leases) first, then waiting events, each
 * a batch of its own, taken a few from each partition in round-robin order. Rows are taken with
 * `FOR UPDATE SKIP LOCKED`, so workers claiming at the same moment take different events and never
 * wait for each other. Batch ids are those `createBatchId` gives, computed by the database.
 *
 * The commit does not wait for the WAL to reach disk (`synchronous_commit` off for this transaction
 * alone). Should the database server crash within that moment, the claim is lost and the batches
 * are claimed again and delivered twice, as when a worker dies after delivering: a crash never
 * loses an event, because `enqueue` commits synchronously.
 */
export async function claimSingleEventBatches(executor: Queryable, names: SchemaNames, request: ClaimRequest, lease: ClaimLease): Promise<{ batches: ClaimedBatch[]; nextReadyAt: number | undefined }> {
  const { destination } = request;
  const text = claimText(names);
  const result = await executor.query<ClaimedRow>(prepared(text, [destination, request.now, request.maxBatches, lease.until, lease.token, request.owner, destinationDigest(destination)]));
  const batches: ClaimedBatch[] = [];
  let nextReadyAt: number | undefined;
  // Rows come batch by batch (a retaken batch may hold several events, oldest first; new ones in
  // round-robin order), then the next ready time.
  let events: QueuedEvent[] = [];
  for (const row of result.rows) {
    if (row.batch_id === null) {
      if (row.next_ready_at !== null) nextReadyAt = Number(row.next_ready_at);
      continue;
    }
    const partition = row.partition!;
    if (batches.at(-1)?.id !== row.batch_id) {
      events = [];
      batches.push({ id: row.batch_id, destination, partition, events, leaseUntil: lease.until });
    }
    events.push(toQueuedEvent({ id: row.id!, payload: row.payload!, size: row.size!, sent_at: row.sent_at!, attempts: row.attempts!, trace: row.trace }, destination, partition));
  }
  if (batches.length > 0) nextReadyAt = nextReadyAt === undefined ? lease.until : Math.min(nextReadyAt, lease.until);
  return { batches, nextReadyAt };
}

const claimText = textPerSchema(({ table, sequence }) => `WITH RECURSIVE relaxed AS (
       SELECT set_config('synchronous_commit', 'off', true) AS setting
     ), due AS (
       SELECT id FROM ${table('batches')}
       WHERE destination = $1 AND coalesce(lease_until, available_at) <= $2
         AND NOT EXISTS (SELECT 1 FROM ${table('partition_states')} s WHERE s.destination = $1 AND s.partition = ${table('batches')}.partition)
       ORDER BY coalesce(lease_until, available_at) LIMIT $3
       FOR UPDATE SKIP LOCKED
     ), leased AS (
       UPDATE ${table('batches')} b SET lease_until = $4, lease_token = $5, owner = $6
       FROM due WHERE b.id = due.id
       RETURNING b.id, b.partition
     ), retaken AS (
       UPDATE ${table('events')} e SET attempts = e.attempts + 1 FROM leased WHERE e.batch_id = leased.id
       RETURNING e.seq, e.id, e.payload, e.size, e.sent_at, e.attempts, e.trace, e.batch_id, leased.partition
     ), waiting(partition) AS (
       (SELECT partition FROM ${table('events')} WHERE destination = $1 AND batch_id IS NULL ORDER BY partition LIMIT 1)
       UNION ALL
       SELECT (SELECT e.partition FROM ${table('events')} e
               WHERE e.destination = $1 AND e.batch_id IS NULL AND e.partition > waiting.partition ORDER BY e.partition LIMIT 1)
       FROM waiting WHERE waiting.partition IS NOT NULL
     ), candidates AS (
       SELECT w.partition, row_number() OVER (ORDER BY coalesce(p.served_at, 0), w.partition) AS turn
       FROM waiting w LEFT JOIN ${table('partitions')} p ON p.destination = $1 AND p.partition = w.partition
       WHERE w.partition IS NOT NULL
         AND NOT EXISTS (SELECT 1 FROM ${table('partition_states')} s WHERE s.destination = $1 AND s.partition = w.partition)
       ORDER BY turn LIMIT ${partitionsPerClaim}
     ), picked AS (
       SELECT c.partition, c.turn, e.seq, e.id FROM candidates c CROSS JOIN LATERAL (
         SELECT seq, id FROM ${table('events')}
         WHERE destination = $1 AND partition = c.partition AND batch_id IS NULL
         ORDER BY seq LIMIT $3 FOR UPDATE SKIP LOCKED
       ) AS e
     ), ranked AS (
       SELECT partition, seq, id, row_number() OVER (ORDER BY rank_in_partition, turn) AS position
       FROM (SELECT *, row_number() OVER (PARTITION BY partition ORDER BY seq) AS rank_in_partition FROM picked) AS numbered
     ), chosen AS (
       SELECT partition, seq, position,
              CASE WHEN id ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN replace(id, '-', '') || $7
                   ELSE encode(sha256(convert_to($1 || E'\\n' || id || E'\\n', 'UTF8')), 'hex') END AS batch_id
       FROM ranked
       ORDER BY position
       LIMIT greatest(0, $3 - (SELECT count(*) FROM leased))
     ), formed AS (
       INSERT INTO ${table('batches')} (id, destination, partition, first_seq, available_at, lease_until, lease_token, owner)
       SELECT batch_id, $1, partition, seq, $2, $4, $5, $6 FROM chosen
     ), taken AS (
       UPDATE ${table('events')} e SET batch_id = chosen.batch_id, attempts = e.attempts + 1
       FROM chosen WHERE e.seq = chosen.seq
       RETURNING e.seq, e.id, e.payload, e.size, e.sent_at, e.attempts, e.trace, e.batch_id, chosen.partition, chosen.position
     ), served AS (
       SELECT DISTINCT partition FROM chosen WHERE (SELECT count(*) FROM candidates) > 1
     ), moved AS (
       UPDATE ${table('partitions')} p SET served_at = nextval('${sequence('serve_seq')}')
       FROM (SELECT q.partition FROM ${table('partitions')} q JOIN served USING (partition)
             WHERE q.destination = $1 ORDER BY q.partition FOR UPDATE OF q SKIP LOCKED) AS locked
       WHERE p.destination = $1 AND p.partition = locked.partition
     ), added AS (
       INSERT INTO ${table('partitions')} (destination, partition, served_at)
       SELECT $1, partition, nextval('${sequence('serve_seq')}') FROM served
       WHERE NOT EXISTS (SELECT 1 FROM ${table('partitions')} p WHERE p.destination = $1 AND p.partition = served.partition)
       ON CONFLICT (destination, partition) DO NOTHING
     )
     SELECT seq, id, payload, size, sent_at, attempts, trace, batch_id, partition, next_ready_at FROM (
       SELECT 0 AS kind, 0::bigint AS position, seq, id, payload, size, sent_at, attempts, trace, batch_id, partition, NULL::bigint AS next_ready_at FROM retaken
       UNION ALL
       SELECT 1, position, seq, id, payload, size, sent_at, attempts, trace, batch_id, partition, NULL FROM taken
       UNION ALL
       SELECT 2, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
              (SELECT min(coalesce(lease_until, available_at)) FROM ${table('batches')} WHERE destination = $1 AND coalesce(lease_until, available_at) > $2)
     ) AS claimed
     WHERE EXISTS (SELECT 1 FROM relaxed)
     ORDER BY kind, CASE WHEN kind = 0 THEN batch_id END, position, seq`);

const digests = new Map<string, string>();

/** The half of a single-event batch id that names the destination, as `createBatchId` forms it. */
function destinationDigest(destination: string): string {
  let digest = digests.get(destination);
  if (digest === undefined) {
    digest = createBatchId(destination, ['00000000-0000-0000-0000-000000000000']).slice(32);
    if (digests.size < 10_000) digests.set(destination, digest);
  }
  return digest;
}
