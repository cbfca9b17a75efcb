/** First wait after a store call failed, milliseconds. */
const initialDelay = 50;
/** Longest wait between two tries, milliseconds: a store that returns is noticed within this long. */
const maxDelay = 5000;

/**
 * How long to wait before calling a failing store again, after `failures` failures in a row:
 * exponential from 50 ms, capped at 5 s, with full jitter so that the processes a database outage
 * struck together do not all come back in the same instant.
 */
export function storeBackoff(failures: number, random = Math.random): number {
  const ceiling = Math.min(maxDelay, initialDelay * 2 ** Math.max(0, failures - 1));
  return initialDelay + random() * Math.max(0, ceiling - initialDelay);
}
