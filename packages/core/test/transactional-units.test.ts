import { afterEach, describe, expect, test } from 'vitest';
import { createEgress, EgressCapacityError, EgressConfigurationError, EgressStoreError, memoryStore, type QueuedEvent, type Store } from '../src/index.js';
import { recordingDestination, trackEngines } from './helpers.js';

/** An application's transaction as a store sees it: rows written through it land only at commit. */
class FakeTransaction {
  readonly written: QueuedEvent[] = [];
  private endedCallbacks: (() => void)[] = [];
  constructor(private readonly store: Store) {}
  hold(events: readonly QueuedEvent[], ended: () => void): void {
    this.written.push(...events);
    this.endedCallbacks.push(ended);
  }
  async commit(): Promise<void> {
    await this.store.enqueue(this.written);
    for (const ended of this.endedCallbacks) ended();
  }
}

/** A memory store that can also write through a `FakeTransaction`, failing the way it is told. */
function transactionalStore(failure?: () => Error): Store & { calls: number } {
  const inner = memoryStore();
  const store = Object.create(inner) as Store & { calls: number };
  store.calls = 0;
  store.enqueueWithin = async (transaction, events, ended) => {
    store.calls += 1;
    if (failure) throw failure();
    (transaction as FakeTransaction).hold(events, ended);
  };
  return store;
}

const track = trackEngines(afterEach);

describe('run with the application’s transaction', () => {
  test('writes the unit’s events through the transaction; they are delivered once it commits and the store says so', async () => {
    const sink = recordingDestination();
    const store = transactionalStore();
    const instance = track(createEgress({ destinations: [sink.destination], store }));
    const transaction = new FakeTransaction(store);
    const receipts = await instance.run((send) => [send.events({ n: 1 }), send.events({ n: 2 })], { transaction });
    expect(transaction.written.map((event) => event.payload)).toEqual(['{"n":1}', '{"n":2}']);
    await Promise.all(receipts.map((receipt) => receipt.committed()));
    await transaction.commit();
    await instance.flush();
    expect(sink.delivered()).toEqual([1, 2]);
    // Whether it committed is the application's to know: no outcome rather than a wrong one.
    await expect(receipts[0]!.settled()).rejects.toThrow(/outcome is not tracked/);
    const [stats] = await instance.stats();
    expect(stats!.buffered).toBe(0);
  });

  test('a unit that throws writes nothing; a store failure is a typed error, capacity passes as it is', async () => {
    const sink = recordingDestination();
    const store = transactionalStore();
    const first = track(createEgress({ destinations: [sink.destination], store }));
    const transaction = new FakeTransaction(store);
    await expect(
      first.run(
        (send) => {
          send.events({ n: 1 });
          throw new Error('no');
        },
        { transaction },
      ),
    ).rejects.toThrow('no');
    expect(store.calls).toBe(0);

    const broken = track(createEgress({ destinations: [sink.destination], store: transactionalStore(() => new Error('connection lost')) }));
    await expect(broken.run((send) => void send.events({ n: 1 }), { transaction })).rejects.toSatisfy(
      (error) => EgressStoreError.isInstance(error) && (error.cause as Error).message === 'connection lost',
    );
    const [stats] = await broken.stats();
    expect(stats!.buffered).toBe(0);

    const full = track(createEgress({ destinations: [sink.destination], store: transactionalStore(() => new EgressCapacityError('full')) }));
    await expect(full.run((send) => void send.events({ n: 1 }), { transaction })).rejects.toSatisfy(EgressCapacityError.isInstance);
  });

  test('a store that cannot write through a transaction is named at the call', async () => {
    const sink = recordingDestination();
    const instance = track(createEgress({ destinations: [sink.destination], store: memoryStore() }));
    await expect(instance.run(() => {}, { transaction: {} })).rejects.toSatisfy(
      (error) => EgressConfigurationError.isInstance(error) && error.message.includes('memory store cannot write through'),
    );
    expect(() => instance.runSync(() => {}, { transaction: {} })).toThrow(EgressConfigurationError);
    expect(() => instance.runSync(() => {}, undefined as never)).toThrow(/expected \{ transaction \}/);
  });

  test('runSync refuses an asynchronous function and a store that writes asynchronously', async () => {
    const sink = recordingDestination();
    const store = transactionalStore();
    const instance = track(createEgress({ destinations: [sink.destination], store }));
    await instance.ready();
    const transaction = new FakeTransaction(store);
    expect(() => instance.runSync((send) => void send.events({ n: 1 }), { transaction })).toThrow(/writes asynchronously; use run/);
    expect(() => instance.runSync(async () => {}, { transaction })).toThrow(/expected a synchronous function/);
  });
});
