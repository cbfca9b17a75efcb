import { createBatchId, type ClaimRequest, type ClaimedBatch, type QueuedEvent } from '@egress/core';
import type { PoolClient } from 'pg';
import { partitionLockClassId, type SchemaNames } from './schema-names.js';

/** How soon to look again when another worker held a partition we could have served. */
export const contentionRetryMs = 50;
/** Partitions examined per round trip. */
const partitionsPerRound = 32;
/** Most waiting events read to form one claim's batches. */
const waitingRowsCap = 50_000;

export interface ClaimLease {
  /** Lease end, Unix milliseconds. */
  readonly until: number;
  /** Random token identifying this lease; a settlement from an older lease is ignored. */
  readonly token: string;
}

interface EventRow {
  seq: string;
  id: string;
  payload: string;
  size: number;
  sent_at: string;
  attempts: number;
  trace: string | null;
  batch_id: string;
}

/**
 * Forms and leases batches inside the caller's transaction, as many as the request asks for in one
 * transaction. Workers share a partition: waiting events and formed batches are taken with
 * `FOR UPDATE SKIP LOCKED`, so two workers never put one event in two batches and neither waits
 * for the other. Only a FIFO partition is worked on under a transaction-scoped advisory lock
 * (`pg_try_advisory_xact_lock`), since its one-batch-in-flight check must not pass twice; a FIFO
 * partition that is busy is skipped and looked at again shortly.
 */
export async function claimBatches(client: PoolClient, names: SchemaNames, request: ClaimRequest, lease: ClaimLease): Promise<{ batches: ClaimedBatch[]; nextReadyAt: number | undefined }> {
  const batches: ClaimedBatch[] = [];
  const served: string[] = [];
  const seen: string[] = [];
  let candidatesFound = 0;
  let nextReadyAt: number | undefined;
  const later = (time: number) => {
    nextReadyAt = nextReadyAt === undefined ? time : Math.min(nextReadyAt, time);
  };
  const context: PartitionContext = { client, names, request, lease, batches, later };
  const lockClass = partitionLockClassId(names.scope, request.destination);

  if (request.partition !== undefined) {
    // A probe of one partition, paused or not; a disabled one gives nothing.
    const probe = await client.query<{ locked: boolean }>(
      `SELECT (NOT $4::boolean OR pg_try_advisory_xact_lock($2::int, hashtext($3))) AS locked
       WHERE NOT EXISTS (SELECT 1 FROM ${names.table('partition_states')} WHERE destination = $1 AND partition = $3 AND state = 'disabled')`,
      [request.destination, lockClass, request.partition, request.fifo],
    );
    if (probe.rows[0]?.locked) await claimPartition(context, request.partition);
    return { batches, nextReadyAt };
  }

  while (batches.length < request.maxBatches) {
    // Partitions with work are found by skipping through the indexes one partition at a time, so
    // the cost follows the number of active partitions, not the number of events or of partitions
    // ever seen. A partition never served yet goes first.
    const candidates = await client.query<{ partition: string; locked: boolean }>(
      `WITH RECURSIVE waiting(partition) AS (
         (SELECT partition FROM ${names.table('events')} WHERE destination = $1 AND batch_id IS NULL ORDER BY partition LIMIT 1)
         UNION ALL
         SELECT (SELECT e.partition FROM ${names.table('events')} e
                 WHERE e.destination = $1 AND e.batch_id IS NULL AND e.partition > waiting.partition ORDER BY e.partition LIMIT 1)
         FROM waiting WHERE waiting.partition IS NOT NULL
       ), formed(partition) AS (
         (SELECT partition FROM ${names.table('batches')} WHERE destination = $1 ORDER BY partition LIMIT 1)
         UNION ALL
         SELECT (SELECT b.partition FROM ${names.table('batches')} b
                 WHERE b.destination = $1 AND b.partition > formed.partition ORDER BY b.partition LIMIT 1)
         FROM formed WHERE formed.partition IS NOT NULL
       ), active AS (
         SELECT partition FROM waiting WHERE partition IS NOT NULL
         UNION
         SELECT partition FROM formed WHERE partition IS NOT NULL
       )
       SELECT partition, (NOT $5::boolean OR pg_try_advisory_xact_lock($2::int, hashtext(partition))) AS locked
       FROM (
         SELECT active.partition FROM active
         LEFT JOIN ${names.table('partitions')} p ON p.destination = $1 AND p.partition = active.partition
         WHERE active.partition <> ALL($3::text[])
           AND NOT EXISTS (SELECT 1 FROM ${names.table('partition_states')} s WHERE s.destination = $1 AND s.partition = active.partition)
         ORDER BY coalesce(p.served_at, 0), active.partition
         LIMIT $4 OFFSET 0
       ) AS candidates`,
      [request.destination, lockClass, seen, partitionsPerRound, request.fifo],
    );
    candidatesFound += candidates.rows.length;
    for (const { partition, locked } of candidates.rows) {
      seen.push(partition);
      if (!locked) {
        later(request.now + contentionRetryMs);
        continue;
      }
      const before = batches.length;
      await claimPartition(context, partition);
      if (batches.length > before) served.push(partition);
      if (batches.length >= request.maxBatches) break;
    }
    if (candidates.rows.length < partitionsPerRound) break;
  }

  // Round-robin: the partitions just served go to the back of the line. With one active partition
  // there is no line to keep. A row another worker is moving right now is left to it, so that
  // workers serving the same partitions never wait for each other here.
  if (served.length > 0 && candidatesFound > 1) {
    await client.query(
      `WITH served AS (
         SELECT partition FROM unnest($2::text[]) AS partition
       ), moved AS (
         UPDATE ${names.table('partitions')} p SET served_at = nextval('${names.sequence('serve_seq')}')
         FROM (SELECT p.destination, p.partition FROM ${names.table('partitions')} p JOIN served USING (partition)
               WHERE p.destination = $1 ORDER BY p.partition FOR UPDATE OF p SKIP LOCKED) AS locked
         WHERE p.destination = locked.destination AND p.partition = locked.partition
       )
       INSERT INTO ${names.table('partitions')} (destination, partition, served_at)
       SELECT $1, partition, nextval('${names.sequence('serve_seq')}') FROM served
       WHERE NOT EXISTS (SELECT 1 FROM ${names.table('partitions')} p WHERE p.destination = $1 AND p.partition = served.partition)
       ON CONFLICT (destination, partition) DO NOTHING`,
      [request.destination, served],
    );
  }
  return { batches, nextReadyAt };
}

