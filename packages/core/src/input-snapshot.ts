import type { AnyDestination } from './destination.js';
import type { ValidationIssue } from './errors.js';
import { formatPath } from './validation.js';

/** Deepest nesting of objects and arrays a `$send` input may have when its destination declares none. */
export const defaultMaxDepth = 64;

/** Largest `$send` input, in bytes of JSON, when its destination declares no limit. */
export const defaultMaxInputBytes = 16 * 1024 * 1024;

/** How deep and how large one `$send` input may be. */
export interface InputLimits {
  readonly maxDepth: number;
  readonly maxInputBytes: number;
}

const limitsByDestination = new WeakMap<AnyDestination, InputLimits>();

/** The input limits a destination declares, with core's defaults where it declares none. */
export function inputLimitsOf(destination: AnyDestination): InputLimits {
  let limits = limitsByDestination.get(destination);
  if (limits === undefined) {
    limits = { maxDepth: destination.limits?.maxDepth ?? defaultMaxDepth, maxInputBytes: destination.limits?.maxInputBytes ?? defaultMaxInputBytes };
    limitsByDestination.set(destination, limits);
  }
  return limits;
}

/**
 * A problem found while taking the snapshot. The path is filled in on the way back up, so values
 * that pass cost no path bookkeeping.
 */
class SnapshotProblem {
  readonly path: (string | number)[] = [];

  constructor(readonly message: string) {}
}

interface Walk {
  readonly limits: InputLimits;
  /** The objects and arrays the walk is inside of, to tell a cycle from a shared value. */
  readonly ancestors: object[];
  /** Bytes of JSON counted so far; a lower bound of what the input encodes to. */
  bytes: number;
}

/**
 * Takes the one copy of a `$send` input that is validated and then queued: plain objects, arrays,
 * strings, finite numbers, booleans, null and bytes (`Uint8Array`), as JSON will carry them. Every
 * getter, `toJSON` and Proxy trap runs exactly once, here, so nothing the caller's objects do
 * afterwards can make the queued event differ from the one that was checked. Values JSON would
 * drop or change without a word (a BigInt, a function, NaN, a Map) are refused, as are cycles,
 * nesting deeper than `maxDepth` and inputs larger than `maxInputBytes`. Synchronous, one walk, and
 * never deeper than `maxDepth` frames, so no input can overflow the stack.
 */
export function snapshotInput(input: unknown, limits: InputLimits): { value: unknown } | { issue: ValidationIssue } {
  const walk: Walk = { limits, ancestors: [], bytes: 0 };
  try {
    return { value: copyValue(input, walk, 0) };
  } catch (error) {
    if (error instanceof SnapshotProblem) return { issue: { path: formatPath(error.path), message: error.message } };
    // A throw outside any container (a getter on a boxed root, say) has no path to name.
    return { issue: { path: '', message: `the input cannot be read: ${describeThrown(error)}` } };
  }
}

function copyValue(value: unknown, walk: Walk, depth: number): unknown {
  switch (typeof value) {
    case 'string':
      count(walk, value.length + 2);
      return value;
    case 'number':
      if (!Number.isFinite(value)) throw new SnapshotProblem(`expected a finite number, got ${value} (JSON has no such number)`);
      count(walk, 8);
      return value;
    case 'boolean':
      count(walk, 5);
      return value;
    case 'undefined':
      return undefined;
    case 'bigint':
      throw new SnapshotProblem('a bigint cannot be carried as JSON: convert it to a string or a number');
    case 'function':
      throw new SnapshotProblem('a function cannot be carried as JSON');
    case 'symbol':
      throw new SnapshotProblem('a symbol cannot be carried as JSON');
    default:
      break;
  }
  if (value === null) {
    count(walk, 4);
    return null;
  }
  return copyObject(value as object, walk, depth, true);
}

