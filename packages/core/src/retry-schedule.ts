import type { ResolvedPolicy } from './policy.js';

/**
 * Exponential backoff with full jitter: the n-th retry waits a uniformly random time between
 * `initialDelay` and `min(maxDelay, initialDelay * 2^(n-1))`, so clients that failed together
 * do not all come back together. A sink's own `retryAfter` wins over the computed wait.
 */
export function retryDelay(retry: ResolvedPolicy['retry'], attempt: number, retryAfter: number | undefined, random = Math.random): number {
  if (retryAfter !== undefined && retryAfter >= 0) return retryAfter;
  const ceiling = Math.min(retry.maxDelay, retry.initialDelay * 2 ** Math.max(0, attempt - 1));
  return retry.initialDelay + random() * Math.max(0, ceiling - retry.initialDelay);
}

/** Why an event that failed must not be retried, or undefined when it may be. */
export function retryRefusal(retry: ResolvedPolicy['retry'], attempts: number, sentAt: number, retryAt: number): string | undefined {
  if (attempts >= retry.maxAttempts) return `gave up after ${attempts} attempt${attempts === 1 ? '' : 's'}`;
  if (retryAt - sentAt > retry.maxAge) return `gave up: the next attempt would come after retry.maxAge (${retry.maxAge} ms)`;
  return undefined;
}
