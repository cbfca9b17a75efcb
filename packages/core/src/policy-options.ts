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
