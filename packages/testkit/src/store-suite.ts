import { createBatchId, createEventId, EgressCapacityError, type ClaimRequest, type QueuedEvent, type Store, type StoreStats } from '@egress/core';
import type { TestFunction } from './test-function.js';

export interface StoreSuiteOptions {
  /** A fresh, empty store for each test (not yet opened), backed by the real backend. */
  createStore(limits?: { maxEvents?: number; maxBytes?: number }): Store | Promise<Store>;
  /** For durable stores: a second store on the same backend as `store`, to check what survives a restart. */
  reopen?(store: Store): Store | Promise<Store>;
  /** Reads the backend directly (a query of its own), counting queued events including in-flight ones. */
  countQueued?(store: Store): Promise<number>;
  /** Per-test timeout in milliseconds (default 30 s). */
  timeout?: number;
  /** Switch groups off when a store cannot support them, with the reason in a comment. */
  groups?: {
    batching?: boolean;
    leases?: boolean;
    settlement?: boolean;
    deadLetters?: boolean;
    ordering?: boolean;
    capacity?: boolean;
    inspection?: boolean;
    durability?: boolean;
    tracing?: boolean;
    /** Paused and disabled partitions (`partitionStates`, `setPartitionState`): switch it off for a store without them, which cannot do circuit breaking. */
    partitionStates?: boolean;
  };
}

const t0 = 1_700_000_000_000;

/**
 * The conformance suite every store passes, in the shape of `@keyv/test-suite`. It drives the
 * `Store` contract directly with explicit clock values, so nothing in it sleeps.
 */
