import { afterEach, describe, expect, test } from 'vitest';
import { createEgress, EgressCapacityError, memoryStore, RetryableError, type EgressEvents } from '../src/index.js';
import { recordingDestination, retryable, sleep, waitFor, trackEngines } from './helpers.js';

const track = trackEngines(afterEach);

describe('isolation', () => {
  test('a failing destination never delays another', async () => {
    const failing = recordingDestination({ name: 'broken', behaviour: () => Promise.reject(retryable('down')) });
    const healthy = recordingDestination({ name: 'healthy' });
    const egress = track(
      createEgress({
        destinations: [failing.destination, healthy.destination],
        policies: { broken: { retry: { initialDelay: 5, maxDelay: 10, maxAttempts: 1000 } } },
      }),
    );
    for (let n = 0; n < 50; n++) egress.send.broken({ n });
    for (let n = 0; n < 20; n++) egress.send.healthy({ n });
    await waitFor(() => healthy.delivered().length === 20);
    expect(failing.calls()).toBeGreaterThan(0);
  });

  test('a slow destination never delays another', async () => {
    const slow = recordingDestination({ name: 'slow', behaviour: () => new Promise<void>(() => {}) });
    const fast = recordingDestination({ name: 'fast' });
    const egress = track(createEgress({ destinations: [slow.destination, fast.destination], policies: { slow: { concurrency: 2 } } }));
    for (let n = 0; n < 10; n++) egress.send.slow({ n });
    for (let n = 0; n < 10; n++) egress.send.fast({ n });
    await waitFor(() => fast.delivered().length === 10);
    expect(slow.calls()).toBe(2);
  });

  test('a failing partition never delays the other partitions of its destination', async () => {
    const sink = recordingDestination({
      partitionByGroup: true,
      behaviour: (batch) => (batch.partition === 'bad' ? Promise.reject(retryable('down')) : undefined),
    });
    const egress = track(
      createEgress({
        destinations: [sink.destination],
        policies: { events: { concurrency: 1, ordering: 'fifo', retry: { initialDelay: 5, maxDelay: 10, maxAttempts: 1000 } } },
      }),
    );
    for (let n = 0; n < 5; n++) egress.send.events({ n, group: 'bad' });
    for (let n = 10; n < 15; n++) egress.send.events({ n, group: 'good' });
    await waitFor(() => sink.batches.filter((batch) => batch.partition === 'good').length === 5);
  });
});

describe('ordering', () => {
  test("'fifo' keeps each partition's order across retries", async () => {
    let failuresLeft = 3;
    const sink = recordingDestination({
      behaviour: (batch) => {
        if (batch.events.some((event) => event.payload.n === 2) && failuresLeft-- > 0) throw retryable('flaky');
      },
    });
    const egress = track(
      createEgress({ destinations: [sink.destination], policies: { events: { ordering: 'fifo', concurrency: 8, retry: { initialDelay: 5, maxDelay: 20 } } } }),
    );
    for (let n = 0; n < 10; n++) egress.send.events({ n });
    await egress.flush();
    const firstSuccess = (n: number) => sink.batches.findIndex((batch, index) => batch.events[0]!.payload.n === n && index >= sink.batches.findLastIndex((other) => other.events[0]!.payload.n === n));
    const order = [...Array(10).keys()].sort((a, b) => firstSuccess(a) - firstSuccess(b));
    expect(order).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(sink.delivered().filter((n) => n === 2)).toHaveLength(4);
  });

  test('without fifo, a retrying batch does not hold back newer events', async () => {
    let failed = false;
    const sink = recordingDestination({
      behaviour: (batch) => {
        if (batch.events[0]!.payload.n === 0 && !failed) {
          failed = true;
          throw retryable('flaky', 100);
        }
      },
    });
    const egress = track(createEgress({ destinations: [sink.destination] }));
    for (let n = 0; n < 3; n++) egress.send.events({ n });
    await egress.flush();
    expect(sink.delivered()).toEqual([0, 1, 2, 0]);
  });
});

describe('concurrency and rate', () => {
  test('keeps at most `concurrency` batches in flight', async () => {
    let inFlight = 0;
    let most = 0;
    const sink = recordingDestination({
      behaviour: async () => {
        inFlight += 1;
        most = Math.max(most, inFlight);
        await sleep(10);
        inFlight -= 1;
      },
    });
    const egress = track(createEgress({ destinations: [sink.destination], policies: { events: { concurrency: 3 } } }));
    for (let n = 0; n < 20; n++) egress.send.events({ n });
    await egress.flush();
    expect(most).toBe(3);
    expect(sink.delivered()).toHaveLength(20);
  });

  test('spreads requests over time under a rate limit', async () => {
    const times: number[] = [];
    const sink = recordingDestination({ behaviour: () => void times.push(Date.now()) });
    const egress = track(createEgress({ destinations: [sink.destination], policies: { events: { rateLimit: { requests: 5, per: '200ms' } } } }));
    const started = Date.now();
    for (let n = 0; n < 10; n++) egress.send.events({ n });
    await egress.flush();
    // A full bucket lets 5 through at once; the next 5 are spread over the following 200 ms.
    expect(times.filter((time) => time - started < 20)).toHaveLength(5);
    expect(times.at(-1)! - started).toBeGreaterThanOrEqual(150);
  });

  test('cuts batches to the events a rate limit allows', async () => {
    const sink = recordingDestination();
    const egress = track(
      createEgress({ destinations: [sink.destination], policies: { events: { batch: { maxEvents: 100 }, rateLimit: { events: 4, per: '100ms' } } } }),
    );
    for (let n = 0; n < 10; n++) egress.send.events({ n });
    await egress.flush();
    expect(Math.max(...sink.batches.map((batch) => batch.events.length))).toBeLessThanOrEqual(4);
    expect(sink.delivered()).toHaveLength(10);
  });
});

