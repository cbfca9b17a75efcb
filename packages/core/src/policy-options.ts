import type { Duration, Size } from './units.js';

/** How one destination's events are batched, retried, paced and ordered. Every member is optional. */
export interface PolicyOptions {
  /** When a batch is closed and handed to the destination. */
  batch?: BatchPolicyOptions;
  /** What happens after a failed delivery. */
  retry?: RetryPolicyOptions;
  /**
   * Largest number of batches being delivered at once for this destination; or `'adaptive'` (or
   * `{ adaptive: { ... } }`) to let each partition's limit follow what the receiver can take.
   */
  concurrency?: number | 'adaptive' | { adaptive: AdaptiveConcurrencyOptions };
  /** Ceiling on events or requests per interval. */
  rateLimit?: RateLimitOptions;
  /** `'fifo'` keeps the order of each partition across retries by allowing one batch in flight per partition. */
  ordering?: 'fifo' | 'none';
  /** How long one `deliver` call may take before it is aborted and retried. */
  timeout?: Duration;
  /** Also send each dead letter of this destination, redacted, to another destination. */
  deadLetters?: DeadLetterRoutingOptions;
}

/**
 * Adaptive concurrency: each partition starts at `initial` batches in flight, gains one per round
 * trip while the receiver keeps up, and loses a share when its round-trip time rises or it pushes back.
 */
export interface AdaptiveConcurrencyOptions {
  /** The limit each partition starts with (default 1). */
  initial?: number;
  /** Most batches in flight for the destination, all partitions together (default 64). */
  max?: number;
  /** Factor applied to a limit when the receiver pushes back or slows down, above 0 and below 1 (default 0.9). */
  decrease?: number;
  /** Weight of the newest round-trip time in the moving average, above 0 and at most 1 (default 0.4). */
  rttSmoothing?: number;
  /** Mean deviations above the average round-trip time that still count as steady (default 2.5). */
  rttDeviationScale?: number;
}

/** Where this destination's dead letters are also sent; they stay in the dead-letter queue as well. */
export interface DeadLetterRoutingOptions {
  /** The destination that receives them (not this one, and not one that routes its own dead letters). */
  routeTo: string;
  /** Builds that destination's input from the dead letter; the dead letter itself when neither this nor `fields` is given. */
  input?: (deadLetter: RoutedDeadLetter) => unknown;
  /** Fixed fields of that destination's input, e.g. `{ url }` for http; the dead letter goes under `recordField`. */
  fields?: Record<string, unknown>;
  /** The field of the input that holds the dead letter when `fields` is used (default `deadLetter`). */
  recordField?: string;
}

/** What a routed dead letter carries: no secret of the destination, and its payload through the destination's redaction. */
export interface RoutedDeadLetter {
  destination: string;
  partition: string;
  eventId: string;
  attempts: number;
  error: { name: string; message: string };
  /** The payload as `deadLetters.list()` shows it. */
  payload: unknown;
  /** When the event was sent and when it was dead-lettered, Unix milliseconds. */
  sentAt: number;
  deadAt: number;
}

export interface BatchPolicyOptions {
  /** Close the batch when it holds this many events. */
  maxEvents?: number;
  /** Close the batch before its encoded size passes this. */
  maxBytes?: Size;
  /** Close the batch when its oldest event has waited this long. */
  maxDelay?: Duration;
  /** Field path(s) of the payload, or a function, whose value separates batches. Overrides the adapter's partitioning. */
  partitionBy?: string | readonly string[] | ((payload: unknown) => string);
}

export interface RetryPolicyOptions {
  /** Attempts in all, the first included; then the event is dead-lettered. */
  maxAttempts?: number;
  /** Smallest wait before a retry. */
  initialDelay?: Duration;
  /** Largest wait before a retry (a sink's `Retry-After` may ask for more). */
  maxDelay?: Duration;
  /** An event older than this is dead-lettered instead of retried. */
  maxAge?: Duration;
}

export interface RateLimitOptions {
  /** Events delivered per interval. */
  events?: number;
  /** Batches (requests) delivered per interval. */
  requests?: number;
  /** The interval; one second when not given. */
  per?: Duration;
}
