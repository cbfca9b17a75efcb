import { createBatchId, createEventId, EgressCapacityError, EgressConfigurationError, type ClaimRequest, type ClaimedBatch, type QueuedEvent, type Store } from '@egress/core';
import { afterAll, describe, expect, test } from 'vitest';
import pg from 'pg';
import { postgresStore, type PostgresStoreOptions } from '../src/index.js';
import { partitionLockClassId } from '../src/schema-names.js';
import { dropSchemas, postgresUrl, query, randomSchema } from './postgres-test-schema.js';

const created = new Set<string>();
const open: Store[] = [];
const t0 = 1_700_000_000_000;

/** A store on `schema`, as one more process sharing the database would open it. */
async function openStore(schema: string, options: Partial<PostgresStoreOptions> = {}): Promise<Store> {
  created.add(schema);
  const store = postgresStore({ connectionString: postgresUrl!, schema, ...options });
  open.push(store);
  await store.open();
  return store;
}

function events(count: number, overrides: Partial<QueuedEvent> = {}): QueuedEvent[] {
  return Array.from({ length: count }, (_, index) => ({
    id: createEventId(),
    destination: 'd',
    partition: 'p',
    payload: JSON.stringify({ index }),
    size: 10,
    sentAt: t0,
    attempts: 0,
    ...overrides,
  }));
}

function request(overrides: Partial<ClaimRequest> = {}): ClaimRequest {
  return { destination: 'd', now: t0, owner: 'test', maxBatches: 1, maxEvents: 1, maxBytes: 1_000_000, maxDelay: 0, force: false, fifo: false, leaseMs: 60_000, ...overrides };
}

