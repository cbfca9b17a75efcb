import fc from 'fast-check';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createEgress, decodePayload, EgressValidationError, memoryStore, silentLogger, type AnyDestination, type QueuedEvent } from '../src/index.js';
import { snapshotInput } from '../src/input-snapshot.js';

/**
 * Property-based checks of one destination's `$send` input, shared by every adapter's fuzz suite:
 * whatever the caller passes, `send` answers synchronously, either accepting (and then what was
 * queued, read back, passes the destination's own schema again) or refusing with an
 * `EgressValidationError` that names the destination and the field; nothing throws anything else,
 * nothing rejects unhandled, nothing hangs. Bounded runs keep CI fast.
 */
export function fuzzDestinationInput(options: {
  /** Builds the destination; it is registered with a memory store in a producer-only engine. */
  destination: () => AnyDestination;
  /** Inputs the destination should mostly accept, as records of its fields. */
  valid: fc.Arbitrary<Record<string, unknown>>;
  /** Runs per property (default 300). */
  numRuns?: number;
}): void {
  const numRuns = options.numRuns ?? 300;
  const unhandled: unknown[] = [];
  const tripwire = (reason: unknown) => unhandled.push(reason);
  let queued: QueuedEvent[] = [];
  let destination: AnyDestination;
  let send: (input: unknown) => unknown;
  let close: () => Promise<void>;

  beforeAll(() => {
    process.on('unhandledRejection', tripwire);
    destination = options.destination();
    const store = memoryStore({ maxEvents: 10_000_000 });
    const enqueue = store.enqueue.bind(store);
    store.enqueue = (events) => {
      queued.push(...events);
      return enqueue(events);
    };
    const egress = createEgress({ destinations: [destination], store, logger: silentLogger, role: 'producer' });
    send = (egress.send as unknown as Record<string, (input: unknown) => unknown>)[destination.name]!;
    close = () => egress.close({ timeout: 1000 });
  });

  afterAll(async () => {
    await close();
    // Any rejection that went unhandled during the runs has had its turn to be reported by now.
    await new Promise((resolve) => setTimeout(resolve, 50));
    process.off('unhandledRejection', tripwire);
    expect(unhandled).toEqual([]);
  });

  /** Sends one input; returns the refusal, or undefined when it was accepted. Anything else fails the property. */
  const attempt = (input: unknown): EgressValidationError | undefined => {
    const started = performance.now();
    try {
      send(input);
      return undefined;
    } catch (error) {
      expect(EgressValidationError.isInstance(error), `expected an EgressValidationError, got ${describe(error)}`).toBe(true);
      const refusal = error as EgressValidationError;
      expect(refusal.destination).toBe(destination.name);
      expect(refusal.issues.length).toBeGreaterThan(0);
      for (const issue of refusal.issues) expect(issue.message.length).toBeGreaterThan(0);
      return refusal;
    } finally {
      expect(performance.now() - started, 'a single send must answer quickly').toBeLessThan(2000);
    }
  };

  /** What was queued since the last call passes the destination's schema again, unchanged. */
  const readBack = async (): Promise<void> => {
    await new Promise((resolve) => setImmediate(resolve));
    const events = queued;
    queued = [];
    for (const event of events) {
      const payload = decodePayload(event.payload);
      const snapshot = snapshotInput(payload, { maxDepth: 1000, maxInputBytes: Number.MAX_SAFE_INTEGER });
      expect('value' in snapshot).toBe(true);
      const result = destination.input['~standard'].validate((snapshot as { value: unknown }).value);
      if (result instanceof Promise) throw new Error('the schema must validate synchronously');
      expect(result.issues, `the queued ${event.payload.slice(0, 200)} no longer validates`).toBeUndefined();
    }
  };

  test(`valid ${'$'}send inputs are accepted, and what is queued validates again when read back`, async () => {
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(options.valid, async (input) => {
        if (attempt(input) === undefined) accepted += 1;
        await readBack();
      }),
      { numRuns },
    );
    // The generator is meant to make valid inputs; a refusal of most of them means it or the schema is wrong.
    expect(accepted).toBeGreaterThan(numRuns / 2);
  });

  test('a hostile value in any field is refused, typed, naming that field, or accepted and read back intact', async () => {
    await fc.assert(
      fc.asyncProperty(options.valid, hostileValue(), fc.nat(), async (input, hostile, pick) => {
        const fields = Object.keys(input);
        const field = fields.length > 0 ? fields[pick % fields.length]! : 'payload';
        const value = hostile.make();
        const refusal = attempt({ ...input, [field]: value });
        if (refusal) expect(names(refusal, field), `${hostile.kind} in "${field}" refused without naming it: ${refusal.message}`).toBe(true);
        await readBack();
      }),
      { numRuns },
    );
  });

  test('a hostile value as the whole input, or an unknown field beside valid ones, is refused, typed', async () => {
    await fc.assert(
      fc.asyncProperty(options.valid, hostileValue(), fc.boolean(), async (input, hostile, whole) => {
        const value = hostile.make();
        const refusal = attempt(whole ? value : { ...input, unexpectedField: value });
        // Like JSON, an undefined field is left out rather than refused.
        if (!whole && value !== undefined) expect(refusal !== undefined && names(refusal, 'unexpectedField'), `unknown field not named: ${refusal?.message}`).toBe(true);
        await readBack();
      }),
      { numRuns },
    );
  });
}