export function storeTestSuite(test: TestFunction, options: StoreSuiteOptions): void {
  const groups = { batching: true, leases: true, settlement: true, deadLetters: true, ordering: true, capacity: true, inspection: true, durability: true, tracing: true, partitionStates: true, ...options.groups };
  const timeout = options.timeout ?? 30_000;

  function define(name: string, body: (store: Store) => Promise<void>, limits?: { maxEvents?: number; maxBytes?: number }) {
    test(name, async () => {
      const store = await options.createStore(limits);
      await store.open();
      try {
        await body(store);
      } finally {
        await store.close();
      }
    }, timeout);
  }

  if (groups.batching) {
    define('forms a batch whose id derives from its events, oldest first, counting the attempt', async (store) => {
      const events = makeEvents(3);
      await store.enqueue(events);
      const { batches } = await store.claim(request({ maxEvents: 10 }));
      expectEqual(batches.length, 1, 'batches');
      const [batch] = batches;
      expectEqual(batch!.id, createBatchId('d', events.map((event) => event.id)), 'batch id');
      expectEqual(batch!.partition, 'p', 'partition');
      expectEqual(batch!.events.map((event) => event.id), events.map((event) => event.id), 'event order');
      expectEqual(batch!.events.map((event) => event.attempts), [1, 1, 1], 'attempts');
      expectEqual(batch!.events[0]!.payload, events[0]!.payload, 'payload text');
      expectEqual(batch!.events[0]!.size, events[0]!.size, 'size');
      expectEqual(batch!.events[0]!.sentAt, events[0]!.sentAt, 'sentAt');
    });

    define('cuts batches at maxEvents and maxBytes, and a single large event still forms a batch', async (store) => {
      await store.enqueue(makeEvents(5, { size: 100 }));
      const byCount = await store.claim(request({ maxEvents: 2, maxBatches: 10 }));
      expectEqual(byCount.batches.map((batch) => batch.events.length), [2, 2, 1], 'by count');
      await store.enqueue(makeEvents(3, { size: 100, partition: 'q' }));
      await store.enqueue(makeEvents(1, { size: 1000, partition: 'r' }));
      const byBytes = await store.claim(request({ maxEvents: 100, maxBytes: 250, maxBatches: 10 }));
      const sizes = byBytes.batches.map((batch) => `${batch.partition}:${batch.events.length}`).sort();
      expectEqual(sizes, ['q:1', 'q:2', 'r:1'], 'by bytes');
    });

    define('waits for maxDelay unless the batch is full or forced, and says when it will be ready', async (store) => {
      await store.enqueue(makeEvents(2, { sentAt: t0 }));
      const early = await store.claim(request({ now: t0 + 500, maxEvents: 10, maxDelay: 1000 }));
      expectEqual(early.batches.length, 0, 'batches before maxDelay');
      expectEqual(early.nextReadyAt, t0 + 1000, 'nextReadyAt');
      const forced = await store.claim(request({ now: t0 + 500, maxEvents: 10, maxDelay: 1000, force: true }));
      expectEqual(forced.batches.length, 1, 'forced batches');
      await store.enqueue(makeEvents(2, { sentAt: t0, partition: 'q' }));
      const due = await store.claim(request({ now: t0 + 1000, maxEvents: 10, maxDelay: 1000 }));
      expectEqual(due.batches.map((batch) => batch.events.length), [2], 'due batches');
      await store.enqueue(makeEvents(3, { sentAt: t0 + 2000, partition: 'full' }));
      const full = await store.claim(request({ now: t0 + 2000, maxEvents: 3, maxDelay: 60_000 }));
      expectEqual(full.batches.map((batch) => batch.events.length), [3], 'full batches');
    });

    define('never mixes partitions or destinations in a batch', async (store) => {
      await store.enqueue([...makeEvents(2, { partition: 'a' }), ...makeEvents(2, { partition: 'b' }), ...makeEvents(2, { destination: 'other', partition: 'a' })]);
      const { batches } = await store.claim(request({ maxEvents: 10, maxBatches: 10 }));
      expectEqual(batches.map((batch) => batch.partition).sort(), ['a', 'b'], 'partitions');
      for (const batch of batches) expectEqual(batch.destination, 'd', 'destination');
      const other = await store.claim(request({ destination: 'other', maxEvents: 10, maxBatches: 10 }));
      expectEqual(other.batches.length, 1, 'batches of the other destination');
    });

    define('hands out at most maxBatches batches', async (store) => {
      await store.enqueue(makeEvents(5));
      const { batches } = await store.claim(request({ maxEvents: 1, maxBatches: 2 }));
      expectEqual(batches.length, 2, 'batches');
    });
  }

  if (groups.leases) {
    define('a claimed batch is not handed out again until its lease runs out, then keeps its id', async (store) => {
      await store.enqueue(makeEvents(2));
      const [first] = (await store.claim(request({ maxEvents: 10, leaseMs: 1000 }))).batches;
      const during = await store.claim(request({ now: t0 + 500, maxEvents: 10 }));
      expectEqual(during.batches.length, 0, 'batches while leased');
      const after = await store.claim(request({ now: t0 + 1001, maxEvents: 10 }));
      expectEqual(after.batches.map((batch) => batch.id), [first!.id], 'batch after the lease');
      expectEqual(after.batches[0]!.events.map((event) => event.attempts), [2, 2], 'attempts after the lease');
    });

    define('release gives a batch back unchanged, ready at once', async (store) => {
      await store.enqueue(makeEvents(2));
      const [batch] = (await store.claim(request({ maxEvents: 10 }))).batches;
      await store.release(batch!);
      const again = await store.claim(request({ maxEvents: 10 }));
      expectEqual(again.batches.map((other) => other.id), [batch!.id], 'released batch');
      expectEqual(again.batches[0]!.events.map((event) => event.attempts), [1, 1], 'attempts after release');
    });
  }

  if (groups.settlement) {
    define('delivered events leave the store', async (store) => {
      const events = makeEvents(2);
      await store.enqueue(events);
      const [batch] = (await store.claim(request({ maxEvents: 10 }))).batches;
      await store.settle(batch!, { delivered: events.map((event) => event.id), dead: [] });
      expectEqual(await store.eventState(events[0]!.id), 'gone', 'state');
      expectEqual((await store.claim(request({ now: t0 + 10 ** 9, maxEvents: 10, force: true }))).batches.length, 0, 'batches left');
      expectEqual((await store.stats(t0)).map(counts), [{ partition: 'p', waiting: 0, inFlight: 0, dead: 0, delivered: 2, failed: 0 }], 'stats: only the delivered total is left');
      if (options.countQueued) expectEqual(await options.countQueued(store), 0, 'queued at the backend');
    });

    define('a retried batch waits until its time and comes back with the same id and events', async (store) => {
      const events = makeEvents(2);
      await store.enqueue(events);
      const [batch] = (await store.claim(request({ maxEvents: 10 }))).batches;
      const ids = events.map((event) => event.id);
      await store.settle(batch!, { delivered: [], dead: [], retry: { batchId: batch!.id, eventIds: ids, availableAt: t0 + 5000, error: error('503') } });
      expectEqual(await store.eventState(ids[0]!), 'pending', 'state');
      const early = await store.claim(request({ now: t0 + 4999, maxEvents: 10, force: true }));
      expectEqual(early.batches.length, 0, 'batches before the retry time');
      expectEqual(early.nextReadyAt, t0 + 5000, 'nextReadyAt');
      const due = await store.claim(request({ now: t0 + 5000, maxEvents: 10 }));
      expectEqual(due.batches.map((other) => other.id), [batch!.id], 'retried batch id');
      expectEqual(due.batches[0]!.events.map((event) => event.id), ids, 'retried events');
      expectEqual(due.batches[0]!.events.map((event) => event.attempts), [2, 2], 'attempts');
    });

    define('a partly delivered batch retries only its failed events, under a new id', async (store) => {
      const events = makeEvents(3);
      await store.enqueue(events);
      const [batch] = (await store.claim(request({ maxEvents: 10 }))).batches;
      const failed = [events[1]!.id];
      const retryId = createBatchId('d', failed);
      await store.settle(batch!, { delivered: [events[0]!.id, events[2]!.id], dead: [], retry: { batchId: retryId, eventIds: failed, availableAt: t0, error: error('timeout') } });
      const due = await store.claim(request({ now: t0 + 1, maxEvents: 10 }));
      expectEqual(due.batches.map((other) => other.id), [retryId], 'retry batch id');
      expectEqual(due.batches[0]!.events.map((event) => event.id), failed, 'retry events');
    });

    define('events a settlement does not mention wait again', async (store) => {
      const events = makeEvents(3);
      await store.enqueue(events);
      const [batch] = (await store.claim(request({ maxEvents: 10 }))).batches;
      await store.settle(batch!, { delivered: [events[0]!.id], dead: [] });
      expectEqual(await store.eventState(events[1]!.id), 'pending', 'state of an unmentioned event');
      const { batches } = await store.claim(request({ now: t0 + 1, maxEvents: 10, maxBatches: 5, force: true }));
      expectEqual(batches.flatMap((other) => other.events.map((event) => event.id)).sort(), [events[1]!.id, events[2]!.id].sort(), 'unmentioned events claimed again');
    });

    define('retried events do not join newer waiting events', async (store) => {
      const events = makeEvents(2);
      await store.enqueue(events);
      const [batch] = (await store.claim(request({ maxEvents: 10 }))).batches;
      await store.settle(batch!, { delivered: [], dead: [], retry: { batchId: batch!.id, eventIds: events.map((event) => event.id), availableAt: t0, error: error('x') } });
      await store.enqueue(makeEvents(2));
      const { batches } = await store.claim(request({ now: t0 + 1, maxEvents: 10, maxBatches: 5, force: true }));
      expectEqual(batches.map((other) => other.events.length), [2, 2], 'batch sizes');
      expectEqual(batches.some((other) => other.id === batch!.id), true, 'the retried batch keeps its id');
    });

    define('tracks the watermark: pending at or below it until everything below is settled', async (store) => {
      const events = makeEvents(2);
      await store.enqueue(events);
      const mark = await store.watermark();
      await store.enqueue(makeEvents(1));
      expectEqual(await store.pendingAtOrBelow(mark), true, 'pending before delivery');
      const { batches } = await store.claim(request({ maxEvents: 2 }));
      expectEqual(await store.pendingAtOrBelow(mark), true, 'pending while in flight');
      await store.settle(batches[0]!, { delivered: [events[0]!.id], dead: [{ eventId: events[1]!.id, error: error('bad') }] });
      expectEqual(await store.pendingAtOrBelow(mark), false, 'pending after settling (dead letters do not count)');
      expectEqual(await store.pendingAtOrBelow(await store.watermark()), true, 'the newer event is still pending');
    });
  }

  if (groups.deadLetters) {
    define('keeps dead letters with their error, lists them, retries and purges them', async (store) => {
      const events = makeEvents(3, { destination: 'd' });
      await store.enqueue([...events, ...makeEvents(1, { destination: 'other' })]);
      const [batch] = (await store.claim(request({ maxEvents: 10 }))).batches;
      await store.settle(batch!, { delivered: [], dead: events.map((event) => ({ eventId: event.id, error: error(`no ${event.id}`) })) });
      expectEqual(await store.eventState(events[0]!.id), 'dead', 'state');
      const letters = await store.listDead({});
      expectEqual(letters.map((letter) => letter.event.id), events.map((event) => event.id), 'dead letters, oldest first');
      expectEqual(letters[0]!.error.message, `no ${events[0]!.id}`, 'error');
      expectEqual(letters[0]!.event.attempts, 1, 'attempts');
      expectEqual(letters[0]!.event.payload, events[0]!.payload, 'payload');
      expectEqual((await store.listDead({ limit: 1, after: events[0]!.id })).map((letter) => letter.event.id), [events[1]!.id], 'paging');
      expectEqual((await store.listDead({ ids: [events[2]!.id] })).length, 1, 'by id');
      expectEqual((await store.listDead({ destination: 'other' })).length, 0, 'by destination');
      expectEqual(await store.retryDead([events[0]!.id], { now: t0 + 100 }), 1, 'retried');
      const [again] = (await store.claim(request({ now: t0 + 100, maxEvents: 10, force: true }))).batches;
      expectEqual(again!.events.map((event) => [event.id, event.attempts]), [[events[0]!.id, 1]], 'retried dead letter, attempts reset');
      expectEqual(await store.purgeDead([events[1]!.id], {}), 1, 'purged one');
      expectEqual(await store.eventState(events[1]!.id), 'gone', 'purged state');
      expectEqual(await store.purgeDead(undefined, { destination: 'd' }), 1, 'purged the rest');
      expectEqual(await store.listDead({}), [], 'dead letters left');
    });
  }

  if (groups.tracing) {
    define("keeps each event's trace context through claims, retries, dead letters and their replay", async (store) => {
      const traced = [
        '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
        '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00;vendor=opaque value,other=x',
        undefined,
      ];
      const events = makeEvents(3).map((event, index) => (traced[index] === undefined ? event : { ...event, trace: traced[index] }));
      await store.enqueue(events);
      const tracesOf = (list: readonly QueuedEvent[]) => list.map((event) => event.trace ?? null);
      const expected = traced.map((trace) => trace ?? null);
      const [batch] = (await store.claim(request({ maxEvents: 10 }))).batches;
      expectEqual(tracesOf(batch!.events), expected, 'trace contexts at the first claim');
      const ids = events.map((event) => event.id);
      await store.settle(batch!, { delivered: [], dead: [], retry: { batchId: batch!.id, eventIds: ids, availableAt: t0 + 10, error: error('later') } });
      const [retried] = (await store.claim(request({ now: t0 + 10, maxEvents: 10 }))).batches;
      expectEqual(tracesOf(retried!.events), expected, 'trace contexts at the retry');
      await store.settle(retried!, { delivered: [], dead: ids.map((eventId) => ({ eventId, error: error('never') })) });
      expectEqual(tracesOf((await store.listDead({})).map((letter) => letter.event)), expected, 'trace contexts of the dead letters');
      await store.retryDead(undefined, { now: t0 + 20 });
      const [replayed] = (await store.claim(request({ now: t0 + 20, maxEvents: 10, force: true }))).batches;
      expectEqual(tracesOf(replayed!.events), expected, 'trace contexts of the replayed dead letters');
      // Batches of one event each, formed several at a time, take the same path in some stores.
      await store.settle(replayed!, { delivered: ids, dead: [] });
      const singles = makeEvents(3).map((event, index) => (traced[index] === undefined ? event : { ...event, trace: traced[index] }));
      await store.enqueue(singles);
      const { batches } = await store.claim(request({ now: t0 + 30, maxEvents: 1, maxBatches: 3 }));
      expectEqual(batches.map((single) => tracesOf(single.events)[0]), expected, 'trace contexts of single-event batches');
    });
  }

  if (groups.ordering) {
    define('FIFO: one batch in flight per partition, and a retrying batch holds back newer events', async (store) => {
      await store.enqueue(makeEvents(4, { partition: 'a' }));
      await store.enqueue(makeEvents(1, { partition: 'b' }));
      const fifo = { fifo: true, maxEvents: 2, maxBatches: 10 };
      const first = await store.claim(request(fifo));
      expectEqual(first.batches.map((batch) => batch.partition).sort(), ['a', 'b'], 'one batch per partition');
      const batchA = first.batches.find((batch) => batch.partition === 'a')!;
      expectEqual((await store.claim(request(fifo))).batches.length, 0, 'nothing more while in flight');
      await store.settle(batchA, { delivered: [], dead: [], retry: { batchId: batchA.id, eventIds: batchA.events.map((event) => event.id), availableAt: t0 + 1000, error: error('x') } });
      expectEqual((await store.claim(request({ ...fifo, now: t0 + 10 }))).batches.length, 0, 'newer events wait behind the retry');
      const retried = await store.claim(request({ ...fifo, now: t0 + 1000 }));
      expectEqual(retried.batches.map((batch) => batch.id), [batchA.id], 'the retry goes first');
    });
  }

  if (groups.capacity) {
    define(
      'admits up to its capacity and refuses a whole enqueue beyond it',
      async (store) => {
        expectEqual(store.admit(3, 30), true, 'admit within capacity');
        await store.enqueue(makeEvents(2, { size: 10 }));
        expectEqual(store.admit(1, 10), true, 'admit the last one');
        expectEqual(store.admit(2, 20), false, 'admit past capacity');
        let refused: unknown;
        try {
          await store.enqueue(makeEvents(2, { size: 10 }));
        } catch (caught) {
          refused = caught;
        }
        expectEqual(EgressCapacityError.isInstance(refused), true, 'EgressCapacityError');
        const { batches } = await store.claim(request({ maxEvents: 10, force: true }));
        expectEqual(batches[0]?.events.length, 2, 'nothing of the refused enqueue was stored');
      },
      { maxEvents: 3 },
    );
  }

  if (groups.inspection) {
    define('reports waiting, in flight, dead and the oldest event per partition', async (store) => {
      await store.enqueue([...makeEvents(3, { partition: 'a', sentAt: t0 }), ...makeEvents(2, { partition: 'b', sentAt: t0 + 50 })]);
      const [batch] = (await store.claim(request({ maxEvents: 2, maxBatches: 1 }))).batches;
      const [deadEvent, retriedEvent] = batch!.events;
      await store.settle(batch!, {
        delivered: [],
        dead: [{ eventId: deadEvent!.id, error: error('x') }],
        retry: { batchId: createBatchId('d', [retriedEvent!.id]), eventIds: [retriedEvent!.id], availableAt: t0 + 10 ** 9, error: error('y') },
      });
      const [second] = (await store.claim(request({ maxEvents: 1, maxBatches: 1 }))).batches;
      const stats = new Map((await store.stats(t0 + 100)).map((row) => [`${row.destination}/${row.partition}`, row]));
      const inFlightPartition = second!.partition;
      const total = [...stats.values()].reduce((sum, row) => ({ waiting: sum.waiting + row.waiting, inFlight: sum.inFlight + row.inFlight, dead: sum.dead + row.dead }), { waiting: 0, inFlight: 0, dead: 0 });
      expectEqual(total, { waiting: 3, inFlight: 1, dead: 1 }, 'totals (a scheduled retry counts as waiting)');
      expectEqual(stats.get(`d/${inFlightPartition}`)!.inFlight, 1, 'in flight partition');
      expectEqual(stats.get('d/b')!.oldestSentAt, t0 + 50, 'oldest in b');
      if (options.countQueued) expectEqual(await options.countQueued(store), 4, 'queued at the backend');
    });

    define('records delivered and failed totals per partition with each settlement, and keeps reporting them once the partition is empty', async (store) => {
      const [first, second, third] = makeEvents(3, { partition: 'a' });
      await store.enqueue([first!, second!, third!]);
      const [batch] = (await store.claim(request({ maxEvents: 3 }))).batches;
      await store.settle(batch!, {
        delivered: [first!.id],
        dead: [{ eventId: third!.id, error: error('x') }],
        retry: { batchId: createBatchId('d', [second!.id]), eventIds: [second!.id], availableAt: t0 + 10, error: error('y') },
      });
      const afterFirst = await store.stats(t0);
      expectEqual(afterFirst.map(counts), [{ partition: 'a', waiting: 1, inFlight: 0, dead: 1, delivered: 1, failed: 2 }], 'after the first attempt');
      const [retried] = (await store.claim(request({ now: t0 + 10, maxEvents: 3 }))).batches;
      expectEqual(retried?.events.map((event) => event.id), [second!.id], 'the retry');
      await store.settle(retried!, { delivered: [second!.id], dead: [] });

      await store.enqueue(makeEvents(2, { partition: 'b' }));
      const [other] = (await store.claim(request({ now: t0 + 10, maxEvents: 3 }))).batches;
      await store.settle(other!, { delivered: other!.events.map((event) => event.id), dead: [] });

      const rows = (await store.stats(t0 + 20)).map(counts).sort((left, right) => (left.partition < right.partition ? -1 : 1));
      expectEqual(
        rows,
        [
          { partition: 'a', waiting: 0, inFlight: 0, dead: 1, delivered: 2, failed: 2 },
          { partition: 'b', waiting: 0, inFlight: 0, dead: 0, delivered: 2, failed: 0 },
        ],
        'totals per partition (b holds nothing but its total)',
      );
      expectEqual((await store.stats(t0 + 20)).find((row) => row.partition === 'b')?.oldestSentAt, undefined, 'no oldest event in an empty partition');
    });

    define('knows whether an event is pending, dead or gone', async (store) => {
      const [event] = makeEvents(1);
      expectEqual(await store.eventState(event!.id), 'gone', 'unknown id');
      await store.enqueue([event!]);
      expectEqual(await store.eventState(event!.id), 'pending', 'queued');
    });
  }

  if (groups.partitionStates) {
    const paused = (probeAt: number) => ({ state: 'paused' as const, since: t0, probeAt, failures: 5, reason: 'answered 503' });
    const disabled = { state: 'disabled' as const, since: t0, probeAt: 0, failures: 100, reason: 'disabled by hand' };
    const states = (store: Store) => store.partitionStates!({ destination: 'd' });

    define('writes a partition state only when the partition stands as expected', async (store) => {
      const change = { destination: 'd', partition: 'p' };
      expectEqual(await store.setPartitionState!({ ...change, next: paused(t0 + 30_000), expected: { state: 'running' } }), true, 'pause a running partition');
      expectEqual(await store.setPartitionState!({ ...change, next: paused(t0 + 60_000), expected: { state: 'running' } }), false, 'pause it twice');
      expectEqual(await store.setPartitionState!({ ...change, next: paused(t0 + 90_000), expected: { state: 'paused', probeDueBy: t0 } }), false, 'take a probe not yet due');
      expectEqual(await store.setPartitionState!({ ...change, next: paused(t0 + 90_000), expected: { state: 'paused', probeDueBy: t0 + 30_000 } }), true, 'take a due probe');
      expectEqual(await store.setPartitionState!({ ...change, next: paused(t0 + 120_000), expected: { state: 'paused', probeDueBy: t0 + 30_000 } }), false, 'take the same probe again');
      expectEqual(await states(store), [{ destination: 'd', partition: 'p', ...paused(t0 + 90_000) }], 'the state read back');
      expectEqual(await store.setPartitionState!({ ...change, next: undefined, expected: { state: 'disabled' } }), false, 'enable a partition that is not disabled');
      expectEqual(await store.setPartitionState!({ ...change, next: disabled, expected: { state: 'paused' } }), true, 'disable the paused partition');
      expectEqual(await store.setPartitionState!({ destination: 'other', partition: 'p', next: disabled }), true, 'disable a partition of another destination');
      expectEqual((await store.partitionStates!({})).map((state) => `${state.destination}/${state.partition}:${state.state}`), ['d/p:disabled', 'other/p:disabled'], 'every destination');
      expectEqual(await store.setPartitionState!({ ...change, next: undefined, expected: { state: 'disabled' } }), true, 'enable it');
      expectEqual(await states(store), [], 'no state left');
    });

    define('claims skip paused and disabled partitions; a probe claims a paused one, never a disabled one', async (store) => {
      await store.enqueue(makeEvents(2, { partition: 'p' }));
      await store.enqueue(makeEvents(2, { partition: 'q' }));
      await store.enqueue(makeEvents(2, { partition: 'r' }));
      await store.setPartitionState!({ destination: 'd', partition: 'p', next: paused(t0) });
      await store.setPartitionState!({ destination: 'd', partition: 'q', next: disabled });
      const normal = await store.claim(request({ maxBatches: 10, maxEvents: 10 }));
      expectEqual(normal.batches.map((batch) => batch.partition), ['r'], 'partitions a normal claim serves');
      const probe = await store.claim(request({ maxBatches: 1, maxEvents: 10, partition: 'p' }));
      expectEqual(probe.batches.map((batch) => `${batch.partition}:${batch.events.length}`), ['p:2'], 'the probe');
      const refused = await store.claim(request({ maxBatches: 1, maxEvents: 10, partition: 'q' }));
      expectEqual(refused.batches.length, 0, 'a probe of a disabled partition');
      // A probe given back spends no attempt, and waits for the next probe.
      await store.release(probe.batches[0]!);
      expectEqual((await store.claim(request({ maxBatches: 10, maxEvents: 10 }))).batches.length, 0, 'claims while paused');
      await store.setPartitionState!({ destination: 'd', partition: 'p', next: undefined });
      const resumed = await store.claim(request({ maxBatches: 10, maxEvents: 10 }));
      expectEqual(resumed.batches.map((batch) => batch.partition), ['p'], 'the resumed partition');
      expectEqual(resumed.batches[0]!.events.map((event) => event.attempts), [1, 1], 'attempts after a probe given back');
    });

    if (options.reopen) {
      define('keeps partition states across a restart', async (store) => {
        await store.setPartitionState!({ destination: 'd', partition: 'p', next: disabled });
        const reopened = await options.reopen!(store);
        await store.close();
        await reopened.open();
        try {
          expectEqual(await reopened.partitionStates!({ destination: 'd' }), [{ destination: 'd', partition: 'p', ...disabled }], 'states after reopening');
        } finally {
          await reopened.close();
        }
      });
    }
  }

  if (groups.durability && options.reopen) {
    define('keeps queued events, claimed batches and dead letters across a restart', async (store) => {
      const events = makeEvents(3);
      await store.enqueue(events);
      const [batch] = (await store.claim(request({ maxEvents: 2, leaseMs: 1000 }))).batches;
      await store.enqueue(makeEvents(1, { partition: 'dead' }));
      const [doomed] = (await store.claim(request({ maxEvents: 1 }))).batches.filter((other) => other.partition === 'dead');
      if (doomed) await store.settle(doomed, { delivered: [], dead: [{ eventId: doomed.events[0]!.id, error: error('gone') }] });
      const reopened = await options.reopen!(store);
      await store.close();
      await reopened.open();
      try {
        const after = await reopened.claim(request({ now: t0 + 1001, maxEvents: 2, maxBatches: 10, force: true }));
        const byId = new Map(after.batches.map((other) => [other.id, other]));
        expectEqual(byId.has(batch!.id), true, 'the claimed batch comes back with the same id after its lease');
        expectEqual(after.batches.flatMap((other) => other.events).length, 3, 'every queued event is still there');
        expectEqual((await reopened.listDead({})).length, doomed ? 1 : 0, 'dead letters');
      } finally {
        await reopened.close();
      }
    });
  }
}

