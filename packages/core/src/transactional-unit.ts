import type { CommitGroup } from './commit-buffer.js';
import { EgressCapacityError, EgressConfigurationError, EgressError, EgressStoreError } from './errors.js';
import type { DeliveryOutcome, OutcomeSource } from './receipt.js';
import type { QueuedEvent, Store } from './store.js';

/** What a unit of work run inside the application's transaction needs from the engine. */
export interface TransactionalUnitHost {
  readonly store: Store;
  /** Gives back the commit buffer's hold on the unit's events. */
  release(group: CommitGroup): void;
  /** The application's transaction ended: wake the lanes of these events' destinations. */
  ended(events: readonly QueuedEvent[]): void;
}

/** Throws a configuration error, naming the option, when the store cannot write through an application's transaction. */
export function assertTransactionalStore(store: Store, path: string): void {
  if (typeof store.enqueueWithin !== 'function') {
    throw new EgressConfigurationError(
      `the ${store.kind} store cannot write through an application's transaction; use @egress/store-postgres or @egress/store-sqlite`,
      path,
    );
  }
}

/**
 * Writes a finished unit's events through the application's transaction. The commit buffer's hold
 * is given back whatever happens: written, the events belong to that transaction and count in the
 * store once it commits; refused, or rolled back later, they are gone. Nothing is retried: the
 * caller hears the failure while its transaction is still open and decides.
 */
export function writeWithinTransaction(host: TransactionalUnitHost, transaction: unknown, group: CommitGroup): Promise<void> | void {
  const { store } = host;
  const events = group.events;
  const refused = (error: unknown): Error => {
    host.release(group);
    const typed = EgressCapacityError.isInstance(error) || EgressConfigurationError.isInstance(error) ? error : new EgressStoreError(store.kind, "the events could not be written through the application's transaction", { cause: error });
    group.reject(typed);
    return typed;
  };
  const written = (): void => {
    host.release(group);
    group.resolve();
  };
  // Even a unit without sends goes to the store, which checks the transaction: a wrong one is found at once.
  let pending: Promise<void> | void;
  try {
    pending = store.enqueueWithin!(transaction, events, () => host.ended(events));
  } catch (error) {
    throw refused(error);
  }
  if (pending === undefined) return written();
  return pending.then(written, (error: unknown) => {
    throw refused(error);
  });
}

/**
 * Receipts of events written through an application's transaction: whether they committed is the
 * application's to know, and an event rolled back leaves the same trace as one delivered (none), so
 * no outcome is reported rather than a wrong one.
 */
export const untrackedOutcomes: OutcomeSource = {
  async waitForOutcome(id: string, committed: Promise<void>): Promise<DeliveryOutcome> {
    await committed;
    throw new EgressError(
      `[egress] event ${id} was written through the application's transaction; its outcome is not tracked, since the store cannot tell a rolled-back event from a delivered one`,
    );
  },
};
