import { afterEach, describe, expect, test } from 'vitest';
import { z } from 'zod';
import { createEgress, defineDestination, EgressValidationError, memoryStore, silentLogger, type Batch } from '../src/index.js';
import { trackEngines } from './helpers.js';

const track = trackEngines(afterEach);

/** A destination whose schema takes any JSON value, as sse's does; it records what it is handed. */
function anyJsonDestination(limits?: { maxDepth?: number; maxInputBytes?: number }) {
  const batches: Batch<{ payload: unknown }>[] = [];
  const destination = defineDestination({
    name: 'anything',
    input: z.strictObject({ payload: z.json() }),
    limits,
    async deliver(batch) {
      batches.push(batch);
    },
  });
  return { destination, batches };
}

function start(limits?: { maxDepth?: number; maxInputBytes?: number }) {
  const { destination, batches } = anyJsonDestination(limits);
  const egress = track(createEgress({ destinations: [destination], store: memoryStore(), logger: silentLogger }));
  return { egress, batches, send: egress.send.anything as (input: unknown) => unknown };
}

function refusal(send: () => unknown): EgressValidationError {
  try {
    send();
  } catch (error) {
    if (EgressValidationError.isInstance(error)) return error;
    throw new Error(`expected an EgressValidationError, got ${String(error)}`);
  }
  throw new Error('expected the input to be refused');
}

function nested(depth: number): unknown {
  return JSON.parse(`${'['.repeat(depth)}${']'.repeat(depth)}`);
}

describe('$send checks every input synchronously and completely', () => {
  test('an array parsed from JSON nested 1,500 deep is refused at send, naming the depth and the path', async () => {
    const { send } = start();
    const error = refusal(() => send({ payload: nested(1500) }));
    expect(error.destination).toBe('anything');
    expect(error.issues[0]!.path).toMatch(/^payload(\[0\])+$/);
    expect(error.issues[0]!.message).toContain('nested deeper than 64 levels');
  });

  test('the depth limit is the destination\'s own, with its own message', () => {
    const { send } = start({ maxDepth: 3 });
    expect(() => send({ payload: [[1]] })).not.toThrow();
    expect(refusal(() => send({ payload: [[[1]]] })).issues[0]).toEqual({ path: 'payload[0][0]', message: expect.stringContaining('deeper than 3 levels') });
  });

  test('the size limit is the destination\'s own, with its own message', () => {
    const { send } = start({ maxInputBytes: 1000 });
    expect(() => send({ payload: 'x'.repeat(900) })).not.toThrow();
    const error = refusal(() => send({ payload: ['x'.repeat(600), 'y'.repeat(600)] }));
    expect(error.issues[0]!.path).toBe('payload[1]');
    expect(error.issues[0]!.message).toContain('larger than 1000 bytes');
  });

  test('a sparse array of enormous length is stopped by the size limit, not walked to its end', () => {
    const { send } = start({ maxInputBytes: 10_000 });
    const started = performance.now();
    expect(refusal(() => send({ payload: new Array(2 ** 31) })).issues[0]!.message).toContain('larger than');
    expect(performance.now() - started).toBeLessThan(1000);
  });

  test('a getter that throws is refused with its path, and nothing rejects unhandled', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const { send } = start();
      const payload = {
        ok: 1,
        get secret(): string {
          throw new Error('no access');
        },
      };
      const error = refusal(() => send({ payload: { inner: payload } }));
      expect(error.issues[0]).toEqual({ path: 'payload.inner.secret', message: expect.stringContaining('no access') });
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  test.each([
    ['a BigInt', { n: 10n }, 'payload.n', 'bigint'],
    ['a cycle', (() => { const value: Record<string, unknown> = {}; value.self = value; return value; })(), 'payload.self', 'circular'],
    ['NaN', { list: [1, Number.NaN] }, 'payload.list[1]', 'finite number'],
    ['a function', { run: () => 1 }, 'payload.run', 'function'],
    ['a Map', { map: new Map([[1, 2]]) }, 'payload.map', 'Map'],
    ['a symbol', { s: Symbol('x') }, 'payload.s', 'symbol'],
  ])('%s is refused with its path', (_name, payload, path, message) => {
    const { send } = start();
    const error = refusal(() => send({ payload }));
    expect(error.issues[0]!.path).toBe(path);
    expect(error.issues[0]!.message).toContain(message);
  });

  test('a revoked Proxy is refused with its path, typed', () => {
    const { send } = start();
    const { proxy, revoke } = Proxy.revocable({}, {});
    revoke();
    expect(refusal(() => send({ payload: { inner: proxy } })).issues[0]!.path).toBe('payload.inner');
  });

  test('what is validated is what is queued: a Proxy whose answers change is read once', async () => {
    const { egress, send, batches } = start();
    let reads = 0;
    const payload = new Proxy({} as Record<string, unknown>, {
      ownKeys: () => (reads++ === 0 ? ['fine'] : ['fine', 'sneaked']),
      getOwnPropertyDescriptor: () => ({ value: 1, enumerable: true, configurable: true }),
      get: (_target, key) => (key === 'toJSON' ? undefined : reads > 1 ? 'changed' : 1),
    });
    send({ payload });
    await egress.flush();
    expect(batches[0]!.events[0]!.payload).toEqual({ payload: { fine: 1 } });
  });

  test('a Date is queued as the JSON text JSON.stringify gives it, and read back equal', async () => {
    const { egress, send, batches } = start();
    send({ payload: { at: new Date(0) } });
    await egress.flush();
    expect(batches[0]!.events[0]!.payload).toEqual({ payload: { at: '1970-01-01T00:00:00.000Z' } });
  });

  test('boxed primitives are queued as the primitive they hold, a boxed BigInt is refused', async () => {
    const { egress, send, batches } = start();
    send({ payload: { s: new String('x'), n: new Number(2), b: new Boolean(false) } });
    await egress.flush();
    expect(batches[0]!.events[0]!.payload).toEqual({ payload: { s: 'x', n: 2, b: false } });
    expect(refusal(() => send({ payload: { big: Object(10n) } })).issues[0]!.path).toBe('payload.big');
  });

  test('an own "__proto__" key from JSON.parse stays data and does not reach the prototype', async () => {
    const { egress, send, batches } = start();
    send({ payload: JSON.parse('{"__proto__":{"polluted":true},"n":1}') });
    await egress.flush();
    const queued = batches[0]!.events[0]!.payload.payload as Record<string, unknown>;
    expect(Object.getPrototypeOf(queued)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(queued.n).toBe(1);
  });

  test('a schema that validates asynchronously is a configuration error, and its promise never rejects unhandled', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const destination = defineDestination({
        name: 'later',
        input: { '~standard': { version: 1, vendor: 'test', validate: () => Promise.reject(new Error('async')) } },
        async deliver() {},
      });
      const egress = track(createEgress({ destinations: [destination], logger: silentLogger }));
      expect(() => (egress.send.later as (input: unknown) => unknown)({})).toThrow(/validates asynchronously/);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  test('a schema that throws gives a typed refusal naming the destination', () => {
    const destination = defineDestination({
      name: 'fragile',
      input: {
        '~standard': {
          version: 1,
          vendor: 'test',
          validate: () => {
            throw new RangeError('boom');
          },
        },
      },
      async deliver() {},
    });
    const egress = track(createEgress({ destinations: [destination], logger: silentLogger }));
    const error = refusal(() => (egress.send.fragile as (input: unknown) => unknown)({}));
    expect(error.destination).toBe('fragile');
    expect(error.message).toContain('boom');
  });
});
