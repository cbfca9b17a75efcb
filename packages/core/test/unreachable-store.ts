import { EgressStoreUnavailableError, memoryStore, type QueuedEvent, type Store } from '../src/index.js';

/**
 * The memory store behind a switch that makes it unreachable: while `down` is set, `open`,
 * `enqueue`, `claim` and `settle` fail with `EgressStoreUnavailableError` as a store whose database
 * went away does, and write nothing (`eventState` fails too, for receipts). For the engine's own tests; the real outages (a TCP proxy in
 * front of PostgreSQL, a locked or full SQLite file) are tested in the store packages.
 */
export function unreachableStore(options: { down?: boolean; openError?: Error; maxEvents?: number } = {}) {
  const inner = memoryStore({ maxEvents: options.maxEvents });
  const counts = { open: 0, enqueue: 0, claim: 0, settle: 0, failedSettles: 0 };
  /** Event numbers (`payload.n`) in the order the store took them. */
  const taken: number[] = [];
  const control = { down: options.down ?? false, failSettles: 0 };
  const refuse = (operation: string) => new EgressStoreUnavailableError('test', `${operation}: connection refused (127.0.0.1:1)`);
  const store: Store = {
    kind: 'test',
    durable: false,
    async open(context) {
      counts.open += 1;
      if (options.openError) throw options.openError;
      if (control.down) throw refuse('open');
      await inner.open(context);
    },
    admit: (events, bytes) => inner.admit(events, bytes),
    async enqueue(events: readonly QueuedEvent[]) {
      counts.enqueue += 1;
      if (control.down) throw refuse('enqueue');
      await inner.enqueue(events);
      for (const event of events) taken.push((JSON.parse(event.payload) as { n: number }).n);
    },
    async claim(request) {
      counts.claim += 1;
      if (control.down) throw refuse('claim');
      return inner.claim(request);
    },
    async settle(batch, settlement) {
      counts.settle += 1;
      if (control.down || control.failSettles > 0) {
        control.failSettles = Math.max(0, control.failSettles - 1);
        counts.failedSettles += 1;
        throw refuse('settle');
      }
      await inner.settle(batch, settlement);
    },
    release: (batch) => inner.release(batch),
    watermark: () => inner.watermark(),
    pendingAtOrBelow: (mark) => inner.pendingAtOrBelow(mark),
    async eventState(id) {
      if (control.down) throw refuse('eventState');
      return inner.eventState(id);
    },
    listDead: (query) => inner.listDead(query),
    retryDead: (ids, query) => inner.retryDead(ids, query),
    purgeDead: (ids, query) => inner.purgeDead(ids, query),
    stats: (now) => inner.stats(now),
    close: () => inner.close(),
  };
  return { store, control, counts, taken };
}