/** Whether a refusal names the field, by its path or in its message. */
function names(refusal: EgressValidationError, field: string): boolean {
  return refusal.issues.some((issue) => issue.path === field || issue.path.startsWith(`${field}.`) || issue.path.startsWith(`${field}[`) || issue.message.includes(field));
}

/**
 * Values callers pass by mistake or by malice, each with a name for the failure message. Each is
 * made inside the property (`make`), so fast-check never touches a revoked Proxy or a throwing
 * getter itself when it copies or prints a value.
 */
export function hostileValue(): fc.Arbitrary<{ kind: string; make: () => unknown }> {
  const named = (kind: string, arbitrary: fc.Arbitrary<unknown>) => arbitrary.map((value) => ({ kind, make: () => value, toString: () => kind }));
  const made = (kind: string, arbitrary: fc.Arbitrary<() => unknown>) => arbitrary.map((make) => ({ kind, make, toString: () => kind }));
  return fc.oneof(
    named('anything', fc.anything({ withBigInt: true, withBoxedValues: true, withDate: true, withMap: true, withSet: true, withNullPrototype: true, withTypedArray: true, withSparseArray: true, withObjectString: true, withUnicodeString: true })),
    named('deep nesting', fc.integer({ min: 60, max: 3000 }).map((depth) => JSON.parse(`${'['.repeat(depth)}${']'.repeat(depth)}`) as unknown)),
    named('deep objects', fc.integer({ min: 60, max: 2000 }).map((depth) => JSON.parse(`${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`) as unknown)),
    made('a cycle', fc.jsonValue().map((value) => () => {
      const cyclic: Record<string, unknown> = { value };
      cyclic.self = { back: cyclic };
      return cyclic;
    })),
    made('a throwing getter', fc.string().map((message) => () => Object.defineProperty({ ok: 1 }, 'bad', { enumerable: true, get: () => { throw new Error(message); } }))),
    made('a throwing toJSON', fc.string().map((message) => () => ({ toJSON: () => { throw new Error(message); } }))),
    made('a Proxy whose keys change', fc.constant(() => shiftingProxy())),
    made('a Proxy whose traps throw', fc.constant(() => new Proxy({}, { ownKeys: () => { throw new Error('trap'); }, get: () => { throw new Error('trap'); } }))),
    made('a revoked Proxy', fc.constant(() => { const { proxy, revoke } = Proxy.revocable({}, {}); revoke(); return proxy; })),
    named('a BigInt', fc.bigInt()),
    made('a function', fc.constant(() => () => 1)),
    named('a symbol', fc.constant(Symbol('x'))),
    named('a non-finite number', fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY)),
    named('a string with line breaks and controls', fc.string({ unit: fc.constantFrom('a', '\r', '\n', '\u0000', '\u2028', '\u2029', '\u0085', ' ', '"', '\\', 'é', '\uD800') })),
    made('a JSON body with __proto__', fc.constant(() => JSON.parse('{"__proto__":{"polluted":true},"constructor":{"prototype":{"x":1}}}') as unknown)),
  );
}

/** A Proxy that lists more keys, with other values, every time it is asked. */
function shiftingProxy(): object {
  let reads = 0;
  return new Proxy({} as Record<string, unknown>, {
    ownKeys: () => (reads++ === 0 ? ['n'] : ['n', '_egress_event_id', 'b"; DROP TABLE t; --']),
    getOwnPropertyDescriptor: () => ({ value: 1, enumerable: true, configurable: true, writable: true }),
    get: (_target, key) => (key === 'toJSON' ? undefined : reads > 1 ? { changed: true } : 1),
  });
}

function describe(error: unknown): string {
  try {
    return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  } catch {
    return 'an unprintable value';
  }
}
