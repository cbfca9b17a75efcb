import { describe, expect, test } from 'vitest';
import { createEgress, EgressConfigurationError, parseDuration, parseSize, resolvePolicy, silentLogger } from '../src/index.js';
import { recordingDestination } from './helpers.js';

describe('durations and sizes', () => {
  test.each([
    [250, 250],
    ['250ms', 250],
    ['60s', 60_000],
    ['1.5s', 1500],
    ['5m', 300_000],
    ['2h', 7_200_000],
    ['1d', 86_400_000],
  ])('parses the duration %s', (input, expected) => {
    expect(parseDuration(input)).toBe(expected);
  });

  test.each([
    [1024, 1024],
    ['512B', 512],
    ['64KiB', 65_536],
    ['8MiB', 8_388_608],
    ['10MB', 10_000_000],
    ['1GiB', 1_073_741_824],
  ])('parses the size %s', (input, expected) => {
    expect(parseSize(input)).toBe(expected);
  });

  test.each(['60', '5 minutes', '-1s', 'MiB', -5, Number.NaN, {}])('refuses %j with what was expected', (input) => {
    expect(parseDuration(input)).toMatchObject({ error: expect.stringMatching(/expected a duration/) });
  });
});

describe('policies', () => {
  const { destination } = recordingDestination({ limits: { maxEvents: 500, maxBytes: 1_000_000 } });

  test('merges core defaults, adapter defaults and user values', () => {
    const adapter = { ...destination, defaults: { batch: { maxDelay: '60s' as const, maxEvents: 100 }, timeout: '5s' as const } };
    const policy = resolvePolicy(adapter, { batch: { maxEvents: 200 } }, 'policies.events', silentLogger);
    expect(policy.batch).toMatchObject({ maxEvents: 200, maxDelay: 60_000, maxBytes: 1_000_000 });
    expect(policy.timeout).toBe(5000);
    expect(policy.retry).toEqual({ maxAttempts: 10, initialDelay: 1000, maxDelay: 300_000, maxAge: 86_400_000 });
  });

  test.each([
    [{ batch: { maxEvents: 0 } }, 'policies.events.batch.maxEvents', /positive integer/],
    [{ batch: { maxBytes: '8 megs' } }, 'policies.events.batch.maxBytes', /expected a size/],
    [{ batch: { maxDelay: 'soon' } }, 'policies.events.batch.maxDelay', /expected a duration/],
    [{ batch: { maxEvent: 5 } }, 'policies.events.batch.maxEvent', /unknown key "maxEvent"/],
    [{ retry: { attempts: 5 } }, 'policies.events.retry.attempts', /unknown key/],
    [{ ordering: 'lifo' }, 'policies.events.ordering', /expected 'fifo' or 'none'/],
    [{ concurrency: 2.5 }, 'policies.events.concurrency', /positive integer/],
    [{ rateLimit: { per: '1s' } }, 'policies.events.rateLimit.per', /needs "events" or "requests"/],
    [{ batch: 5 }, 'policies.events.batch', /expected an object/],
  ])('refuses %j, naming %s', (policy, path, message) => {
    let caught: unknown;
    try {
      createEgress({ destinations: [destination], policies: { events: policy as never } });
    } catch (error) {
      caught = error;
    }
    expect(EgressConfigurationError.isInstance(caught)).toBe(true);
    expect((caught as EgressConfigurationError).path).toBe(path);
    expect((caught as Error).message).toMatch(message);
  });

  test('refuses a policy for a destination that is not registered', () => {
    expect(() => createEgress({ destinations: [destination], policies: { evnets: {} } as never })).toThrowError(
      /policies\.evnets: no destination is named "evnets" \(registered: events\)/,
    );
  });

  test('clamps what exceeds the hard limits and warns instead of failing', () => {
    const warnings: string[] = [];
    const policy = resolvePolicy(destination, { batch: { maxEvents: 10_000, maxBytes: '1GiB' } }, 'policies.events', {
      ...silentLogger,
      warn: (_fields, message) => warnings.push(message),
    });
    expect(policy.batch.maxEvents).toBe(500);
    expect(policy.batch.maxBytes).toBe(1_000_000);
    expect(warnings).toHaveLength(2);
  });

  test('refuses destinations that break the contract, naming the member', () => {
    expect(() => createEgress({ destinations: [{ ...destination, deliver: undefined } as never] })).toThrowError(/\[events\]: "deliver" must be a function/);
    expect(() => createEgress({ destinations: [{ ...destination, specificationVersion: 'v0' } as never] })).toThrowError(/specificationVersion "v0" is not supported/);
    expect(() => createEgress({ destinations: [destination, destination] })).toThrowError(/two destinations are named "events"/);
    expect(() => createEgress({ destinations: [] })).toThrowError(/at least one destination/);
  });
});
