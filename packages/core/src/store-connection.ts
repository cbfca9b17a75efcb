import type { EgressStoreStatus, EventHub } from './egress-events.js';
import { EgressStoreUnavailableError, describeCause } from './errors.js';
import type { Logger } from './logger.js';
import { storeBackoff } from './store-backoff.js';
import type { Store, StoreStatus } from './store.js';

/** What the connection needs from the engine around it. */
export interface StoreConnectionHost {
  readonly logger: Logger;
  readonly events: EventHub;
  /** Events waiting in the commit buffer, for the status. */
  buffered(): number;
  /** The store became reachable (opened, or back after an outage): what waits for it may go now. */
  reachable(): void;
}

/**
 * The engine's side of its store's connection. Opens the store in the background, calling `open`
 * again with backoff (50 ms doubling to 5 s, jittered) while it throws `EgressStoreUnavailableError`,
 * unless `startup` is `'fail-fast'`; any other error from `open` is final. Keeps the status that
 * `storeStatus()`, `stats()` and the `store` event report: the store's own `status()` when it has
 * one, otherwise what the engine saw of its calls. Logs each change of state once, so an outage
 * gives one line when it starts and one when it ends, however many calls failed in between.
 */
export class StoreConnection {
  /** Resolves once the store is open; rejects with the final error. */
  readonly opened: Promise<void>;
  private resolveOpened!: () => void;
  private rejectOpened!: (error: unknown) => void;
  private openSucceededOnce = false;
  private attempt: Promise<void> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private openFailures = 0;
  private lastError: unknown;
  private stopped = false;
  /** Set when `open` failed for good. */
  private failure: { error: unknown; since: number } | undefined;
  /** The status for stores without `status()`, from what their calls did. */
  private observed: StoreStatus = { state: 'connecting', since: Date.now() };
  private reported: EgressStoreStatus | undefined;

  constructor(
    readonly store: Store,
    private readonly host: StoreConnectionHost,
    private readonly startup: 'retry' | 'fail-fast',
  ) {
    this.opened = new Promise<void>((resolve, reject) => {
      this.resolveOpened = resolve;
      this.rejectOpened = reject;
    });
    // Failures surface through ready(), sends and the logger; never as an unhandled rejection.
    this.opened.catch(() => {});
  }

  /** Makes the first attempt; the next ones follow by themselves. */
  start(): void {
    this.tryOpen();
  }

  /** Whether `open` succeeded. */
  get isOpen(): boolean {
    return this.openSucceededOnce;
  }

  /** Whether a call to `open` is in progress. */
  get opening(): boolean {
    return this.attempt !== undefined;
  }

  /** The final error when `open` failed for good. */
  get failedWith(): unknown {
    return this.failure?.error;
  }

  /**
   * Resolves when the store is open. While it is being retried after a failure, rejects at once
   * with the last error, so callers that should not wait (a unit of work, `stats()`) hear it now.
   */
  whenOpen(): Promise<void> {
    if (this.openSucceededOnce) return Promise.resolve();
    if (this.failure) return Promise.reject(this.failure.error);
    if (this.attempt) return this.attempt;
    return Promise.reject(this.lastError);
  }

  /** Stops retrying `open`; a store that never opened rejects `opened` with `reason`. */
  stop(reason: Error): void {
    this.stopped = true;
    this.lastError ??= reason;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (!this.openSucceededOnce && !this.attempt) this.rejectOpened(reason);
  }

  status(): EgressStoreStatus {
    const { kind } = this.store;
    const buffered = this.host.buffered();
    if (this.failure) return { kind, state: 'failed', since: this.failure.since, error: describeCause(this.failure.error), buffered };
    const status = this.store.status?.() ?? this.observed;
    const report: { -readonly [Key in keyof EgressStoreStatus]: EgressStoreStatus[Key] } = { kind, state: status.state, since: status.since, buffered };
    if (status.error !== undefined) report.error = status.error;
    if (status.spooled !== undefined) report.spooled = status.spooled;
    return report;
  }

  /** A store call could not reach the database. */
  failed(error: unknown): void {
    if (!EgressStoreUnavailableError.isInstance(error)) return;
    if (!this.store.status && this.observed.state !== 'unreachable') {
      this.observed = { state: 'unreachable', since: Date.now(), error: describeCause(error) };
    }
    this.changed();
  }

  /** A store call succeeded. On the path of every write and claim, so it does nothing when nothing changed. */
  succeeded(): void {
    if (this.store.status || this.observed.state === 'connected' || !this.openSucceededOnce) return;
    this.observed = { state: 'connected', since: Date.now() };
    this.changed();
  }

  /** Re-reads the status and reports a change: called by the store (`statusChanged`) and by the engine. */
  changed(): void {
    const status = this.status();
    const previous = this.reported;
    if (previous && previous.state === status.state && previous.spooled === status.spooled) return;
    this.reported = status;
    if (previous?.state !== status.state) this.log(status, previous);
    this.host.events.emit('store', status);
    if (status.state === 'connected' && previous?.state !== 'connected') this.host.reachable();
  }

  private log(status: EgressStoreStatus, previous: EgressStoreStatus | undefined): void {
    const { logger } = this.host;
    const fields = { store: status.kind, buffered: status.buffered, ...(status.spooled === undefined ? {} : { spooled: status.spooled }) };
    if (status.state === 'unreachable') {
      logger.warn(
        { ...fields, error: status.error },
        `the ${status.kind} store is unreachable (${status.error ?? 'no reason given'}); ${status.spooled === undefined ? 'accepted events wait in memory' : 'accepted events go to its local spool'} and the store is tried again with backoff`,
      );
    } else if (status.state === 'connected' && previous?.state === 'unreachable') {
      const seconds = ((status.since - previous.since) / 1000).toFixed(1);
      logger.info(fields, `the ${status.kind} store is reachable again after ${seconds} s`);
    } else if (status.state === 'failed') {
      logger.error({ ...fields, error: status.error }, `the ${status.kind} store could not be opened (${status.error}); no events are accepted`);
    }
  }

  private tryOpen(): void {
    this.retryTimer = undefined;
    if (this.stopped) {
      this.rejectOpened(this.lastError);
      return;
    }
    let attempt: Promise<void>;
    try {
      attempt = this.store.open({ logger: this.host.logger, statusChanged: () => this.changed() });
    } catch (error) {
      attempt = Promise.reject(error);
    }
    this.attempt = attempt;
    attempt.then(
      () => this.openSucceeded(),
      (error: unknown) => this.openFailed(error),
    );
  }

  private openSucceeded(): void {
    this.attempt = undefined;
    this.openSucceededOnce = true;
    this.openFailures = 0;
    if (!this.store.status) this.observed = { state: 'connected', since: Date.now() };
    this.changed();
    this.resolveOpened();
    this.host.reachable();
  }

  private openFailed(error: unknown): void {
    this.attempt = undefined;
    this.lastError = error;
    if (EgressStoreUnavailableError.isInstance(error) && this.startup === 'retry' && !this.stopped) {
      this.openFailures += 1;
      this.failed(error);
      this.retryTimer = setTimeout(() => this.tryOpen(), storeBackoff(this.openFailures));
      return;
    }
    if (this.stopped) {
      this.rejectOpened(error);
      return;
    }
    this.failure = { error, since: Date.now() };
    this.changed();
    this.rejectOpened(error);
  }
}
