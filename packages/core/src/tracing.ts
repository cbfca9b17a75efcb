import type { Batch } from './destination.js';
import type { ErrorRecord } from './store.js';

/**
 * Hooks through which a tracing library (`@egress/opentelemetry`) follows each event from `send`
 * to its deliveries. Core knows nothing of the library: it stores the text `sent` returns with the
 * event, hands it back on every batch that holds the event (retries, other worker processes and
 * replayed dead letters included), and passes the headers of each delivery attempt to the adapter.
 * Without `tracing` in `createEgress` options none of this runs.
 */
export interface Tracing {
  /**
   * Called synchronously inside `send`, in the caller's async context, once the event is accepted.
   * Returns the trace context to store with the event (at most 1024 characters), or undefined.
   * Arguments rather than an object: it runs for every event.
   */
  sent(destination: string, eventId: string): string | undefined;
  /**
   * Called as each delivery attempt of a batch starts; `batch.events[n].trace` holds what `sent`
   * returned for each event. What it returns is told how the attempt ended.
   */
  delivering(batch: Batch): DeliveryTrace | undefined;
}

/** One traced delivery attempt. */
export interface DeliveryTrace {
  /**
   * Propagation headers for what the adapter sends in this attempt (W3C Trace Context:
   * `traceparent`, `tracestate`); adapters read them as `context.traceHeaders`.
   */
  readonly headers?: Readonly<Record<string, string>>;
  /** Runs the adapter's `deliver` call, e.g. with the attempt's span active. */
  run?<T>(deliver: () => T): T;
  /** How the attempt ended, once its outcome is recorded in the store (or given up). Called once. */
  ended(outcome: DeliveryTraceOutcome): void;
}

/** How one delivery attempt ended, counted per event. */
export interface DeliveryTraceOutcome {
  /** Events that arrived. */
  readonly delivered: number;
  /** Events that wait for another attempt (a retry, or a batch given back at shutdown). */
  readonly retrying: number;
  /** Events dead-lettered. */
  readonly dead: number;
  /** The first failure's error, already free of secrets; absent when every event arrived. */
  readonly error?: ErrorRecord;
}

/** The longest trace context a store keeps; longer text from `sent` is not stored. */
export const maxTraceLength = 1024;
