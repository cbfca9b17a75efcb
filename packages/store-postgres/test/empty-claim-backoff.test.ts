import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { EmptyClaimBackoff } from '../src/empty-claim-backoff.js';

describe('wake-ups held back after claims that found nothing', () => {
  let woken: string[];
  let backoff: EmptyClaimBackoff;
  beforeEach(() => {
    vi.useFakeTimers();
    woken = [];
    backoff = new EmptyClaimBackoff((destination) => woken.push(destination));
  });
  afterEach(() => {
    backoff.stop();
    vi.useRealTimers();
  });

  test('a worker whose claims find work is woken at once by every notification', () => {
    backoff.claimed('d', true);
    backoff.notified('d');
    backoff.notified('d');
    expect(woken).toEqual(['d', 'd']);
  });

  test('after an empty claim, the notifications of the next moment wake the worker once, when the hold ends', () => {
    const now = Date.now();
    backoff.claimed('d', false, now);
    backoff.notified('d', now);
    backoff.notified('d', now);
    expect(woken).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(woken).toEqual(['d']);
  });

  test('the hold doubles with each empty claim in a row, up to 16 ms, and a claim that finds work ends it', () => {
    let now = Date.now();
    for (let empty = 0; empty < 10; empty++) backoff.claimed('d', false, now);
    backoff.notified('d', now);
    vi.advanceTimersByTime(15);
    expect(woken).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(woken).toEqual(['d']);
    now = Date.now();
    backoff.claimed('d', true, now);
    backoff.notified('d', now);
    expect(woken).toEqual(['d', 'd']);
  });

  test('a hold on one destination does not delay another', () => {
    backoff.claimed('quiet', false);
    backoff.notified('busy');
    expect(woken).toEqual(['busy']);
  });
});
