import { EgressConfigurationError } from './errors.js';
import type { CircuitPolicyOptions } from './policy-options.js';
import { parseDuration } from './units.js';

/** A circuit policy with every value present, in milliseconds. */
export interface ResolvedCircuitPolicy {
  failures: number;
  failureRatio: number | undefined;
  window: number;
  probeInterval: number;
  disableAfter: { time: number } | { failures: number } | undefined;
}

export const circuitDefaults = { failures: 5, window: 60_000, probeInterval: 30_000 } as const;

const circuitKeys = ['failures', 'failureRatio', 'window', 'probeInterval', 'disableAfter'];

/** Checks a `circuit` policy (`at` names where it was given) and fills in the defaults; undefined when circuit breaking is off. */
export function resolveCircuit(value: unknown, at: string): ResolvedCircuitPolicy | undefined {
  if (value === undefined || value === false) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new EgressConfigurationError(`expected an object or false, got ${JSON.stringify(value)}`, at);
  }
  for (const key of Object.keys(value)) {
    if (!circuitKeys.includes(key)) throw new EgressConfigurationError(`unknown key "${key}" (expected one of ${circuitKeys.join(', ')})`, `${at}.${key}`);
  }
  const given = value as CircuitPolicyOptions;
  const failures = positiveInteger(given.failures, `${at}.failures`) ?? circuitDefaults.failures;
  const ratio = given.failureRatio;
  if (ratio !== undefined && !(typeof ratio === 'number' && ratio > 0 && ratio <= 1)) {
    throw new EgressConfigurationError(`expected a number above 0 and at most 1, got ${JSON.stringify(ratio)}`, `${at}.failureRatio`);
  }
  let disableAfter: ResolvedCircuitPolicy['disableAfter'];
  if (typeof given.disableAfter === 'object' && given.disableAfter !== null) {
    const keys = Object.keys(given.disableAfter);
    if (keys.length !== 1 || keys[0] !== 'failures') {
      throw new EgressConfigurationError(`expected a duration or { failures: <count> }, got ${JSON.stringify(given.disableAfter)}`, `${at}.disableAfter`);
    }
    disableAfter = { failures: positiveInteger(given.disableAfter.failures, `${at}.disableAfter.failures`)! };
  } else if (given.disableAfter !== undefined) {
    disableAfter = { time: duration(given.disableAfter, `${at}.disableAfter`, 1) };
  }
  return {
    failures,
    failureRatio: ratio,
    window: given.window === undefined ? circuitDefaults.window : duration(given.window, `${at}.window`, 1),
    probeInterval: given.probeInterval === undefined ? circuitDefaults.probeInterval : duration(given.probeInterval, `${at}.probeInterval`, 1),
    disableAfter,
  };
}

function positiveInteger(value: unknown, at: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new EgressConfigurationError(`expected a positive integer, got ${JSON.stringify(value)}`, at);
  }
  return value;
}

function duration(value: unknown, at: string, least: number): number {
  const parsed = parseDuration(value);
  if (typeof parsed !== 'number') throw new EgressConfigurationError(parsed.error, at);
  if (parsed < least) throw new EgressConfigurationError(`expected at least ${least} ms, got ${JSON.stringify(value)}`, at);
  return parsed;
}