describe('backpressure', () => {
  test("a full store makes send fail fast with overflow: 'reject', keeping what was accepted", async () => {
    const sink = recordingDestination({ behaviour: () => new Promise<void>(() => {}) });
    const egress = track(createEgress({ destinations: [sink.destination], store: memoryStore({ maxEvents: 5 }), policies: { events: { concurrency: 1 } } }));
    for (let n = 0; n < 5; n++) egress.send.events({ n });
    expect(() => egress.send.events({ n: 5 })).toThrowError(EgressCapacityError);
    expect(() => egress.send.events({ n: 5 })).toThrowError(/memory store is full/);
    await waitFor(async () => {
      const [stats] = await egress.stats();
      return stats!.waiting + stats!.inFlight === 5;
    });
  });

  test("a full store drops and counts with overflow: 'drop'", async () => {
    const sink = recordingDestination({ behaviour: () => new Promise<void>(() => {}) });
    const egress = track(
      createEgress({ destinations: [sink.destination], store: memoryStore({ maxEvents: 3 }), overflow: 'drop', policies: { events: { concurrency: 1 } } }),
    );
    const dropped: EgressEvents['dropped'][] = [];
    egress.on('dropped', (event) => dropped.push(event));
    const receipts = [0, 1, 2, 3, 4].map((n) => egress.send.events({ n }));
    expect(receipts.map((receipt) => receipt.accepted)).toEqual([true, true, true, false, false]);
    expect(await receipts[4]!.settled()).toEqual({ status: 'dropped' });
    expect(dropped).toHaveLength(2);
    expect(dropped[0]).toMatchObject({ destination: 'events', count: 1, reason: 'capacity' });
    expect((await egress.stats())[0]!.dropped).toBe(2);
  });
});

describe('stats', () => {
  test('reports waiting, in flight, delivered, failed, dead, oldest age and latency per partition', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const sink = recordingDestination({
      partitionByGroup: true,
      behaviour: async (batch) => {
        if (batch.partition === 'held') await gate;
        if (batch.partition === 'dead') throw new (await import('../src/index.js')).PermanentError('gone');
      },
    });
    const egress = track(createEgress({ destinations: [sink.destination], policies: { events: { concurrency: 2 } } }));
    egress.send.events({ n: 1, group: 'ok' });
    egress.send.events({ n: 2, group: 'dead' });
    await egress.flush();
    // Two deliveries run (concurrency 2) and two more batches are claimed ahead: four in flight, one waiting.
    for (let n = 3; n <= 7; n++) egress.send.events({ n, group: 'held' });
    await waitFor(async () => (await egress.stats())[0]!.inFlight === 4);
    const [stats] = await egress.stats();
    expect(stats).toMatchObject({ destination: 'events', waiting: 1, inFlight: 4, delivered: 1, failed: 1, dead: 1 });
    expect(stats!.oldestAge).toBeGreaterThanOrEqual(0);
    expect(stats!.latency?.count).toBe(1);
    const byPartition = Object.fromEntries(stats!.partitions.map((partition) => [partition.partition, partition]));
    expect(byPartition.held).toMatchObject({ waiting: 1, inFlight: 4 });
    expect(byPartition.ok).toMatchObject({ delivered: 1, waiting: 0 });
    expect(byPartition.dead).toMatchObject({ dead: 1, failed: 1 });
    release();
    await egress.flush();
  });
  test('delivered and failed come from the store, so a process that delivers nothing sees what a worker delivered', async () => {
    const store = memoryStore();
    let failures = 1;
    const sink = recordingDestination({
      behaviour: async () => {
        if (failures-- > 0) throw new RetryableError('busy');
      },
    });
    const worker = track(createEgress({ destinations: [sink.destination], store, role: 'worker', pollInterval: 20, policies: { events: { batch: { maxEvents: 1 }, retry: { initialDelay: 1 } } } }));
    const producer = track(createEgress({ destinations: [sink.destination], store, role: 'producer' }));
    await worker.ready();
    await producer.send.events({ n: 1 }).committed();
    await producer.send.events({ n: 2 }).committed();
    await waitFor(async () => (await producer.stats())[0]!.delivered === 2);
    const [stats] = await producer.stats();
    expect(stats).toMatchObject({ destination: 'events', waiting: 0, inFlight: 0, delivered: 2, failed: 1, dead: 0 });
    expect(stats!.partitions).toMatchObject([{ delivered: 2, failed: 1 }]);
    expect(stats!.latency).toBeUndefined();
    expect((await worker.stats())[0]!.latency?.count).toBe(2);
  });
});
