import { describe, expect, test } from 'vitest';
import { AdaptiveConcurrency, AdaptiveLimit, type LimitChange } from '../src/adaptive-concurrency.js';
import { adaptiveConcurrencyDefaults } from '../src/concurrency-policy.js';
import { createEgress, EgressConfigurationError, resolvePolicy, silentLogger } from '../src/index.js';
import { recordingDestination } from './helpers.js';

const settings = { ...adaptiveConcurrencyDefaults, max: 8 };

/**
 * Runs one window: `count` deliveries start together and answer in `rtt` ms each; all but the last
 * answer at once, the last after a pause longer than any average round trip here, so it closes the
 * window with all of them in it (the first window closes at its first answer, which starts the average).
 */
function window(limit: AdaptiveLimit, clock: { now: number }, rtt: number, options: { count?: number; backPressure?: boolean } = {}): void {
  const count = options.count ?? limit.limit;
  for (let index = 0; index < count; index += 1) limit.started();
  for (let index = 1; index < count; index += 1) limit.finished(rtt, options.backPressure ?? false, clock.now);
  clock.now += 1000;
  limit.finished(rtt, options.backPressure ?? false, clock.now);
}

describe('one partition limit (AIMD)', () => {
  test('grows by one per round trip while the limit is in use and the round-trip time holds', () => {
    const clock = { now: 0 };
    const limit = new AdaptiveLimit(settings, clock.now);
    const seen = [limit.limit];
    for (let round = 0; round < 5; round += 1) {
      window(limit, clock, 10);
      seen.push(limit.limit);
    }
    expect(seen).toEqual([1, 2, 3, 4, 5, 6]);
  });

  test('does not grow when the limit is not in use, since that says nothing about a larger one', () => {
    const clock = { now: 0 };
    const limit = new AdaptiveLimit({ ...settings, initial: 4 }, clock.now);
    for (let round = 0; round < 5; round += 1) window(limit, clock, 10, { count: 2 });
    expect(limit.limit).toBe(4);
  });

  test('stops at the ceiling', () => {
    const clock = { now: 0 };
    const limit = new AdaptiveLimit(settings, clock.now);
    for (let round = 0; round < 20; round += 1) window(limit, clock, 10);
    expect(limit.limit).toBe(8);
  });

  test('multiplies by the decrease factor on back-pressure, and never goes below one', () => {
    const clock = { now: 0 };
    const limit = new AdaptiveLimit({ ...settings, initial: 8, decrease: 0.5 }, clock.now);
    window(limit, clock, 10);
    expect(limit.limit).toBe(8);
    const seen: number[] = [];
    for (let round = 0; round < 5; round += 1) {
      window(limit, clock, 10, { backPressure: true });
      seen.push(limit.limit);
    }
    expect(seen).toEqual([4, 2, 1, 1, 1]);
  });

  test('decreases when the round-trip time rises above its average by more than the usual deviation, and not within it', () => {
    const clock = { now: 0 };
    const limit = new AdaptiveLimit({ ...settings, initial: 8 }, clock.now);
    window(limit, clock, 10);
    // With no deviation measured yet, any rise counts.
    window(limit, clock, 14);
    expect(limit.limit).toBe(7);
    window(limit, clock, 10);
    expect(limit.limit).toBe(8);
    // Average about 11, deviation 1.6: 13 is within 2.5 deviations, 40 is not.
    window(limit, clock, 13);
    expect(limit.limit).toBe(8);
    window(limit, clock, 40);
    expect(limit.limit).toBe(7);
  });

  test('counts responses that land within one round trip as one window', () => {
    const clock = { now: 0 };
    const limit = new AdaptiveLimit({ ...settings, initial: 4 }, clock.now);
    window(limit, clock, 10);
    expect(limit.limit).toBe(5);
    // Five more answers, a millisecond apart: one window, so one step at most.
    for (let index = 0; index < 5; index += 1) limit.started();
    for (let index = 0; index < 5; index += 1) limit.finished(10, false, (clock.now += 1));
    expect(limit.limit).toBe(5);
    clock.now += 10;
    limit.started();
    limit.finished(10, false, clock.now);
    expect(limit.limit).toBe(6);
  });
});