interface PartitionContext {
  readonly client: PoolClient;
  readonly names: SchemaNames;
  readonly request: ClaimRequest;
  readonly lease: ClaimLease;
  readonly batches: ClaimedBatch[];
  readonly later: (time: number) => void;
}

async function claimPartition(context: PartitionContext, partition: string): Promise<void> {
  const { client, names, request, batches, later } = context;
  const { destination, now } = request;
  const remaining = () => request.maxBatches - batches.length;

  if (request.fifo) {
    // One batch in flight per partition, and the oldest formed batch (a retry) goes before anything newer.
    const first = await client.query<{ id: string; ready_at: string }>(
      `SELECT id, coalesce(lease_until, available_at) AS ready_at FROM ${names.table('batches')}
       WHERE destination = $1 AND partition = $2 ORDER BY first_seq, id LIMIT 1`,
      [destination, partition],
    );
    const oldest = first.rows[0];
    if (oldest) {
      const readyAt = Number(oldest.ready_at);
      if (readyAt > now) {
        later(readyAt);
        return;
      }
      const leased = await leaseFormed(context, partition, oldest.id, 1);
      if (leased === 0) later(now + contentionRetryMs);
      else later(context.lease.until);
      return;
    }
    await formFromWaiting(context, partition, 1);
    return;
  }

  const leased = await leaseFormed(context, partition, undefined, remaining());
  if (leased > 0) later(context.lease.until);
  const next = await client.query<{ ready_at: string | null }>(
    `SELECT min(coalesce(lease_until, available_at)) AS ready_at FROM ${names.table('batches')}
     WHERE destination = $1 AND partition = $2 AND coalesce(lease_until, available_at) > $3`,
    [destination, partition, now],
  );
  const readyAt = next.rows[0]?.ready_at;
  if (readyAt !== null && readyAt !== undefined) later(Number(readyAt));
  if (remaining() > 0) await formFromWaiting(context, partition, remaining());
}

