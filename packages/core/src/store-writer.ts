import type { CommitTarget } from './commit-buffer.js';
import type { DeliveryStatistics } from './delivery-statistics.js';
import type { EventHub } from './egress-events.js';
import { EgressStoreError, EgressStoreUnavailableError, EgressTimeoutError } from './errors.js';
import type { Logger } from './logger.js';
import type { StoreConnection } from './store-connection.js';
import type { QueuedEvent, Store } from './store.js';

/**
 * Where the commit buffer's writes go: into the store once it is open, with what happened told to
 * the connection (whose status they change), the logger, the statistics and the listeners. An
 * unreachable database is logged once per outage by the connection; other refusals once per streak
 * of failed writes here; events that never reach the store once per loss, loudly.
 */
export class StoreWriter implements CommitTarget {
  constructor(
    private readonly store: Store,
    private readonly connection: StoreConnection,
    private readonly logger: Logger,
    private readonly events: EventHub,
    private readonly statistics: DeliveryStatistics,
    /** Called with the events the store took, to wake their lanes. */
    private readonly onWritten: (events: readonly QueuedEvent[]) => void,
  ) {}

  write(events: QueuedEvent[]): Promise<void> {
    if (this.connection.isOpen) return this.store.enqueue(events);
    return this.connection.whenOpen().then(() => this.store.enqueue(events));
  }

  written(events: readonly QueuedEvent[]): void {
    this.connection.succeeded();
    this.onWritten(events);
  }

  writeFailed(error: unknown, failures: number, keptEvents: number): void {
    this.connection.failed(error);
    if (failures === 1 && !EgressStoreUnavailableError.isInstance(error)) {
      this.logger.error(
        { store: this.store.kind, error, buffered: keptEvents },
        `the ${this.store.kind} store refused a commit; ${keptEvents} accepted events are kept in the commit buffer and written again with backoff`,
      );
    }
  }

  recovered(failures: number, events: number): void {
    this.logger.info({ store: this.store.kind, failures, events }, `the ${this.store.kind} store took the waiting events after ${failures} failed write${failures === 1 ? '' : 's'}`);
  }

  unitRefused(error: unknown, events: number): Error {
    return new EgressStoreError(this.store.kind, `the unit of work was not committed; its ${events} event${events === 1 ? ' was' : 's were'} not kept`, { cause: error });
  }

  abandoned(events: readonly QueuedEvent[], error: Error): void {
    const reason = EgressTimeoutError.isInstance(error) ? 'close-timeout' : 'store-failed';
    const counts = new Map<string, number>();
    for (const event of events) counts.set(event.destination, (counts.get(event.destination) ?? 0) + 1);
    for (const [destination, count] of counts) {
      this.statistics.lost(destination, count);
      this.events.emit('lost', { destination, count, reason, message: error.message });
    }
    this.logger.error(
      { store: this.store.kind, events: events.length, destinations: Object.fromEntries(counts), error },
      `${events.length} accepted event${events.length === 1 ? '' : 's'} never reached the ${this.store.kind} store and are lost`,
    );
  }
}
