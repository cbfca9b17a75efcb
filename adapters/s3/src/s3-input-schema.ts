import { z } from 'zod';

/** Any value JSON can carry. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** What one event becomes in the object: a string (written as a JSON string), an object or an array. */
export type S3Payload = string | JsonValue[] | { [key: string]: JsonValue };

/** `$send.s3(...)` input, as Pipedream's destination takes it. */
export interface S3Input {
  /** Bucket the object is written to. */
  bucket: string;
  /** Key prefix, e.g. `events/` or `events`; `''` writes at the root of the bucket. */
  prefix: string;
  /** The event: a string, an object or an array of JSON values. */
  payload: S3Payload;
}

interface NonJsonValue {
  /** Filled in on the way back up, so the walk allocates nothing for values that pass. */
  path: (string | number)[];
  message: string;
}

/**
 * Finds the first value JSON cannot carry faithfully. A hand-written walk rather than a zod union
 * per node, because it runs for every `$send` and a recursive union costs microseconds per field.
 */
function findNonJsonValue(value: unknown, seen: Set<object>): NonJsonValue | undefined {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return undefined;
    case 'number':
      return Number.isFinite(value) ? undefined : { path: [], message: `expected a finite number, got ${value}` };
    case 'object': {
      if (value === null) return undefined;
      if (seen.has(value)) return { path: [], message: 'circular reference' };
      if (Array.isArray(value)) {
        seen.add(value);
        for (let index = 0; index < value.length; index++) {
          const found = findNonJsonValue(value[index], seen);
          if (found) {
            found.path.unshift(index);
            return found;
          }
        }
        seen.delete(value);
        return undefined;
      }
      const prototype = Object.getPrototypeOf(value) as unknown;
      if (prototype !== Object.prototype && prototype !== null) {
        const kind = (value as object).constructor?.name ?? 'object';
        const hint = value instanceof Date ? ' (convert it with toISOString())' : '';
        return { path: [], message: `expected a JSON value, got a ${kind}${hint}` };
      }
      seen.add(value);
      for (const key in value) {
        const entry = (value as Record<string, unknown>)[key];
        // Like JSON.stringify, an undefined property is left out rather than refused.
        if (entry === undefined) continue;
        const found = findNonJsonValue(entry, seen);
        if (found) {
          found.path.unshift(key);
          return found;
        }
      }
      seen.delete(value);
      return undefined;
    }
    default:
      return { path: [], message: `expected a JSON value, got ${typeof value}` };
  }
}

const payloadSchema = z.unknown().superRefine((value, context) => {
  if (typeof value === 'string') return;
  if (typeof value !== 'object' || value === null) {
    context.addIssue({ code: 'custom', message: `expected a string, an object or an array, got ${value === null ? 'null' : typeof value}` });
    return;
  }
  const found = findNonJsonValue(value, new Set());
  if (found) context.addIssue({ code: 'custom', message: found.message, path: found.path });
}) as unknown as z.ZodType<S3Payload, S3Payload>;

/** Checks `$send.s3` input; unknown keys are refused so that a misspelt field is not silently lost. */
export const s3InputSchema = z.strictObject({
  bucket: z
    .string()
    .min(3, 'expected a bucket name of 3 to 255 characters')
    .max(255, 'expected a bucket name of 3 to 255 characters')
    .refine((bucket) => !bucket.includes('/'), 'a bucket name cannot contain "/" (put the path in "prefix")'),
  prefix: z.string().max(900, 'expected a prefix of at most 900 characters (an S3 key holds at most 1024 bytes)'),
  payload: payloadSchema,
});
