import type { Logger } from './logger.js';
import type { ErrorRecord } from './store.js';

/** What `egress.on(...)` reports. Errors are the records kept in the store, already through the redaction step. */
export interface EgressEvents {
  /** A batch (or part of it) arrived. */
  delivered: {
    destination: string;
    partition: string;
    batchId: string;
    eventIds: string[];
    /** The attempt that succeeded, 1 for the first. */
    attempt: number;
    /** Milliseconds from the oldest event's `$send` to confirmed delivery: the largest of `latencies`. */
    latency: number;
    /** Each delivered event's milliseconds from its `$send` to confirmed delivery, in the order of `eventIds`. */
    latencies: number[];
    /** Milliseconds the attempt took, from the `deliver` call to its outcome. */
    duration: number;
  };
  /** A delivery failed and will be tried again; `duration` is the milliseconds the failed attempt took, `deliver` call to outcome. */
  retrying: { destination: string; partition: string; batchId: string; eventIds: string[]; attempt: number; error: ErrorRecord; retryAt: number; duration: number };
  /** Events that will never be delivered; they wait in the dead-letter queue. `duration` is the milliseconds the last attempt took. */
  dead: { destination: string; partition: string; batchId: string; eventIds: string[]; attempt: number; error: ErrorRecord; duration: number };
  /** Events refused at `send` because the store or the commit buffer was full and `overflow` is `'drop'`. */
  dropped: { destination: string; count: number; reason: 'capacity'; message: string };
  /**
   * Accepted events that never reached the store: still in the commit buffer when `close()` gave up
   * waiting, or when the store failed for good. The memory buffer does not outlive the process.
   */
  lost: { destination: string; count: number; reason: 'close-timeout' | 'store-failed'; message: string };
  /** A partition's deliveries kept failing: it is paused, and probed one delivery at a time from `probeAt`. */
  paused: { destination: string; partition: string; failures: number; reason: string; probeAt: number };
  /** A paused or disabled partition delivers again: a probe got an answer (`'probe'`), or `enable` was called (`'enable'`). */
  resumed: { destination: string; partition: string; by: 'probe' | 'enable' };
  /** A partition delivers nothing until it is enabled: `disableAfter` was reached (`'circuit'`), or `disable` was called (`'disable'`). */
  disabled: { destination: string; partition: string; failures: number; reason: string; by: 'circuit' | 'disable' };
  /** The store's state changed (connecting, connected, unreachable, failed), or its spool grew or shrank. */
  store: EgressStoreStatus;
  /** With adaptive concurrency: a partition's limit in this process changed. */
  concurrency: ConcurrencyChange;
}

/** A partition's adaptive concurrency limit moved: up by one while the receiver kept up, down when it slowed or pushed back. */
export interface ConcurrencyChange {
  destination: string;
  partition: string;
  /** Batches this partition may now have in flight in this process. */
  limit: number;
  previous: number;
  /** `'increase'`; `'latency'` when the round-trip time rose; `'back-pressure'` on retryable refusals (429, 503, timeouts). */
  reason: 'increase' | 'latency' | 'back-pressure';
  /** The smoothed round-trip time, milliseconds, once measured. */
  rtt: number | undefined;
}

/** Where the store stands, and what waits for it in this process: `egress.storeStatus()` and the `store` event. */
export interface EgressStoreStatus {
  /** The store's kind, e.g. `postgres`. */
  readonly kind: string;
  /**
   * `'connecting'` until the store first opens, then `'connected'`; `'unreachable'` while its
   * database cannot be reached (events wait and calls are retried); `'failed'` when it could not be
   * opened for a reason waiting does not mend (a configuration error), so nothing is accepted.
   */
  readonly state: 'connecting' | 'connected' | 'unreachable' | 'failed';
  /** When it entered that state, Unix milliseconds. */
  readonly since: number;
  /** Why it is unreachable or failed, free of secrets. */
  readonly error?: string;
  /** Events accepted by this process and waiting in its commit buffer for the store. */
  readonly buffered: number;
  /** Events in the store's local spool, not yet moved to its database (stores with a spool). */
  readonly spooled?: number;
}

export type EgressEventName = keyof EgressEvents;

export class EventHub {
  private readonly listeners = new Map<EgressEventName, Set<(event: never) => void>>();

  constructor(
    private readonly logger: Logger,
    /** The redaction step, for the free texts events carry that no adapter wrote: why events were dropped or lost, why the store is unreachable. */
    private readonly redact: (text: string) => string = (text) => text,
  ) {}

  on<Name extends EgressEventName>(name: Name, listener: (event: EgressEvents[Name]) => void): () => void {
    let set = this.listeners.get(name);
    if (!set) this.listeners.set(name, (set = new Set()));
    set.add(listener as (event: never) => void);
    return () => set.delete(listener as (event: never) => void);
  }

  /** Whether anyone listens, so that callers can skip building an event nobody reads. */
  has(name: EgressEventName): boolean {
    return (this.listeners.get(name)?.size ?? 0) > 0;
  }

  emit<Name extends EgressEventName>(name: Name, given: EgressEvents[Name]): void {
    const set = this.listeners.get(name);
    if (!set) return;
    const event = this.redacted(name, given);
    for (const listener of set) {
      try {
        (listener as (event: EgressEvents[Name]) => void)(event);
      } catch (error) {
        // A broken listener must not break delivery bookkeeping.
        this.logger.error({ event: name, error }, `a "${name}" listener threw`);
      }
    }
  }

  private redacted<Name extends EgressEventName>(name: Name, given: EgressEvents[Name]): EgressEvents[Name] {
    if (name === 'dropped' || name === 'lost') {
      const { message } = given as EgressEvents['dropped' | 'lost'];
      return { ...given, message: this.redact(message) };
    }
    if (name === 'paused' || name === 'disabled') {
      const { reason } = given as EgressEvents['paused' | 'disabled'];
      return { ...given, reason: this.redact(reason) };
    }
    if (name === 'store') {
      const { error } = given as EgressEvents['store'];
      if (error !== undefined) return { ...given, error: this.redact(error) };
    }
    return given;
  }
}