function request(overrides: Partial<ClaimRequest> = {}): ClaimRequest {
  return { destination: 'd', now: t0, owner: 'conformance', maxBatches: 1, maxEvents: 1, maxBytes: 1_000_000, maxDelay: 0, force: false, fifo: false, leaseMs: 60_000, ...overrides };
}

function makeEvents(count: number, overrides: { destination?: string; partition?: string; size?: number; sentAt?: number } = {}): QueuedEvent[] {
  return Array.from({ length: count }, (_, index) => {
    const id = createEventId();
    return {
      id,
      destination: overrides.destination ?? 'd',
      partition: overrides.partition ?? 'p',
      payload: JSON.stringify({ index, text: 'héllo "quoted" \\ \n line', id }),
      size: overrides.size ?? 40,
      sentAt: overrides.sentAt ?? t0 - 1000,
      attempts: 0,
    };
  });
}

function error(message: string) {
  return { name: 'RetryableError', message, at: t0 };
}

function counts(row: StoreStats) {
  return { partition: row.partition, waiting: row.waiting, inFlight: row.inFlight, dead: row.dead, delivered: row.delivered, failed: row.failed };
}

function expectEqual(actual: unknown, expected: unknown, label: string): void {
  const a = JSON.stringify(actual);
  const b = JSON.stringify(expected);
  if (a !== b) throw new Error(`[store conformance] ${label}: expected ${b}, got ${a}`);
}
