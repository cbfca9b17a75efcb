import { statSync } from 'node:fs';
import { join } from 'node:path';
import { EgressCapacityError, createBatchId, decodePayload, type Store } from '@egress/core';
import { sqliteStore } from '@egress/store-sqlite';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { claimDefaults, queuedEvent, temporaryDirectory } from './helpers.js';

let directory: ReturnType<typeof temporaryDirectory>;
let path: string;
const opened: Store[] = [];

async function openStore(options: { maxEvents?: number; maxBytes?: number } = {}): Promise<Store> {
  const store = sqliteStore({ path, ...options });
  await store.open();
  opened.push(store);
  return store;
}

beforeEach(() => {
  directory = temporaryDirectory();
  path = join(directory.path, 'queue.db');
});

afterEach(async () => {
  for (const store of opened.splice(0)) await store.close();
  directory.remove();
});

describe('batches', () => {
  test('forms batches in arrival order up to maxEvents, with attempts counted at claim and a stable id', async () => {
    const store = await openStore();
    const events = Array.from({ length: 5 }, (_, index) => queuedEvent(index));
    await store.enqueue(events);
    const { batches } = await store.claim({ ...claimDefaults, maxEvents: 2 });
    expect(batches.map((batch) => batch.events.map((event) => decodePayload(event.payload)))).toEqual([[{ n: 0 }, { n: 1 }], [{ n: 2 }, { n: 3 }], [{ n: 4 }]]);
    expect(batches[0]!.id).toBe(createBatchId('test', [events[0]!.id, events[1]!.id]));
    expect(batches[0]!.events.every((event) => event.attempts === 1)).toBe(true);
    expect(batches[0]!.events[0]).toEqual({ ...events[0], attempts: 1 });
  });

  test('forms many batches in one claim, in arrival order, without splitting a batch at the end of a read', async () => {
    const store = await openStore({ maxEvents: 10_000 });
    const events = Array.from({ length: 1_000 }, (_, index) => queuedEvent(index));
    await store.enqueue(events);
    const { batches } = await store.claim({ ...claimDefaults, maxEvents: 3, maxBatches: 1_000 });
    expect(batches.map((batch) => batch.events.length)).toEqual([...Array.from({ length: 333 }, () => 3), 1]);
    expect(batches.flatMap((batch) => batch.events.map((event) => event.id))).toEqual(events.map((event) => event.id));
    expect(new Set(batches.map((batch) => batch.id)).size).toBe(334);
  });

  test('never lets a batch exceed maxBytes, but an event larger than maxBytes still forms a batch of one', async () => {
    const store = await openStore();
    await store.enqueue([queuedEvent(0, { size: 40 }), queuedEvent(1, { size: 40 }), queuedEvent(2, { size: 500 }), queuedEvent(3, { size: 10 })]);
    const { batches } = await store.claim({ ...claimDefaults, maxBytes: 100 });
    expect(batches.map((batch) => batch.events.map((event) => event.size))).toEqual([[40, 40], [500], [10]]);
  });

  test('waits for maxDelay unless a full batch is waiting or the claim is forced', async () => {
    const store = await openStore();
    await store.enqueue([queuedEvent(0, { sentAt: 1_000 }), queuedEvent(1, { sentAt: 1_100 })]);
    const early = await store.claim({ ...claimDefaults, now: 1_500, maxDelay: 1_000 });
    expect(early).toEqual({ batches: [], nextReadyAt: 2_000 });
    const full = await store.claim({ ...claimDefaults, now: 1_500, maxDelay: 1_000, maxEvents: 2, maxBatches: 1 });
    expect(full.batches).toHaveLength(1);
    await store.enqueue([queuedEvent(2, { sentAt: 1_600 })]);
    const bytes = await store.claim({ ...claimDefaults, now: 1_700, maxDelay: 1_000, maxBytes: 1 });
    expect(bytes.batches).toHaveLength(1);
    await store.enqueue([queuedEvent(3, { sentAt: 1_800 })]);
    expect((await store.claim({ ...claimDefaults, now: 1_900, maxDelay: 1_000 })).batches).toHaveLength(0);
    expect((await store.claim({ ...claimDefaults, now: 1_900, maxDelay: 1_000, force: true })).batches).toHaveLength(1);
  });

  test('under maxDelay, forms a batch exactly when maxEvents or maxBytes are waiting, across enqueues and claims', async () => {
    const store = await openStore();
    const claim = (extra: Partial<typeof claimDefaults> = {}) => store.claim({ ...claimDefaults, now: 1_500, maxDelay: 60_000, maxEvents: 3, ...extra });
    for (let index = 0; index < 2; index += 1) {
      await store.enqueue([queuedEvent(index, { size: 10 })]);
      expect((await claim()).batches).toHaveLength(0);
    }
    await store.enqueue([queuedEvent(2, { size: 10 })]);
    expect((await claim()).batches.map((batch) => batch.events.length)).toEqual([3]);
    await store.enqueue([queuedEvent(3, { size: 10 }), queuedEvent(4, { size: 10 })]);
    expect((await claim()).batches).toHaveLength(0);
    expect((await claim({ maxBytes: 20 })).batches.map((batch) => batch.events.length)).toEqual([2]);
    expect((await claim({ maxBytes: 20 })).batches).toHaveLength(0);
  });

  test('sees a full batch enqueued by another connection to the same file', async () => {
    const first = await openStore();
    const second = await openStore();
    const claim = () => first.claim({ ...claimDefaults, now: 1_500, maxDelay: 60_000, maxEvents: 2 });
    await first.enqueue([queuedEvent(0)]);
    expect((await claim()).batches).toHaveLength(0);
    await second.enqueue([queuedEvent(1)]);
    expect((await claim()).batches.map((batch) => batch.events.length)).toEqual([2]);
  });

  test('keeps partitions apart and serves them in turn', async () => {
    const store = await openStore();
    await store.enqueue([
      queuedEvent(0, { partition: 'a' }),
      queuedEvent(1, { partition: 'b' }),
      queuedEvent(2, { partition: 'a' }),
      queuedEvent(3, { partition: 'b' }),
      queuedEvent(4, { partition: 'c' }),
    ]);
    const first = await store.claim({ ...claimDefaults, maxEvents: 1, maxBatches: 2 });
    expect(first.batches.map((batch) => batch.partition)).toEqual(['a', 'a']);
    const second = await store.claim({ ...claimDefaults, maxEvents: 1, maxBatches: 2 });
    expect(second.batches.map((batch) => batch.partition)).toEqual(['b', 'b']);
    const third = await store.claim({ ...claimDefaults, maxEvents: 10 });
    expect(third.batches.map((batch) => [batch.partition, batch.events.length])).toEqual([['c', 1]]);
  });

  test('claims only the destination asked for', async () => {
    const store = await openStore();
    await store.enqueue([queuedEvent(0, { destination: 'other' }), queuedEvent(1)]);
    const { batches } = await store.claim(claimDefaults);
    expect(batches.flatMap((batch) => batch.events.map((event) => event.destination))).toEqual(['test']);
  });
});