/** Leases formed batches that are ready (a retry whose time has come, a released batch, an expired lease). */
async function leaseFormed(context: PartitionContext, partition: string, onlyId: string | undefined, limit: number): Promise<number> {
  const { client, names, request, lease, batches } = context;
  if (limit <= 0) return 0;
  const result = await client.query<EventRow & { first_seq: string }>(
    `WITH ready AS (
       SELECT id, first_seq FROM ${names.table('batches')}
       WHERE destination = $1 AND partition = $2 AND coalesce(lease_until, available_at) <= $3 AND ($4::text IS NULL OR id = $4)
       ORDER BY first_seq, id LIMIT $5
       FOR UPDATE SKIP LOCKED
     ), leased AS (
       UPDATE ${names.table('batches')} b SET lease_until = $6, lease_token = $7, owner = $8
       FROM ready WHERE b.id = ready.id
       RETURNING b.id, ready.first_seq
     )
     UPDATE ${names.table('events')} e SET attempts = e.attempts + 1
     FROM leased WHERE e.batch_id = leased.id
     RETURNING e.seq, e.id, e.payload, e.size, e.sent_at, e.attempts, e.trace, e.batch_id, leased.first_seq`,
    [request.destination, partition, request.now, onlyId ?? null, limit, lease.until, lease.token, request.owner],
  );
  const rows = result.rows.sort((a, b) => compareSeq(a.first_seq, b.first_seq) || a.batch_id.localeCompare(b.batch_id) || compareSeq(a.seq, b.seq));
  const before = batches.length;
  pushBatches(batches, request.destination, partition, rows, lease.until);
  return batches.length - before;
}

