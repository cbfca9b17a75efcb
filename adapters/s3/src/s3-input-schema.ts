import type { StandardSchemaV1 } from '@standard-schema/spec';
import { bucketNameProblem } from './bucket-name.js';

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
 * The objects and arrays the walk is inside of, to tell a circular reference from a shared one.
 * Kept between calls (emptied at the start of each) so a walk allocates nothing; nesting is
 * shallow in practice, so a linear search costs less than a set.
 */
const ancestors: object[] = [];

/** As deep as core's default `maxDepth` allows below the input's own object. */
const maxPayloadDepth = 63;

/**
 * Finds the first value JSON cannot carry faithfully. A hand-written walk rather than a zod union
 * per node, because it runs for every `$send` and a recursive union costs microseconds per field.
 */
function findNonJsonValue(value: unknown, depth = 0): NonJsonValue | undefined {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return undefined;
    case 'number':
      return Number.isFinite(value) ? undefined : { path: [], message: `expected a finite number, got ${value}` };
    case 'object': {
      if (value === null) return undefined;
      if (ancestors.includes(value)) return { path: [], message: 'circular reference' };
      // Core refuses deeper input before the schema runs; this keeps the schema safe on its own.
      if (depth >= maxPayloadDepth) return { path: [], message: `nested deeper than ${maxPayloadDepth} levels of objects and arrays` };
      if (Array.isArray(value)) {
        ancestors.push(value);
        for (let index = 0; index < value.length; index++) {
          const found = findNonJsonValue(value[index], depth + 1);
          if (found) {
            found.path.unshift(index);
            return found;
          }
        }
        ancestors.pop();
        return undefined;
      }
      const prototype = Object.getPrototypeOf(value) as unknown;
      if (prototype !== Object.prototype && prototype !== null) {
        const kind = (value as object).constructor?.name ?? 'object';
        const hint = value instanceof Date ? ' (convert it with toISOString())' : '';
        return { path: [], message: `expected a JSON value, got a ${kind}${hint}` };
      }
      ancestors.push(value);
      for (const key in value) {
        const entry = (value as Record<string, unknown>)[key];
        // Like JSON.stringify, an undefined property is left out rather than refused.
        if (entry === undefined) continue;
        const found = findNonJsonValue(entry, depth + 1);
        if (found) {
          found.path.unshift(key);
          return found;
        }
      }
      ancestors.pop();
      return undefined;
    }
    default:
      return { path: [], message: `expected a JSON value, got ${typeof value}` };
  }
}

const inputKeys = new Set(['bucket', 'prefix', 'payload']);

/**
 * Checks `$send.s3` input; unknown keys are refused so that a misspelt field is not silently lost.
 * A Standard Schema written out by hand rather than composed with zod, because it runs for every
 * event and zod's object, string checks and refinement cost more than the rest of `$send` together.
 * The value it returns is a new object with its keys in the order the queued JSON is read in
 * (`splitQueuedJson`), whatever order the caller wrote them in.
 */
export const s3InputSchema: StandardSchemaV1<S3Input, S3Input> = {
  '~standard': {
    version: 1,
    vendor: '@egress/s3',
    validate(input: unknown): StandardSchemaV1.Result<S3Input> {
      if (typeof input !== 'object' || input === null || Array.isArray(input)) {
        return { issues: [{ message: `expected { bucket, prefix, payload }, got ${describe(input)}` }] };
      }
      const { bucket, prefix, payload } = input as Record<string, unknown>;
      const issues: StandardSchemaV1.Issue[] = [];
      const bucketProblem = typeof bucket === 'string' ? bucketNameProblem(bucket) : `expected the bucket name as a string, got ${describe(bucket)}`;
      if (bucketProblem) issues.push({ message: bucketProblem, path: ['bucket'] });
      if (typeof prefix !== 'string') issues.push({ message: `expected the prefix as a string, got ${describe(prefix)}`, path: ['prefix'] });
      else if (prefix.length > 900) issues.push({ message: 'expected a prefix of at most 900 characters (an S3 key holds at most 1024 bytes)', path: ['prefix'] });
      const payloadIssue = checkPayload(payload);
      if (payloadIssue) issues.push(payloadIssue);
      for (const key in input) {
        if (!inputKeys.has(key)) issues.push({ message: `unknown field "${key}" (expected bucket, prefix and payload)`, path: [key] });
      }
      if (issues.length > 0) return { issues };
      return { value: { bucket: bucket as string, prefix: prefix as string, payload: payload as S3Payload } };
    },
  },
};

function checkPayload(value: unknown): StandardSchemaV1.Issue | undefined {
  if (typeof value === 'string') return undefined;
  if (typeof value !== 'object' || value === null) {
    return { message: `expected a string, an object or an array, got ${value === null ? 'null' : typeof value}`, path: ['payload'] };
  }
  // A walk that found a problem returned without leaving the objects it was inside of.
  ancestors.length = 0;
  let found: NonJsonValue | undefined;
  try {
    found = findNonJsonValue(value);
  } catch (error) {
    // A getter or a Proxy trap threw (core's snapshot runs those before the schema; a direct caller may not).
    return { message: `reading the payload threw: ${error instanceof Error ? error.message : String(error)}`, path: ['payload'] };
  }
  return found ? { message: found.message, path: ['payload', ...found.path] } : undefined;
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value;
}
