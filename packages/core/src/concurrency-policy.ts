import type { ResolvedAdaptiveConcurrency } from './adaptive-concurrency.js';
import { EgressConfigurationError } from './errors.js';

/** Used for what an adaptive `concurrency` does not say; the smoothing values are Vector's defaults. */
export const adaptiveConcurrencyDefaults = { initial: 1, max: 64, decrease: 0.9, rttSmoothing: 0.4, rttDeviationScale: 2.5 } as const;

const adaptiveKeys = Object.keys(adaptiveConcurrencyDefaults);

/**
 * A policy's `concurrency`: a fixed number, or adaptive limits under a ceiling. The lane keeps
 * `concurrency` as the number of batches in flight at most either way (the ceiling when adaptive).
 */
export function resolveConcurrency(value: unknown, at: string, fixedDefault: number): { concurrency: number; adaptive: ResolvedAdaptiveConcurrency | undefined } {
  if (value === undefined) return { concurrency: fixedDefault, adaptive: undefined };
  if (typeof value === 'number' && Number.isInteger(value) && value >= 1) return { concurrency: value, adaptive: undefined };
  if (value === 'adaptive') return { concurrency: adaptiveConcurrencyDefaults.max, adaptive: { ...adaptiveConcurrencyDefaults } };
  const wrong = () => new EgressConfigurationError(`expected a positive integer, 'adaptive' or { adaptive: { initial, max, decrease, rttSmoothing, rttDeviationScale } }, got ${JSON.stringify(value)}`, at);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw wrong();
  const extra = Object.keys(value).filter((key) => key !== 'adaptive');
  if (extra.length > 0) throw new EgressConfigurationError(`unknown key "${extra[0]}" (expected adaptive)`, `${at}.${extra[0]}`);
  const given = (value as { adaptive?: unknown }).adaptive;
  if (typeof given !== 'object' || given === null || Array.isArray(given)) throw wrong();
  for (const key of Object.keys(given)) {
    if (!adaptiveKeys.includes(key)) throw new EgressConfigurationError(`unknown key "${key}" (expected one of ${adaptiveKeys.join(', ')})`, `${at}.adaptive.${key}`);
  }
  const options = given as Record<string, unknown>;
  const integer = (key: 'initial' | 'max'): number => {
    const entry = options[key];
    if (entry === undefined) return adaptiveConcurrencyDefaults[key];
    if (typeof entry !== 'number' || !Number.isInteger(entry) || entry < 1) throw new EgressConfigurationError(`expected a positive integer, got ${JSON.stringify(entry)}`, `${at}.adaptive.${key}`);
    return entry;
  };
  const fraction = (key: 'decrease' | 'rttSmoothing', includesOne: boolean): number => {
    const entry = options[key];
    if (entry === undefined) return adaptiveConcurrencyDefaults[key];
    if (typeof entry !== 'number' || !(entry > 0) || !(includesOne ? entry <= 1 : entry < 1)) {
      throw new EgressConfigurationError(`expected a number above 0 and ${includesOne ? 'at most' : 'below'} 1, got ${JSON.stringify(entry)}`, `${at}.adaptive.${key}`);
    }
    return entry;
  };
  const scale = options.rttDeviationScale ?? adaptiveConcurrencyDefaults.rttDeviationScale;
  if (typeof scale !== 'number' || !Number.isFinite(scale) || scale < 0) {
    throw new EgressConfigurationError(`expected a number of at least 0, got ${JSON.stringify(scale)}`, `${at}.adaptive.rttDeviationScale`);
  }
  const max = integer('max');
  const initial = integer('initial');
  if (initial > max) throw new EgressConfigurationError(`initial (${initial}) is above max (${max})`, `${at}.adaptive.initial`);
  return {
    concurrency: max,
    adaptive: { initial, max, decrease: fraction('decrease', false), rttSmoothing: fraction('rttSmoothing', true), rttDeviationScale: scale },
  };
}
