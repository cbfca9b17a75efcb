import { createBatchId, createEventId, EgressStoreUnavailableError, type ClaimedBatch, type QueuedEvent, type Settlement, type Store } from '@egress/core';
import pg from 'pg';
import { afterAll, describe, expect, test } from 'vitest';
import { postgresStore } from '../../src/index.js';
import { dropSchemas, postgresUrl, query, randomSchema } from '../postgres-test-schema.js';
import { proxiedDatabase, sleep } from './fault-harness.js';
import type { TcpProxy } from './tcp-proxy.js';

const schemas = new Set<string>();
/** The store's periodic capacity count and its check for a database that came back run on their own; they are not part of the operation being cut. */
const capacityCount = /AS events,\s+\(SELECT coalesce|SELECT 1 AS reachable/;
const leaseMs = 300;

function events(destination: string, count: number): QueuedEvent[] {
  return Array.from({ length: count }, (_, n) => ({ id: createEventId(), destination, partition: '', payload: JSON.stringify({ n }), size: 8, sentAt: Date.now(), attempts: 0 }));
}

function claim(store: Store, destination: string) {
  return store.claim({ destination, now: Date.now(), owner: 'test', maxBatches: 10, maxEvents: 100, maxBytes: 1_000_000, maxDelay: 0, force: true, fifo: false, leaseMs });
}

/** Claims until every one of `ids` is held (a claim whose answer was lost holds its batch until the lease ends). */
async function claimAll(store: Store, destination: string, ids: readonly string[]): Promise<ClaimedBatch[]> {
  const held: ClaimedBatch[] = [];
  const deadline = Date.now() + 5000;
  while (held.flatMap((batch) => batch.events).length < ids.length) {
    if (Date.now() > deadline) throw new Error(`could not claim all ${ids.length} events of ${destination}`);
    held.push(...(await claim(store, destination)).batches);
    await sleep(30);
  }
  expect(held.flatMap((batch) => batch.events.map((event) => event.id)).sort()).toEqual([...ids].sort());
  return held;
}

/** Runs `operation` with the connection cut at its `atStatement`-th statement; returns whether it failed (then with the typed error). */
async function cutAt<T>(proxy: TcpProxy, atStatement: number, forward: boolean, operation: () => Promise<T>): Promise<boolean> {
  proxy.armCut({ atStatement, forward, ignore: capacityCount });
  try {
    await operation();
    return false;
  } catch (error) {
    expect(EgressStoreUnavailableError.isInstance(error), String(error)).toBe(true);
    return true;
  } finally {
    proxy.disarm();
  }
}

async function countStatements(proxy: TcpProxy, operation: () => Promise<unknown>): Promise<number> {
  proxy.armCut({ atStatement: Number.POSITIVE_INFINITY, forward: true, ignore: capacityCount });
  await operation();
  const statements = proxy.statements;
  proxy.disarm();
  return statements;
}

async function counters(schema: string, destination: string) {
  const rows = await query<{ delivered: string; failed: string }>(`SELECT sum(delivered) AS delivered, sum(failed) AS failed FROM "${schema}".counters WHERE destination = $1`, [destination]);
  return { delivered: Number(rows[0]?.delivered ?? 0), failed: Number(rows[0]?.failed ?? 0) };
}

async function remaining(schema: string, destination: string) {
  const [events] = await query<{ count: string }>(`SELECT count(*) AS count FROM "${schema}".events WHERE destination = $1`, [destination]);
  const [batches] = await query<{ count: string }>(`SELECT count(*) AS count FROM "${schema}".batches WHERE destination = $1`, [destination]);
  return { events: Number(events!.count), batches: Number(batches!.count) };
}

describe.skipIf(!postgresUrl)('postgres store: a connection cut in the middle of a claim or a settlement', () => {
  afterAll(() => dropSchemas(schemas));

  test('a claim cut at any of its statements either leases nothing or leases batches that come back after the lease; no event is lost or split', async () => {
    const schema = randomSchema();
    schemas.add(schema);
    const { proxy, url } = await proxiedDatabase();
    const store = postgresStore({ connectionString: url, schema, leaseMs, connectTimeout: 1000, queryTimeout: 2000 });
    try {
      await store.open();
      await store.enqueue(events('probe', 3));
      const statements = await countStatements(proxy, () => claim(store, 'probe'));
      expect(statements).toBeGreaterThan(2);
      let failures = 0;
      for (let atStatement = 1; atStatement <= statements; atStatement++) {
        for (const forward of [false, true]) {
          const destination = `claim_${atStatement}_${forward}`;
          const queued = events(destination, 3);
          await store.enqueue(queued);
          if (await cutAt(proxy, atStatement, forward, () => claim(store, destination))) failures += 1;
          const held = await claimAll(store, destination, queued.map((event) => event.id));
          for (const batch of held) await store.settle(batch, { delivered: batch.events.map((event) => event.id), dead: [] });
          expect(await remaining(schema, destination)).toEqual({ events: 0, batches: 0 });
          expect((await counters(schema, destination)).delivered).toBe(3);
        }
      }
      // Every cut landed inside the claim and made it fail.
      expect(failures).toBe(statements * 2);
    } finally {
      await store.close();
      await proxy.close();
    }
  }, 60_000);

  test('a settlement cut at any of its statements is written whole or not at all, and settling again counts it once', async () => {
    const schema = randomSchema();
    schemas.add(schema);
    const { proxy, url } = await proxiedDatabase();
    const store = postgresStore({ connectionString: url, schema, leaseMs: 10_000, connectTimeout: 1000, queryTimeout: 2000 });
    const error = { name: 'Error', message: 'refused', at: Date.now() };
    // The plain case (all delivered) and the mixed one (delivered, retried and dead in one settlement).
    const settlements: Record<string, (batch: ClaimedBatch) => Settlement> = {
      delivered: (batch) => ({ delivered: batch.events.map((event) => event.id), dead: [] }),
      mixed: (batch) => ({
        delivered: [batch.events[0]!.id],
        retry: { batchId: createBatchId(batch.destination, [batch.events[1]!.id]), eventIds: [batch.events[1]!.id], availableAt: Date.now(), error },
        dead: [{ eventId: batch.events[2]!.id, error }],
      }),
    };
    try {
      await store.open();
      for (const [kind, settlement] of Object.entries(settlements)) {
        await store.enqueue(events(`probe_${kind}`, 3));
        const [probe] = (await claim(store, `probe_${kind}`)).batches;
        const statements = await countStatements(proxy, () => store.settle(probe!, settlement(probe!)));
        let failures = 0;
        for (let atStatement = 1; atStatement <= statements; atStatement++) {
          for (const forward of [false, true]) {
            const destination = `settle_${kind}_${atStatement}_${forward}`;
            await store.enqueue(events(destination, 3));
            const [batch] = (await claim(store, destination)).batches;
            expect(batch!.events).toHaveLength(3);
            if (await cutAt(proxy, atStatement, forward, () => store.settle(batch!, settlement(batch!)))) failures += 1;
            // What the engine does while the lease holds: settle again.
            await store.settle(batch!, settlement(batch!));
            if (kind === 'delivered') {
              expect(await remaining(schema, destination)).toEqual({ events: 0, batches: 0 });
              expect(await counters(schema, destination)).toEqual({ delivered: 3, failed: 0 });
            } else {
              // One delivered, one waiting in its retry batch, one dead: each once.
              expect(await remaining(schema, destination)).toEqual({ events: 1, batches: 1 });
              expect(await counters(schema, destination)).toEqual({ delivered: 1, failed: 2 });
              const dead = await query<{ id: string }>(`SELECT id FROM "${schema}".dead_letters WHERE destination = $1`, [destination]);
              expect(dead.map((row) => row.id)).toEqual([batch!.events[2]!.id]);
            }
          }
        }
        expect(failures, `${kind}: every cut made the settlement fail`).toBe(statements * 2);
      }
    } finally {
      await store.close();
      await proxy.close();
    }
  }, 60_000);

  test('an enqueue cut at any of its statements is written once, even when its events were delivered before it was retried', async () => {
    const schema = randomSchema();
    schemas.add(schema);
    const { proxy, url } = await proxiedDatabase();
    const producer = postgresStore({ connectionString: url, schema, connectTimeout: 1000, queryTimeout: 2000 });
    const worker = postgresStore({ connectionString: postgresUrl!, schema, leaseMs: 10_000 });
    try {
      await producer.open();
      await worker.open();
      const statements = await countStatements(proxy, () => producer.enqueue(events('probe', 1)));
      let failures = 0;
      for (let atStatement = 1; atStatement <= statements; atStatement++) {
        for (const forward of [false, true]) {
          const destination = `enqueue_${atStatement}_${forward}`;
          const queued = events(destination, 3);
          if (await cutAt(proxy, atStatement, forward, () => producer.enqueue(queued))) failures += 1;
          // A worker delivers whatever arrived before the producer writes again...
          let claimed = 0;
          for (const batch of (await claim(worker, destination)).batches) {
            claimed += batch.events.length;
            await worker.settle(batch, { delivered: batch.events.map((event) => event.id), dead: [] });
          }
          // ...and the producer writes the same events again, as the engine does after a failure.
          await producer.enqueue(queued);
          for (const batch of (await claim(worker, destination)).batches) {
            claimed += batch.events.length;
            await worker.settle(batch, { delivered: batch.events.map((event) => event.id), dead: [] });
          }
          expect(claimed, `${destination}: each event claimed once`).toBe(3);
          expect((await counters(schema, destination)).delivered).toBe(3);
        }
      }
      expect(failures).toBe(statements * 2);
    } finally {
      await producer.close();
      await worker.close();
      await proxy.close();
    }
  }, 60_000);

  test('an enqueue whose cut write may still be running waits for it rather than writing its events a second time', async () => {
    const schema = randomSchema();
    schemas.add(schema);
    const { proxy, url } = await proxiedDatabase();
    const producer = postgresStore({ connectionString: url, schema, connectTimeout: 1000, queryTimeout: 2000 });
    const running = new pg.Client({ connectionString: postgresUrl! });
    try {
      await producer.open();
      await producer.enqueue(events('d', 1));
      const queued = events('d', 3);
      expect(await cutAt(proxy, 1, false, () => producer.enqueue(queued))).toBe(true);
      // Another transaction holds the producer's row, as the cut write would while PostgreSQL still runs it.
      await running.connect();
      await running.query('BEGIN');
      await running.query(`SELECT * FROM "${schema}".producers FOR UPDATE`);
      const waiting = await producer.enqueue(queued).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(EgressStoreUnavailableError.isInstance(waiting), String(waiting)).toBe(true);
      expect(String((waiting as Error).message)).toContain('still open');
      await running.query('COMMIT');
      await producer.enqueue(queued);
      const rows = await query<{ count: string }>(`SELECT count(*) AS count FROM "${schema}".events WHERE id = ANY($1)`, [queued.map((event) => event.id)]);
      expect(Number(rows[0]!.count)).toBe(3);
    } finally {
      await running.end();
      await producer.close();
      await proxy.close();
    }
  }, 30_000);

  test('a settlement retried after its lease was taken over by another worker is ignored', async () => {
    const schema = randomSchema();
    schemas.add(schema);
    const { proxy, url } = await proxiedDatabase();
    const first = postgresStore({ connectionString: url, schema, leaseMs, connectTimeout: 1000, queryTimeout: 2000 });
    const second = postgresStore({ connectionString: postgresUrl!, schema, leaseMs: 10_000 });
    try {
      await first.open();
      await second.open();
      await first.enqueue(events('d', 2));
      const [batch] = (await claim(first, 'd')).batches;
      const settlement = { delivered: batch!.events.map((event) => event.id), dead: [] };
      expect(await cutAt(proxy, 1, false, () => first.settle(batch!, settlement))).toBe(true);
      await sleep(leaseMs + 50);
      const [takenOver] = (await claim(second, 'd')).batches;
      expect(takenOver!.id).toBe(batch!.id);
      // The first worker's retry comes too late: the batch now belongs to the second.
      await first.settle(batch!, settlement);
      expect(await remaining(schema, 'd')).toEqual({ events: 2, batches: 1 });
      await second.settle(takenOver!, settlement);
      expect(await remaining(schema, 'd')).toEqual({ events: 0, batches: 0 });
      expect((await counters(schema, 'd')).delivered).toBe(2);
    } finally {
      await first.close();
      await second.close();
      await proxy.close();
    }
  }, 30_000);
});