async function until(condition: () => boolean | Promise<boolean>, timeout = 10_000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe.skipIf(!postgresUrl)('postgres store shared by several processes', () => {
  afterAll(async () => {
    await Promise.all(open.map((store) => store.close()));
    await dropSchemas(created);
  });

  test('stores claiming at once never put one event in two batches, and every event is delivered once', async () => {
    const schema = randomSchema();
    const stores = await Promise.all([1, 2, 3, 4].map(() => openStore(schema)));
    const queued = [...events(150, { partition: 'a' }), ...events(150, { partition: 'b' }), ...events(100, { partition: 'c' })];
    for (let index = 0; index < queued.length; index += 50) await stores[index % 4]!.enqueue(queued.slice(index, index + 50));

    const seen = new Map<string, string>();
    await Promise.all(
      stores.map(async (store, worker) => {
        for (;;) {
          const { batches } = await store.claim(request({ owner: `w${worker}`, maxEvents: 7, maxBatches: 3 }));
          if (batches.length === 0) {
            const [{ count }] = (await query<{ count: string }>(`SELECT count(*) AS count FROM "${schema}".events`)) as [{ count: string }];
            if (Number(count) === 0) return;
            await new Promise((resolve) => setTimeout(resolve, 5));
            continue;
          }
          for (const batch of batches) {
            for (const event of batch.events) {
              expect(seen.has(event.id), `event ${event.id} in two batches`).toBe(false);
              seen.set(event.id, batch.id);
            }
            await store.settle(batch, { delivered: batch.events.map((event) => event.id), dead: [] });
          }
        }
      }),
    );
    expect(seen.size).toBe(queued.length);
  });

  test('FIFO holds across stores: one batch in flight per partition', async () => {
    const schema = randomSchema();
    const [first, second] = await Promise.all([openStore(schema), openStore(schema)]);
    await first!.enqueue(events(6, { partition: 'ordered' }));
    const fifo = request({ fifo: true, maxEvents: 2, maxBatches: 5 });
    const [a, b] = await Promise.all([first!.claim(fifo), second!.claim(fifo)]);
    expect(a!.batches.length + b!.batches.length).toBe(1);
    const [batch] = [...a!.batches, ...b!.batches];
    expect((await second!.claim(fifo)).batches).toEqual([]);
    await (a!.batches.length > 0 ? first! : second!).settle(batch!, { delivered: batch!.events.map((event) => event.id), dead: [] });
    const next = await second!.claim(fifo);
    expect(next.batches.map((claimed) => claimed.events.length)).toEqual([2]);
  });

  test('a settlement from a worker whose lease was taken over is ignored; the new holder settles', async () => {
    const schema = randomSchema();
    const [slow, other] = await Promise.all([openStore(schema), openStore(schema)]);
    const queued = events(3);
    await slow!.enqueue(queued);
    const [stale] = (await slow!.claim(request({ maxEvents: 10, leaseMs: 1000 }))).batches;
    const [taken] = (await other!.claim(request({ now: t0 + 1001, maxEvents: 10, leaseMs: 1000 }))).batches;
    expect(taken!.id).toBe(stale!.id);
    expect(taken!.events.map((event) => event.attempts)).toEqual([2, 2, 2]);

    await slow!.settle(stale!, { delivered: queued.map((event) => event.id), dead: [] });
    expect(await other!.eventState(queued[0]!.id)).toBe('pending');
    const [again] = (await slow!.claim(request({ now: t0 + 2002, maxEvents: 10, leaseMs: 1000 }))).batches;
    const [taken2] = (await other!.claim(request({ now: t0 + 3003, maxEvents: 10 }))).batches;
    expect(taken2!.id).toBe(again!.id);
    await slow!.settle(again!, { delivered: [], dead: queued.map((event) => ({ eventId: event.id, error: { name: 'PermanentError', message: 'late', at: t0 } })) });
    expect(await other!.eventState(queued[0]!.id)).toBe('pending');
    expect(await other!.listDead({})).toEqual([]);

    await other!.settle(taken2!, { delivered: queued.map((event) => event.id), dead: [] });
    expect(await slow!.eventState(queued[0]!.id)).toBe('gone');
    // Only the settlement that applied is counted, and both processes read the same totals.
    for (const store of [slow!, other!]) expect((await store.stats(t0 + 4000)).map(({ delivered, failed }) => ({ delivered, failed }))).toEqual([{ delivered: 3, failed: 0 }]);
  });

  test('LISTEN/NOTIFY wakes other processes on enqueue and release, not the one that did it', async () => {
    const schema = randomSchema();
    const [producer, worker] = await Promise.all([openStore(schema, { pollInterval: 60_000 }), openStore(schema, { pollInterval: 60_000 })]);
    const heardByWorker: (string | undefined)[] = [];
    const heardByProducer: (string | undefined)[] = [];
    const stopWorker = worker!.subscribe!((destination) => heardByWorker.push(destination));
    const stopProducer = producer!.subscribe!((destination) => heardByProducer.push(destination));
    // LISTEN is issued in the background; give it a moment to be in place before the first NOTIFY.
    await until(async () => {
      const rows = await query<{ count: string }>(`SELECT count(*) AS count FROM pg_stat_activity WHERE query LIKE 'LISTEN "egress_work:${schema}"%'`);
      return Number(rows[0]!.count) >= 2;
    });
    await producer!.enqueue(events(2, { destination: 'webhooks' }));
    await until(() => heardByWorker.includes('webhooks'));

    const [batch] = (await worker!.claim(request({ destination: 'webhooks', maxEvents: 10 }))).batches;
    await worker!.release(batch!);
    await until(() => heardByProducer.includes('webhooks'));
    expect(heardByWorker.filter((destination) => destination === 'webhooks')).toHaveLength(1);
    stopWorker();
    stopProducer();
  });

  test('a listener whose connection is cut wakes its subscribers, listens again and hears later work', async () => {
    const schema = randomSchema();
    const [producer, worker] = await Promise.all([openStore(schema, { pollInterval: 3_600_000 }), openStore(schema, { pollInterval: 3_600_000 })]);
    const heard: (string | undefined)[] = [];
    const stop = worker!.subscribe!((destination) => heard.push(destination));
    const listeners = () => query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE query LIKE 'LISTEN "egress_work:${schema}"%'`);
    await until(async () => (await listeners()).length === 1);
    const [{ pid }] = (await listeners()) as [{ pid: number }];
    await query('SELECT pg_terminate_backend($1)', [pid]);
    // Work may have been announced while nobody listened, so subscribers are woken at once.
    await until(() => heard.includes(undefined));
    await until(async () => (await listeners()).some((row) => row.pid !== pid));
    await producer!.enqueue(events(1, { destination: 'after-reconnect' }));
    await until(() => heard.includes('after-reconnect'));
    stop();
  });

  test('the slow poll wakes subscribers when no notification comes', async () => {
    const store = await openStore(randomSchema(), { pollInterval: 50 });
    const heard: (string | undefined)[] = [];
    const stop = store.subscribe!((destination) => heard.push(destination));
    await until(() => heard.length >= 2);
    expect(heard.every((destination) => destination === undefined)).toBe(true);
    stop();
  });

  test('capacity counts what every process holds', async () => {
    const schema = randomSchema();
    const [filling, watching] = await Promise.all([openStore(schema, { maxEvents: 5 }), openStore(schema, { maxEvents: 5 })]);
    await filling!.enqueue(events(5));
    expect(filling!.admit(1, 10)).toBe(false);
    await expect(filling!.enqueue(events(1))).rejects.toSatisfy(EgressCapacityError.isInstance);
    // The other process learns it from its periodic count of the tables.
    await until(() => !watching!.admit(1, 10));
    const { batches } = await watching!.claim(request({ maxEvents: 5 }));
    await watching!.settle(batches[0]!, { delivered: batches[0]!.events.map((event) => event.id), dead: [] });
    expect(watching!.admit(5, 50)).toBe(true);
    await until(() => filling!.admit(5, 50));
  });

  test('an enqueue the database refuses stores none of its events and does not fail its neighbours', async () => {
    const store = await openStore(randomSchema());
    const good = events(3);
    // PostgreSQL text cannot hold a NUL character, so this enqueue fails inside the database.
    const bad = [...events(2), { ...events(1)[0]!, payload: '{"text":"\u0000"}' }];
    const results = await Promise.allSettled([store.enqueue(good.slice(0, 1)), store.enqueue(bad), store.enqueue(good.slice(1))]);
    expect(results.map((result) => result.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    for (const event of bad) expect(await store.eventState(event.id)).toBe('gone');
    for (const event of good) expect(await store.eventState(event.id)).toBe('pending');
  });

  test('an enqueue repeated after an uncertain commit does not duplicate events', async () => {
    const store = await openStore(randomSchema());
    const queued = events(3);
    await store.enqueue(queued);
    await store.enqueue(queued);
    const { batches } = await store.claim(request({ maxEvents: 10 }));
    expect(batches[0]!.events.map((event) => event.id)).toEqual(queued.map((event) => event.id));
  });

  test('workers share a partition that is not FIFO: a claim takes the events another worker is not batching, without waiting for it', async () => {
    const schema = randomSchema();
    const store = await openStore(schema);
    await store.enqueue(events(6));
    // Another worker, mid-claim: it holds the partition's old claim lock and the two oldest events.
    const other = new pg.Client({ connectionString: postgresUrl });
    await other.connect();
    try {
      await other.query('BEGIN');
      await other.query('SELECT pg_advisory_xact_lock($1::int, hashtext($2))', [partitionLockClassId(schema, 'd'), 'p']);
      const held = await other.query<{ id: string }>(`SELECT id FROM "${schema}".events WHERE batch_id IS NULL ORDER BY seq LIMIT 2 FOR UPDATE`);
      const heldIds = new Set(held.rows.map((row) => row.id));
      for (const maxEvents of [1, 2]) {
        const { batches } = await store.claim(request({ maxEvents, maxBatches: 1 }));
        expect(batches).toHaveLength(1);
        for (const event of batches[0]!.events) expect(heldIds.has(event.id)).toBe(false);
      }
      // A FIFO partition stays one worker's at a time.
      const fifo = await store.claim(request({ fifo: true, maxBatches: 4 }));
      expect(fifo.batches).toEqual([]);
      await other.query('ROLLBACK');
    } finally {
      await other.end();
    }
  });

  test('one claim leases many single-event batches, with the ids createBatchId gives, retries first, taking turns between partitions', async () => {
    const schema = randomSchema();
    const store = await openStore(schema);
    const busy = events(20, { partition: 'busy' });
    const odd = { ...events(1, { partition: 'busy' })[0]!, id: 'Not-A-UUID' };
    const quiet = events(2, { partition: 'quiet' });
    await store.enqueue([...busy, odd]);
    await store.enqueue(quiet);

    const first = await store.claim(request({ maxBatches: 3 }));
    expect(first.batches.map((batch) => batch.partition)).toEqual(['busy', 'quiet', 'busy']);
    for (const batch of first.batches) {
      expect(batch.events).toHaveLength(1);
      expect(batch.id).toBe(createBatchId('d', [batch.events[0]!.id]));
      expect(batch.events[0]!.attempts).toBe(1);
    }
    const retried = first.batches[0]!;
    await store.settle(retried, { delivered: [], retry: { batchId: retried.id, eventIds: [retried.events[0]!.id], availableAt: t0 + 1_000, error: { name: 'RetryableError', message: 'busy', at: t0 } }, dead: [] });

    const later = await store.claim(request({ now: t0 + 1_000, maxBatches: 30 }));
    expect(later.batches[0]!.id).toBe(retried.id);
    expect(later.batches[0]!.events[0]!.attempts).toBe(2);
    // The retry, then the 20 events still waiting (17 busy, the odd one, 1 quiet).
    expect(later.batches).toHaveLength(1 + 20);
    const oddBatch = later.batches.find((batch) => batch.events[0]!.id === odd.id)!;
    expect(oddBatch.id).toBe(createBatchId('d', [odd.id]));
    expect(new Set(later.batches.map((batch) => batch.id)).size).toBe(later.batches.length);
  });

  test('settlements arriving together are written together and each is recorded once', async () => {
    const schema = randomSchema();
    const store = await openStore(schema);
    await store.enqueue(events(60));
    const { batches } = await store.claim(request({ maxBatches: 60 }));
    expect(batches).toHaveLength(60);
    const error = { name: 'PermanentError', message: 'gone', at: t0 };
    await Promise.all(
      batches.map((batch, index) =>
        store.settle(batch, index % 10 === 0 ? { delivered: [], dead: [{ eventId: batch.events[0]!.id, error }] } : { delivered: [batch.events[0]!.id], dead: [] }),
      ),
    );
    const [stats] = await store.stats(t0);
    expect(stats).toMatchObject({ waiting: 0, inFlight: 0, delivered: 54, failed: 6, dead: 6 });
    expect(await query(`SELECT id FROM "${schema}".batches`)).toEqual([]);
  });

  test('serves partitions round-robin so a large backlog does not starve a small one', async () => {
    const store = await openStore(randomSchema());
    await store.enqueue(events(50, { partition: 'busy' }));
    await store.enqueue(events(1, { partition: 'quiet' }));
    const served: string[] = [];
    for (let round = 0; round < 3; round++) {
      const { batches } = await store.claim(request({ maxEvents: 5, maxBatches: 2 }));
      served.push(...batches.map((batch: ClaimedBatch) => batch.partition));
    }
    expect(served.slice(0, 4)).toContain('quiet');
  });
});

describe('postgres store options', () => {
  test('names the option that is missing or wrong', () => {
    expect(() => postgresStore({})).toThrow('[egress] [postgres] option "connectionString": Missing required option');
    expect(() => postgresStore({ connectionString: 'postgres://x', schema: 'bad-name' })).toThrow('[postgres] option "schema"');
    expect(() => postgresStore({ connectionString: 'postgres://x', maxEvents: 0 })).toThrow('[postgres] option "maxEvents"');
    expect(() => postgresStore({ connectionString: 'postgres://x', pollInterval: 'soon' as never })).toThrow('[postgres] option "pollInterval"');
    expect(() => postgresStore({ connectionString: 'postgres://x', maxBytes: '8MiB', leaseMs: '2m' })).not.toThrow();
    expect(EgressConfigurationError.isInstance(captureError(() => postgresStore({})))).toBe(true);
  });
});

function captureError(action: () => unknown): unknown {
  try {
    action();
  } catch (error) {
    return error;
  }
  return undefined;
}