describe('limits per partition', () => {
  test('a partition that pushes back does not lower the limit of another, and the changes are reported', () => {
    const changes: LimitChange[] = [];
    const adaptive = new AdaptiveConcurrency(settings, (change) => changes.push(change));
    let now = 0;
    for (let round = 0; round < 4; round += 1) {
      for (const partition of ['fast', 'slow']) {
        const count = adaptive.limit(partition);
        for (let index = 0; index < count; index += 1) adaptive.started(partition, now);
      }
      now += 10;
      const fast = adaptive.limit('fast');
      for (let index = 0; index < fast; index += 1) adaptive.finished('fast', 10, false, now);
      const slow = adaptive.limit('slow');
      for (let index = 0; index < slow; index += 1) adaptive.finished('slow', 10, round > 0, now);
    }
    expect(adaptive.limit('fast')).toBe(5);
    expect(adaptive.limit('slow')).toBe(1);
    expect(adaptive.total()).toBe(6);
    expect(changes.filter((change) => change.partition === 'slow').map((change) => change.reason)).toEqual(['increase', 'back-pressure']);
    expect(changes.filter((change) => change.partition === 'slow').at(-1)).toMatchObject({ limit: 1, previous: 2, reason: 'back-pressure' });
  });

  test('counts the free part of every limit, and room for a partition not seen yet', () => {
    const adaptive = new AdaptiveConcurrency({ ...settings, initial: 2 }, () => {});
    adaptive.started('a', 0);
    expect(adaptive.hasRoom('a')).toBe(true);
    adaptive.started('a', 0);
    expect(adaptive.hasRoom('a')).toBe(false);
    expect(adaptive.hasRoom('b')).toBe(true);
    expect(adaptive.headroom()).toBe(2);
  });
});

describe('the concurrency option', () => {
  const { destination } = recordingDestination();

  test("'adaptive' takes the defaults, with the ceiling as the lane's concurrency", () => {
    const policy = resolvePolicy(destination, { concurrency: 'adaptive' }, 'policies.events', silentLogger);
    expect(policy.concurrency).toBe(64);
    expect(policy.adaptiveConcurrency).toEqual({ initial: 1, max: 64, decrease: 0.9, rttSmoothing: 0.4, rttDeviationScale: 2.5 });
    expect(resolvePolicy(destination, { concurrency: 4 }, 'policies.events', silentLogger).adaptiveConcurrency).toBeUndefined();
  });

  test('takes the values given', () => {
    const policy = resolvePolicy(destination, { concurrency: { adaptive: { initial: 2, max: 32, decrease: 0.5 } } }, 'policies.events', silentLogger);
    expect(policy.concurrency).toBe(32);
    expect(policy.adaptiveConcurrency).toMatchObject({ initial: 2, max: 32, decrease: 0.5 });
  });

  test.each([
    ['fast', 'policies.events.concurrency: expected a positive integer'],
    [0, 'policies.events.concurrency: expected a positive integer'],
    [{ adaptive: { max: 0 } }, 'policies.events.concurrency.adaptive.max: expected a positive integer'],
    [{ adaptive: { decrease: 1 } }, 'policies.events.concurrency.adaptive.decrease: expected a number above 0 and below 1'],
    [{ adaptive: { rttSmoothing: 0 } }, 'policies.events.concurrency.adaptive.rttSmoothing: expected a number above 0 and at most 1'],
    [{ adaptive: { initial: 10, max: 5 } }, 'policies.events.concurrency.adaptive.initial: initial (10) is above max (5)'],
    [{ adaptive: { ceiling: 5 } }, 'policies.events.concurrency.adaptive.ceiling: unknown key "ceiling"'],
    [{ adaptve: {} }, 'policies.events.concurrency.adaptve: unknown key "adaptve"'],
  ])('refuses %j with a typed error naming the value', (concurrency, message) => {
    const attempt = () => createEgress({ destinations: [destination], logger: silentLogger, policies: { events: { concurrency: concurrency as never } } });
    expect(attempt).toThrow(EgressConfigurationError);
    expect(attempt).toThrow(message);
  });

  test('stats() shows the limit: the fixed one, or the adaptive one per partition', async () => {
    const fixed = createEgress({ destinations: [recordingDestination().destination], logger: silentLogger, policies: { events: { concurrency: 5 } } });
    const adaptive = createEgress({ destinations: [recordingDestination().destination], logger: silentLogger, policies: { events: { concurrency: 'adaptive' } } });
    try {
      await Promise.all([fixed.ready(), adaptive.ready()]);
      expect((await fixed.stats())[0]).toMatchObject({ concurrencyLimit: 5 });
      adaptive.send.events({ n: 1 });
      await adaptive.flush();
      const [stats] = await adaptive.stats();
      expect(stats!.concurrencyLimit).toBeGreaterThanOrEqual(1);
      expect(stats!.partitions.every((partition) => partition.concurrencyLimit !== undefined)).toBe(true);
    } finally {
      await Promise.all([fixed.close(), adaptive.close()]);
    }
  });
});
