import type { ResolvedAdaptiveConcurrency } from './adaptive-concurrency.js';
import { resolveConcurrency } from './concurrency-policy.js';
import { resolveDeadLetterRouting, type ResolvedDeadLetterRouting } from './dead-letter-routing.js';
import type { AnyDestination } from './destination.js';
import { EgressConfigurationError } from './errors.js';
import type { Logger } from './logger.js';
import type { PolicyOptions } from './policy-options.js';
import { parseDuration, parseSize } from './units.js';

/** A policy with every value present, in milliseconds and bytes. */
export interface ResolvedPolicy {
  batch: { maxEvents: number; maxBytes: number; maxDelay: number; partitionBy: ((payload: unknown) => string) | undefined };
  retry: { maxAttempts: number; initialDelay: number; maxDelay: number; maxAge: number };
  /** Batches in flight at most: the fixed limit, or the ceiling of adaptive concurrency. */
  concurrency: number;
  /** Set when each partition's limit adapts to the receiver. */
  adaptiveConcurrency: ResolvedAdaptiveConcurrency | undefined;
  rateLimit: { events: number | undefined; requests: number | undefined; per: number } | undefined;
  ordering: 'fifo' | 'none';
  timeout: number;
  deadLetters: ResolvedDeadLetterRouting | undefined;
}

/**
 * Used where neither the adapter nor the user says otherwise: one event per batch, sent at once;
 * retries from 1 s to 5 min for up to a day (Svix-like patience, without its 10 h gaps).
 */
export const corePolicyDefaults = {
  batch: { maxEvents: 1, maxBytes: 8 * 1024 * 1024, maxDelay: 0 },
  retry: { maxAttempts: 10, initialDelay: 1000, maxDelay: 300_000, maxAge: 86_400_000 },
  concurrency: 16,
  ordering: 'none',
  timeout: 30_000,
} as const;

const allowedKeys: Record<string, readonly string[]> = {
  '': ['batch', 'retry', 'concurrency', 'rateLimit', 'ordering', 'timeout', 'deadLetters'],
  batch: ['maxEvents', 'maxBytes', 'maxDelay', 'partitionBy'],
  retry: ['maxAttempts', 'initialDelay', 'maxDelay', 'maxAge'],
  rateLimit: ['events', 'requests', 'per'],
};

/**
 * Merges core defaults, the adapter's defaults and the user's policy, checks every value and clamps
 * what exceeds the adapter's hard limits (with a warning, as a mistake in a limit should not stop
 * the application from starting).
 */