/** Forms new batches from a partition's waiting events, oldest first, as the batch policy allows. */
async function formFromWaiting(context: PartitionContext, partition: string, wanted: number): Promise<void> {
  const { client, names, request, lease, batches, later } = context;
  const { destination, now, maxEvents, maxBytes, maxDelay, force } = request;
  const limit = Math.min(maxEvents * wanted, waitingRowsCap);
  // A FIFO partition is ours alone (advisory lock). Elsewhere the rows are locked as they are read
  // and rows another worker is batching right now are skipped: both workers form batches at once,
  // from different events.
  const waiting = await client.query<{ seq: string; id: string; size: number; sent_at: string }>(
    `SELECT seq, id, size, sent_at FROM ${names.table('events')}
     WHERE destination = $1 AND partition = $2 AND batch_id IS NULL ORDER BY seq LIMIT $3
     ${request.fifo ? '' : 'FOR UPDATE SKIP LOCKED'}`,
    [destination, partition, limit],
  );
  const rows = waiting.rows;
  // When the read stopped at the limit, more events wait than we saw; counts below are lower bounds.
  // Rows skipped because another worker holds them are being batched by that worker.
  const complete = rows.length < limit;
  let bytesLeft = 0;
  for (const row of rows) bytesLeft += row.size;

  const formed: { id: string; firstSeq: string; eventSeqs: string[] }[] = [];
  let index = 0;
  while (formed.length < wanted && index < rows.length) {
    const countLeft = rows.length - index;
    const oldest = rows[index]!;
    const ready = force || countLeft >= maxEvents || bytesLeft >= maxBytes || now - Number(oldest.sent_at) >= maxDelay;
    if (!ready) {
      later(complete ? Number(oldest.sent_at) + maxDelay : now);
      break;
    }
    const eventIds: string[] = [];
    const eventSeqs: string[] = [];
    let bytes = 0;
    while (index < rows.length && eventIds.length < maxEvents) {
      const row = rows[index]!;
      if (eventIds.length > 0 && bytes + row.size > maxBytes) break;
      eventIds.push(row.id);
      eventSeqs.push(row.seq);
      bytes += row.size;
      index += 1;
    }
    bytesLeft -= bytes;
    formed.push({ id: createBatchId(destination, eventIds), firstSeq: oldest.seq, eventSeqs });
  }
  if (!complete && index >= rows.length && formed.length < wanted) later(now);
  if (formed.length === 0) return;

  const eventSeqs: string[] = [];
  const eventBatchIds: string[] = [];
  for (const batch of formed) {
    for (const seq of batch.eventSeqs) {
      eventSeqs.push(seq);
      eventBatchIds.push(batch.id);
    }
  }
  // Joined on seq within the partition's range of waiting events, so the work follows the size
  // of the batches formed, not the size of the backlog.
  const result = await client.query<EventRow>(
    `WITH new_batches AS (
       INSERT INTO ${names.table('batches')} (id, destination, partition, first_seq, available_at, lease_until, lease_token, owner)
       SELECT id, $1, $2, first_seq, $3, $4, $5, $6 FROM unnest($7::text[], $8::bigint[]) AS t(id, first_seq)
     )
     UPDATE ${names.table('events')} e SET batch_id = m.batch_id, attempts = e.attempts + 1
     FROM unnest($9::bigint[], $10::text[]) AS m(seq, batch_id)
     WHERE e.destination = $1 AND e.partition = $2 AND e.batch_id IS NULL
       AND e.seq BETWEEN $11 AND $12 AND e.seq = m.seq
     RETURNING e.seq, e.id, e.payload, e.size, e.sent_at, e.attempts, e.trace, e.batch_id`,
    [
      destination,
      partition,
      now,
      lease.until,
      lease.token,
      request.owner,
      formed.map((batch) => batch.id),
      formed.map((batch) => batch.firstSeq),
      eventSeqs,
      eventBatchIds,
      eventSeqs[0],
      eventSeqs[eventSeqs.length - 1],
    ],
  );
  if (result.rows.length !== eventSeqs.length) {
    // Only possible if the partition lock or the row locks were not respected; rolling back keeps every event in one batch.
    throw new Error(`[egress] [postgres] batch formation raced: expected ${eventSeqs.length} events, took ${result.rows.length}`);
  }
  const order = new Map(formed.map((batch, position) => [batch.id, position]));
  const rowsInOrder = result.rows.sort((a, b) => order.get(a.batch_id)! - order.get(b.batch_id)! || compareSeq(a.seq, b.seq));
  pushBatches(batches, destination, partition, rowsInOrder, lease.until);
}

/** Groups rows (sorted by batch, then by seq) into claimed batches. */
function pushBatches(batches: ClaimedBatch[], destination: string, partition: string, rows: readonly EventRow[], leaseUntil: number): void {
  let current: { id: string; events: QueuedEvent[] } | undefined;
  for (const row of rows) {
    if (!current || current.id !== row.batch_id) {
      current = { id: row.batch_id, events: [] };
      batches.push({ id: current.id, destination, partition, events: current.events, leaseUntil });
    }
    current.events.push(toQueuedEvent(row, destination, partition));
  }
}

export function toQueuedEvent(row: { id: string; payload: string; size: number; sent_at: string; attempts: number; trace: string | null }, destination: string, partition: string): QueuedEvent {
  return queuedEvent(row.id, destination, partition, row.payload, row.size, Number(row.sent_at), row.attempts, row.trace);
}

/**
 * An event with its trace context when it was sent with one. Each shape is written out whole:
 * untraced events keep the shape they always had, and a traced one is not copied from it by spread.
 */
export function queuedEvent(id: string, destination: string, partition: string, payload: string, size: number, sentAt: number, attempts: number, trace: string | null): QueuedEvent {
  return trace === null ? { id, destination, partition, payload, size, sentAt, attempts } : { id, destination, partition, payload, size, sentAt, attempts, trace };
}

function compareSeq(a: string, b: string): number {
  const difference = BigInt(a) - BigInt(b);
  return difference < 0n ? -1 : difference > 0n ? 1 : 0;
}