describe('single-event batches', () => {
  test('a claim forms one batch per event, in arrival order, each with its own id and lease, and the file records each', async () => {
    const store = await openStore();
    // More than one chunk of batches formed together, and a tail formed one by one.
    const events = Array.from({ length: 37 }, (_, index) => queuedEvent(index));
    await store.enqueue(events);
    const { batches } = await store.claim({ ...claimDefaults, maxEvents: 1, maxBatches: 37 });
    expect(batches.map((batch) => batch.events.map((event) => event.id))).toEqual(events.map((event) => [event.id]));
    expect(batches.map((batch) => batch.id)).toEqual(events.map((event) => createBatchId('test', [event.id])));
    expect(batches.every((batch) => batch.events[0]!.attempts === 1)).toBe(true);
    expect(new Set(batches.map((batch) => batch.lease)).size).toBe(37);
    const reader = new Database(path, { readonly: true });
    const rows = reader
      .prepare('SELECT e.id AS event, e.attempts, b.id AS batch, b.first_seq = e.seq AS first, b.leased, b.lease FROM egress_events e JOIN egress_batches b ON b.batch = e.batch ORDER BY e.seq')
      .all() as { event: string; attempts: number; batch: string; first: number; leased: number; lease: string }[];
    reader.close();
    expect(rows).toEqual(batches.map((batch) => ({ event: batch.events[0]!.id, attempts: 1, batch: batch.id, first: 1, leased: 1, lease: batch.lease })));
    expect((await store.claim({ ...claimDefaults, maxEvents: 1, maxBatches: 37 })).batches).toEqual([]);
  });

  test('settled in one turn, every batch delivered whole leaves the store, and a settlement whose lease was lost changes nothing', async () => {
    const store = await openStore();
    const events = Array.from({ length: 20 }, (_, index) => queuedEvent(index));
    await store.enqueue(events);
    const { batches } = await store.claim({ ...claimDefaults, maxEvents: 1, maxBatches: 20 });
    const stale = { ...batches[19]!, lease: 'a lease another claim replaced' };
    await Promise.all([
      ...batches.slice(0, 19).map((batch) => store.settle(batch, { delivered: [batch.events[0]!.id], dead: [] })),
      store.settle(stale, { delivered: [stale.events[0]!.id], dead: [] }),
    ]);
    expect(await store.eventState(events[0]!.id)).toBe('gone');
    expect(await store.eventState(events[19]!.id)).toBe('pending');
    const stats = await store.stats(3_000);
    expect(stats).toEqual([{ destination: 'test', partition: '', waiting: 0, inFlight: 1, dead: 0, delivered: 19, failed: 0, oldestSentAt: events[19]!.sentAt }]);
    expect(store.admit(10_000_000 - 1, 0)).toBe(true);
    expect(store.admit(10_000_000, 0)).toBe(false);
  });

  test('enqueues made in one turn keep their order and their own outcome: one refused for capacity fails alone', async () => {
    const store = await openStore({ maxEvents: 5 });
    const results = await Promise.allSettled([store.enqueue([queuedEvent(0), queuedEvent(1)]), store.enqueue([queuedEvent(2), queuedEvent(3), queuedEvent(4), queuedEvent(5)]), store.enqueue([queuedEvent(6)])]);
    expect(results.map((result) => result.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    const { batches } = await store.claim({ ...claimDefaults, maxEvents: 1, maxBatches: 10 });
    expect(batches.map((batch) => decodePayload(batch.events[0]!.payload))).toEqual([{ n: 0 }, { n: 1 }, { n: 6 }]);
  });
});

describe('settling', () => {
  test('delivered events leave the store and stop counting as pending', async () => {
    const store = await openStore();
    const events = [queuedEvent(0), queuedEvent(1)];
    await store.enqueue(events);
    const mark = await store.watermark();
    const [batch] = (await store.claim(claimDefaults)).batches;
    expect(await store.pendingAtOrBelow(mark)).toBe(true);
    expect(await store.eventState(events[0]!.id)).toBe('pending');
    await store.settle(batch!, { delivered: events.map((event) => event.id), dead: [] });
    expect(await store.pendingAtOrBelow(mark)).toBe(false);
    expect(await store.eventState(events[0]!.id)).toBe('gone');
    expect(await store.stats(3_000)).toEqual([{ destination: 'test', partition: '', waiting: 0, inFlight: 0, dead: 0, delivered: 2, failed: 0, oldestSentAt: undefined }]);
    expect((await store.claim(claimDefaults)).batches).toEqual([]);
  });

  test('a retried batch keeps its id and events, waits for its time, and counts the next attempt', async () => {
    const store = await openStore();
    const events = [queuedEvent(0), queuedEvent(1)];
    await store.enqueue(events);
    const [batch] = (await store.claim(claimDefaults)).batches;
    const error = { name: 'RetryableError', message: '503', at: 2_000 };
    await store.settle(batch!, { delivered: [], dead: [], retry: { batchId: batch!.id, eventIds: events.map((event) => event.id), availableAt: 5_000, error } });
    expect(await store.claim({ ...claimDefaults, now: 4_999 })).toEqual({ batches: [], nextReadyAt: 5_000 });
    const [again] = (await store.claim({ ...claimDefaults, now: 5_000 })).batches;
    expect(again!.id).toBe(batch!.id);
    expect(again!.events.map((event) => [event.id, event.attempts])).toEqual(events.map((event) => [event.id, 2]));
  });

  test('a partly delivered batch retries only the failed events, under the retry batch id', async () => {
    const store = await openStore();
    const events = [queuedEvent(0), queuedEvent(1), queuedEvent(2)];
    await store.enqueue(events);
    const [batch] = (await store.claim(claimDefaults)).batches;
    const failed = [events[0]!.id, events[2]!.id];
    const retryId = createBatchId('test', failed);
    const error = { name: 'RetryableError', message: 'partial', at: 2_000 };
    await store.settle(batch!, { delivered: [events[1]!.id], dead: [], retry: { batchId: retryId, eventIds: failed, availableAt: 2_000, error } });
    expect(await store.eventState(events[1]!.id)).toBe('gone');
    const [retry] = (await store.claim(claimDefaults)).batches;
    expect(retry!.id).toBe(retryId);
    expect(retry!.events.map((event) => event.id)).toEqual(failed);
  });

  test('dead events become dead letters that can be listed, retried with attempts reset, and purged', async () => {
    const store = await openStore();
    const events = [queuedEvent(0), queuedEvent(1, { destination: 'test' })];
    await store.enqueue(events);
    const [batch] = (await store.claim(claimDefaults)).batches;
    const error = { name: 'PermanentError', message: '400 Bad Request', at: 2_500 };
    await store.settle(batch!, { delivered: [], dead: events.map((event) => ({ eventId: event.id, error })) });
    expect(await store.eventState(events[0]!.id)).toBe('dead');
    expect(await store.pendingAtOrBelow(await store.watermark())).toBe(false);
    const letters = await store.listDead({ destination: 'test' });
    expect(letters).toEqual(events.map((event) => ({ event: { ...event, attempts: 1 }, error, deadAt: 2_500 })));
    expect(await store.listDead({ after: events[0]!.id })).toHaveLength(1);
    expect(await store.listDead({ ids: [events[1]!.id] })).toHaveLength(1);
    expect(await store.listDead({ destination: 'elsewhere' })).toEqual([]);
    expect(await store.stats(3_000)).toEqual([{ destination: 'test', partition: '', waiting: 0, inFlight: 0, dead: 2, delivered: 0, failed: 2, oldestSentAt: undefined }]);

    expect(await store.retryDead([events[0]!.id], { now: 3_000 })).toBe(1);
    const [retried] = (await store.claim({ ...claimDefaults, now: 3_000 })).batches;
    expect(retried!.events.map((event) => [event.id, event.attempts, event.sentAt])).toEqual([[events[0]!.id, 1, 3_000]]);
    expect(await store.purgeDead(undefined, {})).toBe(1);
    expect(await store.listDead({})).toEqual([]);
    expect(await store.eventState(events[1]!.id)).toBe('gone');
  });

  test('a released batch is claimable again at once with the same id, its attempt given back', async () => {
    const store = await openStore();
    await store.enqueue([queuedEvent(0)]);
    const [batch] = (await store.claim(claimDefaults)).batches;
    await store.release(batch!);
    const [again] = (await store.claim(claimDefaults)).batches;
    expect(again!.id).toBe(batch!.id);
    expect(again!.events[0]!.attempts).toBe(1);
  });

  test('a lease that runs out makes the batch claimable again with the same id', async () => {
    const store = await openStore();
    await store.enqueue([queuedEvent(0)]);
    const [batch] = (await store.claim({ ...claimDefaults, leaseMs: 1_000 })).batches;
    expect(await store.claim({ ...claimDefaults, now: 2_500 })).toEqual({ batches: [], nextReadyAt: 3_000 });
    const stats = await store.stats(2_500);
    expect(stats).toEqual([{ destination: 'test', partition: '', waiting: 0, inFlight: 1, dead: 0, delivered: 0, failed: 0, oldestSentAt: 1_000 }]);
    const [again] = (await store.claim({ ...claimDefaults, now: 3_000 })).batches;
    expect(again!.id).toBe(batch!.id);
    expect(again!.events[0]!.attempts).toBe(2);
  });

  test('ignores a late settlement or release from a claim whose lease another claim has taken over', async () => {
    const store = await openStore();
    const event = queuedEvent(0);
    await store.enqueue([event]);
    const [first] = (await store.claim({ ...claimDefaults, leaseMs: 1_000 })).batches;
    const [second] = (await store.claim({ ...claimDefaults, now: 3_000, leaseMs: 60_000 })).batches;
    expect(second!.id).toBe(first!.id);
    const error = { name: 'RetryableError', message: 'late', at: 3_100 };
    await store.settle(first!, { delivered: [], dead: [], retry: { batchId: first!.id, eventIds: [event.id], availableAt: 3_100, error } });
    await store.release(first!);
    expect(await store.claim({ ...claimDefaults, now: 4_000 })).toEqual({ batches: [], nextReadyAt: 63_000 });
    await store.settle(second!, { delivered: [event.id], dead: [] });
    expect(await store.eventState(event.id)).toBe('gone');
    // The late retry counted no failure: only the settlement that applied is in the totals.
    expect(await store.stats(4_000)).toMatchObject([{ delivered: 1, failed: 0 }]);
  });

  test('settling a batch that is unknown changes nothing', async () => {
    const store = await openStore();
    const event = queuedEvent(0);
    await store.enqueue([event]);
    await store.settle({ id: 'f'.repeat(64), destination: 'test', partition: '', events: [event] }, { delivered: [event.id], dead: [] });
    expect(await store.eventState(event.id)).toBe('pending');
    expect(await store.stats(3_000)).toMatchObject([{ waiting: 1, delivered: 0, failed: 0 }]);
  });
});

describe('FIFO partitions', () => {
  test('allow one batch in flight per partition, and a batch waiting for its retry holds back newer events', async () => {
    const store = await openStore();
    const events = [queuedEvent(0, { partition: 'a' }), queuedEvent(1, { partition: 'a' }), queuedEvent(2, { partition: 'b' })];
    await store.enqueue(events);
    const first = await store.claim({ ...claimDefaults, fifo: true, maxEvents: 1 });
    expect(first.batches.map((batch) => batch.partition)).toEqual(['a', 'b']);
    expect((await store.claim({ ...claimDefaults, fifo: true, maxEvents: 1 })).batches).toEqual([]);
    const error = { name: 'RetryableError', message: 'later', at: 2_000 };
    const a = first.batches[0]!;
    await store.settle(a, { delivered: [], dead: [], retry: { batchId: a.id, eventIds: [events[0]!.id], availableAt: 4_000, error } });
    expect(await store.claim({ ...claimDefaults, now: 3_000, fifo: true, maxEvents: 1 })).toEqual({ batches: [], nextReadyAt: 4_000 });
    const [retry] = (await store.claim({ ...claimDefaults, now: 4_000, fifo: true, maxEvents: 1 })).batches;
    expect(retry!.events[0]!.id).toBe(events[0]!.id);
    await store.settle(retry!, { delivered: [events[0]!.id], dead: [] });
    const [next] = (await store.claim({ ...claimDefaults, now: 4_000, fifo: true, maxEvents: 1 })).batches;
    expect(next!.events[0]!.id).toBe(events[1]!.id);
  });
});

describe('capacity', () => {
  test('admits up to maxEvents and maxBytes, dead letters included, and rejects enqueue beyond with EgressCapacityError', async () => {
    const store = await openStore({ maxEvents: 3, maxBytes: 1_000 });
    expect(store.admit(3, 1_000)).toBe(true);
    expect(store.admit(4, 10)).toBe(false);
    expect(store.admit(1, 1_001)).toBe(false);
    const events = [queuedEvent(0, { size: 100 }), queuedEvent(1, { size: 100 }), queuedEvent(2, { size: 100 })];
    await store.enqueue(events);
    expect(store.admit(1, 1)).toBe(false);
    await expect(store.enqueue([queuedEvent(3)])).rejects.toSatisfy(EgressCapacityError.isInstance);
    const [batch] = (await store.claim(claimDefaults)).batches;
    const error = { name: 'PermanentError', message: 'no', at: 2_000 };
    await store.settle(batch!, { delivered: [events[0]!.id], dead: [{ eventId: events[1]!.id, error }], retry: { batchId: createBatchId('test', [events[2]!.id]), eventIds: [events[2]!.id], availableAt: 0, error } });
    expect(store.admit(1, 800)).toBe(true);
    expect(store.admit(2, 1)).toBe(false);
    await store.purgeDead(undefined, {});
    expect(store.admit(2, 900)).toBe(true);
  });

  test('reserves capacity for enqueues not yet committed', async () => {
    const store = await openStore({ maxEvents: 2 });
    const first = store.enqueue([queuedEvent(0), queuedEvent(1)]);
    await expect(store.enqueue([queuedEvent(2)])).rejects.toSatisfy(EgressCapacityError.isInstance);
    await first;
  });

  test('counts what the file holds when it is opened again', async () => {
    const first = await openStore({ maxEvents: 3 });
    await first.enqueue([queuedEvent(0), queuedEvent(1)]);
    await first.close();
    const second = await openStore({ maxEvents: 3 });
    expect(second.admit(1, 1)).toBe(true);
    expect(second.admit(2, 1)).toBe(false);
  });
});

describe('group commit', () => {
  test('commits concurrent enqueues made in one turn of the event loop in one transaction', async () => {
    const store = await openStore();
    await store.enqueue([queuedEvent(-1)]);
    const walBefore = statSync(`${path}-wal`).size;
    await Promise.all(Array.from({ length: 200 }, (_, index) => store.enqueue([queuedEvent(index)])));
    // One commit per enqueue would append at least one 4 KiB page frame each to the log.
    expect(statSync(`${path}-wal`).size - walBefore).toBeLessThan(50 * 4096);
    const reader = new Database(path, { readonly: true });
    expect(reader.prepare('SELECT count(*) AS count FROM egress_events').get()).toEqual({ count: 201 });
    reader.close();
  });

  test('one failing enqueue in a group fails alone; the others commit', async () => {
    const store = await openStore();
    const existing = queuedEvent(0);
    await store.enqueue([existing]);
    const good = [queuedEvent(1), queuedEvent(2)];
    const results = await Promise.allSettled([store.enqueue([good[0]!]), store.enqueue([queuedEvent(3), { ...existing }]), store.enqueue([good[1]!])]);
    expect(results.map((result) => result.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    const { batches } = await store.claim(claimDefaults);
    expect(batches.flatMap((batch) => batch.events.map((event) => event.id))).toEqual([existing.id, good[0]!.id, good[1]!.id]);
  });

  test('an enqueue is all or nothing', async () => {
    const store = await openStore();
    const existing = queuedEvent(0);
    await store.enqueue([existing]);
    const many = Array.from({ length: 100 }, (_, index) => queuedEvent(index + 1));
    await expect(store.enqueue([...many, existing])).rejects.toThrow();
    expect(await store.eventState(many[0]!.id)).toBe('gone');
    expect(await store.stats(3_000)).toEqual([{ destination: 'test', partition: '', waiting: 1, inFlight: 0, dead: 0, delivered: 0, failed: 0, oldestSentAt: 1_000 }]);
  });
});

describe('durability', () => {
  test('keeps waiting events, retry times, attempts and dead letters across close and open', async () => {
    const first = await openStore();
    const events = [queuedEvent(0), queuedEvent(1), queuedEvent(2)];
    await first.enqueue(events);
    const [batch] = (await first.claim({ ...claimDefaults, maxEvents: 2 })).batches;
    const error = { name: 'RetryableError', message: 'down', at: 2_000 };
    await first.settle(batch!, { delivered: [], dead: [{ eventId: events[0]!.id, error }], retry: { batchId: createBatchId('test', [events[1]!.id]), eventIds: [events[1]!.id], availableAt: 9_000, error } });
    const mark = await first.watermark();
    await first.close();

    const second = await openStore();
    expect(await second.watermark()).toBe(mark);
    expect(await second.eventState(events[0]!.id)).toBe('dead');
    const now = await second.claim({ ...claimDefaults, now: 3_000 });
    expect(now.batches.map((claimed) => claimed.events.map((event) => event.id))).toEqual([[events[2]!.id]]);
    expect(now.nextReadyAt).toBe(9_000);
    const [retry] = (await second.claim({ ...claimDefaults, now: 9_000 })).batches;
    expect(retry!.events.map((event) => [event.id, event.attempts])).toEqual([[events[1]!.id, 2]]);
  });

  test('gives back at open the batches leased by an instance that is gone, with the same id and the attempt counted', async () => {
    const first = sqliteStore({ path });
    await first.open();
    await first.enqueue([queuedEvent(0)]);
    const [batch] = (await first.claim({ ...claimDefaults, leaseMs: 3_600_000 })).batches;
    await first.close();
    const logged: { level: string; fields: Record<string, unknown> }[] = [];
    const record = (level: string) => (fields: Record<string, unknown>) => logged.push({ level, fields });
    const second = sqliteStore({ path });
    await second.open({ logger: { debug: record('debug'), info: record('info'), warn: record('warn'), error: record('error') } });
    opened.push(second);
    expect(logged).toEqual([{ level: 'info', fields: { store: 'sqlite', path, batches: 1 } }]);
    const [again] = (await second.claim(claimDefaults)).batches;
    expect(again!.id).toBe(batch!.id);
    expect(again!.events[0]!.attempts).toBe(2);
  });

  test('leaves alone the leases of an instance that still has the file open', async () => {
    const first = await openStore();
    await first.enqueue([queuedEvent(0)]);
    await first.claim({ ...claimDefaults, leaseMs: 60_000 });
    const warnings: string[] = [];
    const second = sqliteStore({ path });
    await second.open({ logger: { debug() {}, info() {}, warn: (_fields, message) => warnings.push(message), error() {} } });
    opened.push(second);
    expect(warnings).toEqual([expect.stringMatching(/another process has this queue file open/)]);
    expect(await second.claim(claimDefaults)).toEqual({ batches: [], nextReadyAt: 62_000 });
  });

  test('the watermark never goes back, even when the queue empties', async () => {
    const store = await openStore();
    const event = queuedEvent(0);
    await store.enqueue([event]);
    const [batch] = (await store.claim(claimDefaults)).batches;
    await store.settle(batch!, { delivered: [event.id], dead: [] });
    const mark = await store.watermark();
    await store.enqueue([queuedEvent(1)]);
    expect(await store.pendingAtOrBelow(mark)).toBe(false);
    expect(await store.watermark()).toBeGreaterThan(mark);
  });
});

describe('stats', () => {
  test('counts waiting, in flight and dead per destination and partition, with the oldest sentAt', async () => {
    const store = await openStore();
    await store.enqueue([
      queuedEvent(0, { partition: 'a', sentAt: 1_000 }),
      queuedEvent(1, { partition: 'a', sentAt: 1_100 }),
      queuedEvent(2, { partition: 'b', sentAt: 1_200 }),
      queuedEvent(3, { destination: 'other', sentAt: 900 }),
    ]);
    await store.claim({ ...claimDefaults, maxEvents: 1, maxBatches: 1 });
    const stats = await store.stats(2_000);
    expect(stats.sort((x, y) => (x.destination + x.partition < y.destination + y.partition ? -1 : 1))).toEqual([
      { destination: 'other', partition: '', waiting: 1, inFlight: 0, dead: 0, delivered: 0, failed: 0, oldestSentAt: 900 },
      { destination: 'test', partition: 'a', waiting: 1, inFlight: 1, dead: 0, delivered: 0, failed: 0, oldestSentAt: 1_000 },
      { destination: 'test', partition: 'b', waiting: 1, inFlight: 0, dead: 0, delivered: 0, failed: 0, oldestSentAt: 1_200 },
    ]);
  });
});