function copyObject(value: object, walk: Walk, depth: number, callsToJson: boolean): unknown {
  if (value instanceof Uint8Array) {
    // Written as base64 by the payload codec: four characters for every three bytes.
    count(walk, Math.ceil(value.byteLength / 3) * 4 + 20);
    return new Uint8Array(value);
  }
  // As JSON.stringify does: a Date (or anything with toJSON) is queued as what toJSON returns,
  // and toJSON runs once per value, not again on what it returned.
  const toJson = callsToJson ? (value as { toJSON?: unknown }).toJSON : undefined;
  if (typeof toJson === 'function') {
    const replaced: unknown = toJson.call(value, '');
    return typeof replaced === 'object' && replaced !== null ? copyObject(replaced, walk, depth, false) : copyValue(replaced, walk, depth);
  }
  if (depth >= walk.limits.maxDepth) {
    throw new SnapshotProblem(`nested deeper than ${walk.limits.maxDepth} levels of objects and arrays, the most this destination accepts`);
  }
  if (walk.ancestors.includes(value)) throw new SnapshotProblem('circular reference: the value contains itself');
  if (Array.isArray(value)) return copyArray(value, walk, depth);
  // `new String('x')` and its kind are written as the primitive they hold, as JSON.stringify does.
  if (value instanceof String || value instanceof Number || value instanceof Boolean || (typeof BigInt === 'function' && value instanceof BigInt)) {
    return copyValue(value.valueOf(), walk, depth);
  }
  const refusal = unsupportedObject(value);
  if (refusal) throw new SnapshotProblem(refusal);
  walk.ancestors.push(value);
  const copy: Record<string, unknown> = {};
  let key: string | undefined;
  try {
    count(walk, 2);
    for (key of Object.keys(value)) {
      const entry = copyValue((value as Record<string, unknown>)[key], walk, depth + 1);
      // Like JSON.stringify, an undefined property is left out rather than refused.
      if (entry === undefined) continue;
      count(walk, key.length + 4);
      // `__proto__` from JSON.parse is an own key; assigning it would set the copy's prototype.
      if (key === '__proto__') Object.defineProperty(copy, key, { value: entry, enumerable: true, writable: true, configurable: true });
      else copy[key] = entry;
    }
  } catch (error) {
    throw at(error, key);
  }
  walk.ancestors.pop();
  return copy;
}

function copyArray(value: readonly unknown[], walk: Walk, depth: number): unknown[] {
  walk.ancestors.push(value);
  const length = value.length;
  const copy: unknown[] = [];
  let index = 0;
  try {
    count(walk, 2);
    for (; index < length; index++) {
      const entry = copyValue(value[index], walk, depth + 1);
      // JSON writes a hole or an undefined element as null.
      copy.push(entry === undefined ? null : entry);
      count(walk, 1);
    }
  } catch (error) {
    throw at(error, index);
  }
  walk.ancestors.pop();
  return copy;
}

/** Objects JSON.stringify would turn into `{}` or something else unrecognisable, without a word. */
function unsupportedObject(value: object): string | undefined {
  if (value instanceof Map || value instanceof Set || value instanceof WeakMap || value instanceof WeakSet) {
    return `a ${value.constructor.name} cannot be carried as JSON: convert it to an object or an array`;
  }
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) {
    return 'binary data other than a Uint8Array (or Buffer) cannot be carried: pass a Uint8Array';
  }
  if (value instanceof Promise) return 'a Promise cannot be carried as JSON: await it first';
  if (value instanceof RegExp || value instanceof Error) return `a ${value instanceof Error ? 'Error' : 'RegExp'} cannot be carried as JSON: convert it to a string`;
  return undefined;
}

function count(walk: Walk, bytes: number): void {
  walk.bytes += bytes;
  if (walk.bytes > walk.limits.maxInputBytes) {
    throw new SnapshotProblem(`the input is larger than ${walk.limits.maxInputBytes} bytes as JSON, the most this destination accepts in one $send`);
  }
}

/** The problem, or the caller's own throw (a getter, a Proxy trap), placed at `key`. */
function at(error: unknown, key: string | number | undefined): SnapshotProblem {
  const problem = error instanceof SnapshotProblem ? error : new SnapshotProblem(`reading this value threw: ${describeThrown(error)}`);
  if (key !== undefined) problem.path.unshift(key);
  return problem;
}

function describeThrown(error: unknown): string {
  try {
    if (error instanceof Error) return error.message || error.name;
    return typeof error === 'string' ? error : String(error);
  } catch {
    return 'an unprintable value';
  }
}

/**
 * Why a schema's output could not be encoded (a schema that transforms into a BigInt, say), with
 * the path found by walking the output; only called once encoding has failed.
 */
export function unencodableIssue(payload: unknown, limits: InputLimits, error: unknown): ValidationIssue {
  const found = snapshotInput(payload, limits);
  if ('issue' in found) return { path: found.issue.path, message: `the input schema's output: ${found.issue.message}` };
  return { path: '', message: `the input schema's output cannot be encoded: ${describeThrown(error)}` };
}