export function resolvePolicy(destination: AnyDestination, user: unknown, path: string, logger: Logger): ResolvedPolicy {
  checkShape(destination.defaults, `[${destination.name}] defaults`);
  checkShape(user, path);
  const adapter = destination.defaults ?? {};
  if (adapter.deadLetters !== undefined) {
    throw new EgressConfigurationError('an adapter cannot route dead letters: it does not know the other destinations; set deadLetters in the policy', `[${destination.name}] defaults.deadLetters`);
  }
  const given = (user ?? {}) as PolicyOptions;
  const pick = <K extends string>(section: 'batch' | 'retry' | 'rateLimit', key: K): { value: unknown; at: string } => {
    const fromUser = (given[section] as Record<string, unknown> | undefined)?.[key];
    if (fromUser !== undefined) return { value: fromUser, at: `${path}.${section}.${key}` };
    return { value: (adapter[section] as Record<string, unknown> | undefined)?.[key], at: `[${destination.name}] defaults.${section}.${key}` };
  };
  const top = (key: 'concurrency' | 'ordering' | 'timeout'): { value: unknown; at: string } =>
    given[key] !== undefined ? { value: given[key], at: `${path}.${key}` } : { value: adapter[key], at: `[${destination.name}] defaults.${key}` };

  const limits = destination.limits ?? {};
  let maxEvents = count(pick('batch', 'maxEvents'), corePolicyDefaults.batch.maxEvents);
  if (limits.maxEvents !== undefined && maxEvents > limits.maxEvents) {
    logger.warn({ destination: destination.name, requested: maxEvents, limit: limits.maxEvents }, `${path}.batch.maxEvents is above what ${destination.name} accepts; clamped to ${limits.maxEvents}`);
    maxEvents = limits.maxEvents;
  }
  let maxBytes = quantity(pick('batch', 'maxBytes'), parseSize, limits.maxBytes ?? corePolicyDefaults.batch.maxBytes);
  if (limits.maxBytes !== undefined && maxBytes > limits.maxBytes) {
    logger.warn({ destination: destination.name, requested: maxBytes, limit: limits.maxBytes }, `${path}.batch.maxBytes is above what ${destination.name} accepts; clamped to ${limits.maxBytes}`);
    maxBytes = limits.maxBytes;
  }
  if (maxBytes < 1) throw new EgressConfigurationError('expected at least 1 byte', `${path}.batch.maxBytes`);

  const retry = {
    maxAttempts: count(pick('retry', 'maxAttempts'), corePolicyDefaults.retry.maxAttempts),
    initialDelay: quantity(pick('retry', 'initialDelay'), parseDuration, corePolicyDefaults.retry.initialDelay),
    maxDelay: quantity(pick('retry', 'maxDelay'), parseDuration, corePolicyDefaults.retry.maxDelay),
    maxAge: quantity(pick('retry', 'maxAge'), parseDuration, corePolicyDefaults.retry.maxAge),
  };
  if (retry.maxDelay < retry.initialDelay) {
    logger.warn({ destination: destination.name, initialDelay: retry.initialDelay, maxDelay: retry.maxDelay }, `${path}.retry.maxDelay is below initialDelay; raised to ${retry.initialDelay}`);
    retry.maxDelay = retry.initialDelay;
  }

  const rateEvents = pick('rateLimit', 'events');
  const rateRequests = pick('rateLimit', 'requests');
  const ratePer = pick('rateLimit', 'per');
  const rateLimit =
    rateEvents.value === undefined && rateRequests.value === undefined
      ? undefined
      : {
          events: rateEvents.value === undefined ? undefined : count(rateEvents, 1),
          requests: rateRequests.value === undefined ? undefined : count(rateRequests, 1),
          per: quantity(ratePer, parseDuration, 1000) || 1000,
        };
  if (ratePer.value !== undefined && rateLimit === undefined) {
    throw new EgressConfigurationError('"per" needs "events" or "requests" beside it', ratePer.at);
  }
  if (rateLimit?.events !== undefined && rateLimit.events < maxEvents) {
    logger.warn({ destination: destination.name }, `${path}.batch.maxEvents is above rateLimit.events; clamped to ${rateLimit.events}`);
    maxEvents = rateLimit.events;
  }

  const ordering = top('ordering');
  if (ordering.value !== undefined && ordering.value !== 'fifo' && ordering.value !== 'none') {
    throw new EgressConfigurationError(`expected 'fifo' or 'none', got ${JSON.stringify(ordering.value)}`, ordering.at);
  }

  const concurrency = top('concurrency');
  const { concurrency: maxInFlight, adaptive } = resolveConcurrency(concurrency.value, concurrency.at, corePolicyDefaults.concurrency);

  return {
    batch: {
      maxEvents,
      maxBytes,
      maxDelay: quantity(pick('batch', 'maxDelay'), parseDuration, corePolicyDefaults.batch.maxDelay),
      partitionBy: partitioner(pick('batch', 'partitionBy')),
    },
    retry,
    concurrency: maxInFlight,
    adaptiveConcurrency: adaptive,
    rateLimit,
    ordering: (ordering.value as 'fifo' | 'none' | undefined) ?? corePolicyDefaults.ordering,
    timeout: quantity(top('timeout'), parseDuration, corePolicyDefaults.timeout) || corePolicyDefaults.timeout,
    // Only the user routes dead letters: an adapter cannot know the other destinations.
    deadLetters: resolveDeadLetterRouting(given.deadLetters, `${path}.deadLetters`),
  };
}

function checkShape(value: unknown, path: string): void {
  if (value === undefined) return;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new EgressConfigurationError(`expected an object, got ${JSON.stringify(value)}`, path);
  }
  for (const [key, allowed] of Object.entries(allowedKeys)) {
    const section = key === '' ? value : (value as Record<string, unknown>)[key];
    const at = key === '' ? path : `${path}.${key}`;
    if (section === undefined) continue;
    if (typeof section !== 'object' || section === null || Array.isArray(section)) {
      throw new EgressConfigurationError(`expected an object, got ${JSON.stringify(section)}`, at);
    }
    for (const name of Object.keys(section)) {
      if (!allowed.includes(name)) {
        throw new EgressConfigurationError(`unknown key "${name}" (expected one of ${allowed.join(', ')})`, `${at}.${name}`);
      }
    }
  }
}

function count({ value, at }: { value: unknown; at: string }, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new EgressConfigurationError(`expected a positive integer, got ${JSON.stringify(value)}`, at);
  }
  return value;
}

function quantity({ value, at }: { value: unknown; at: string }, parse: (value: unknown) => number | { error: string }, fallback: number): number {
  if (value === undefined) return fallback;
  const parsed = parse(value);
  if (typeof parsed !== 'number') throw new EgressConfigurationError(parsed.error, at);
  return parsed;
}

function partitioner({ value, at }: { value: unknown; at: string }): ((payload: unknown) => string) | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'function') return value as (payload: unknown) => string;
  const paths = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(paths) || paths.length === 0 || !paths.every((entry) => typeof entry === 'string' && entry.length > 0)) {
    throw new EgressConfigurationError(`expected a field path, a list of field paths or a function, got ${JSON.stringify(value)}`, at);
  }
  const segments = (paths as string[]).map((entry) => entry.split('.'));
  return (payload) => segments.map((parts) => String(readPath(payload, parts) ?? '')).join('/');
}

function readPath(value: unknown, parts: readonly string[]): unknown {
  let current = value;
  for (const part of parts) {
    if (typeof current !== 'object' || current === null) return undefined;
    current = (current as Record<string, unknown>)[part];
  }
  return current;
}
