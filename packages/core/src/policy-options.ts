import type { Duration, Size } from './units.js';

/** How one destination's events are batched, retried, paced and ordered. Every member is optional. */
export interface PolicyOptions {
  /** When a batch is closed and handed to the destination. */
  batch?: BatchPolicyOptions;
  /** What happens after a failed delivery. */
  retry?: RetryPolicyOptions;
  /** Largest number of batches being delivered at once for this destination. */
  concurrency?: number;
  /** Ceiling on events or requests per interval. */
  rateLimit?: RateLimitOptions;
  /** `'fifo'` keeps the order of each partition across retries by allowing one batch in flight per partition. */
  ordering?: 'fifo' | 'none';
  /** How long one `deliver` call may take before it is aborted and retried. */
  timeout?: Duration;
  /** Pauses a partition that keeps failing and probes it before it resumes; `false` turns off an adapter's default. */
  circuit?: CircuitPolicyOptions | false;
}

/**
 * Circuit breaking per partition (an HTTP origin, an S3 bucket and prefix, a SQL table): after a
 * run of failed deliveries the partition pauses, and one delivery at a time probes it until one
 * gets an answer. Other partitions and destinations go on. Needs a store with partition states.
 */
export interface CircuitPolicyOptions {
  /** Failed deliveries in a row that pause a partition (default 5); also the fewest deliveries `failureRatio` judges. */
  failures?: number;
  /** Also pause when at least this share (above 0, at most 1) of the deliveries within `window` failed. */
  failureRatio?: number;
  /** How far back `failureRatio` looks (default 1 minute). */
  window?: Duration;
  /** Wait between probes of a paused partition (default 30 s). */
  probeInterval?: Duration;
  /** Disable a paused partition once it has been failing this long (`'5d'`) or after this many failed deliveries in a row (`{ failures: 100 }`). */
  disableAfter?: Duration | { failures: number };
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
