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
    /** Milliseconds from the oldest event's `$send` to confirmed delivery. */
    latency: number;
  };
  /** A delivery failed and will be tried again. */
  retrying: { destination: string; partition: string; batchId: string; eventIds: string[]; attempt: number; error: ErrorRecord; retryAt: number };
  /** Events that will never be delivered; they wait in the dead-letter queue. */
  dead: { destination: string; partition: string; batchId: string; eventIds: string[]; attempt: number; error: ErrorRecord };
  /** Events refused because the store was full and `overflow` is `'drop'`, or lost because the store failed. */
  dropped: { destination: string; count: number; reason: 'capacity' | 'store-error'; message: string };
}

export type EgressEventName = keyof EgressEvents;

export class EventHub {
  private readonly listeners = new Map<EgressEventName, Set<(event: never) => void>>();

  constructor(
    private readonly logger: Logger,
    /** The redaction step, for the one free text an event carries: why events were dropped (a store's error). */
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
    const event = name === 'dropped' ? ({ ...given, message: this.redact((given as EgressEvents['dropped']).message) } as EgressEvents[Name]) : given;
    for (const listener of set) {
      try {
        (listener as (event: EgressEvents[Name]) => void)(event);
      } catch (error) {
        // A broken listener must not break delivery bookkeeping.
        this.logger.error({ event: name, error }, `a "${name}" listener threw`);
      }
    }
  }
}
