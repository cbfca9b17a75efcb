import {
  createBatchId,
  createEgress,
  createEventId,
  EgressValidationError,
  encodePayload,
  memoryStore,
  silentLogger,
  type AnyDestination,
  type Batch,
  type Destination,
  type PolicyOptions,
} from '@egress/core';
import type { TestFunction } from './test-function.js';

export interface DestinationSuiteOptions<Input> {
  /** A fresh destination for each test, pointed at the real backend. */
  createDestination(): Destination<string, Input, unknown> | Promise<Destination<string, Input, unknown>>;
  /** A valid `$send` input that the backend can recognise by `index` once it arrives. */
  input(index: number): Input;
  /**
   * The indices found at the backend, read there directly (a query, a bucket listing, a parsed
   * mailbox), one entry per stored copy after whatever deduplication the sink itself performs.
   */
  arrived(): Promise<number[]>;
  /** Inputs that must be refused at `$send`, each with the field path the error must name. */
  invalidInputs?: readonly { input: unknown; path: string }[];
  /** Policy for the engine in these tests, e.g. a short `maxDelay` for a batching destination. */
  policy?: PolicyOptions;
  /** Per-test timeout in milliseconds (default 30 s). */
  timeout?: number;
  /** Switch groups off when a destination cannot support them, with the reason in a comment. */
  groups?: {
    /** The contract: version, name, schema, limits, measure and partition. */
    contract?: boolean;
    /** Invalid and unknown fields are refused at `$send`. */
    validation?: boolean;
    /** Events sent through `createEgress` arrive, from `send` and from `run`. */
    delivery?: boolean;
    /** Many events across several batches: none lost, none duplicated. */
    batching?: boolean;
    /** The same batch delivered twice is stored once (a retry after a lost acknowledgement). */
    redelivery?: boolean;
  };
}

/**
 * Each test uses its own range of indices, so the suite needs no way to empty the backend. The
 * counter is shared by every suite in the process, since two suites registered in one file may
 * report to the same backend; the random start keeps processes that share a backend apart.
 */
// Indices stay below 2^31, since sinks may store them in 32-bit integer columns.
const rangeStart = Math.floor(Math.random() * 2_000) * 100;
let rangesTaken = 0;
function nextIndexRange(): number {
  rangesTaken += 1;
  return (rangeStart + rangesTaken) * 10_000;
}

/**
 * The conformance suite every destination passes, in the shape of `@keyv/test-suite`:
 * `destinationTestSuite(test, options)` registers its tests with your runner. It checks at the
 * backend itself, through `arrived()`, that what was sent arrived once.
 */
export function destinationTestSuite<Input>(test: TestFunction, options: DestinationSuiteOptions<Input>): void {
  const groups = { contract: true, validation: true, delivery: true, batching: true, redelivery: true, ...options.groups };
  const timeout = options.timeout ?? 30_000;
  const range = nextIndexRange;
  const arrivedIn = async (from: number, count: number) => (await options.arrived()).filter((index) => index >= from && index < from + count).sort((a, b) => a - b);
  const indices = (from: number, count: number) => Array.from({ length: count }, (_, offset) => from + offset);

  // One destination per test, as `createDestination` promises: the test reads its name from it.
  async function withEgress(body: (egress: ReturnType<typeof start>, destination: AnyDestination) => Promise<void>, policy?: PolicyOptions): Promise<void> {
    const destination = (await options.createDestination()) as unknown as AnyDestination;
    const egress = start(destination, { ...options.policy, ...policy });
    try {
      await body(egress, destination);
    } finally {
      await egress.close({ timeout: 5000 });
    }
  }

  function start(destination: AnyDestination, policy: PolicyOptions) {
    return createEgress({ destinations: [destination], store: memoryStore(), logger: silentLogger, policies: { [destination.name]: policy } as never });
  }

  function sendFunction(egress: ReturnType<typeof start>, name: string) {
    return (egress.send as unknown as Record<string, (input: unknown) => { id: string }>)[name]!;
  }

  if (groups.contract) {
    test('declares the current contract: version, name, Standard Schema input and positive limits', async () => {
      const destination = await options.createDestination();
      assert(destination.specificationVersion === 'v1', `specificationVersion is ${JSON.stringify(destination.specificationVersion)}, expected "v1"`);
      assert(/^[A-Za-z][A-Za-z0-9_]*$/.test(destination.name), `name ${JSON.stringify(destination.name)} is not a valid $send name`);
      assert(typeof destination.input?.['~standard']?.validate === 'function', 'input is not a Standard Schema');
      for (const limit of [destination.limits?.maxEvents, destination.limits?.maxBytes]) {
        assert(limit === undefined || (Number.isInteger(limit) && limit > 0), `limit ${limit} is not a positive integer`);
      }
      await destination.stop?.();
    }, timeout);

    test('validates synchronously, and measures and partitions the same payload the same way every time', async () => {
      const destination = await options.createDestination();
      for (const index of [1, 2, 3]) {
        const result = destination.input['~standard'].validate(options.input(index));
        assert(!(result instanceof Promise), 'input validation must be synchronous');
        assert(!result.issues, `input(${index}) is not valid: ${JSON.stringify(result.issues)}`);
        const payload = result.value;
        if (destination.partition) assert(destination.partition(payload) === destination.partition(payload), 'partition() is not deterministic');
        if (destination.partition) assert(typeof destination.partition(payload) === 'string', 'partition() must return a string');
        if (destination.measure) {
          const size = destination.measure(payload, encodePayload(payload));
          assert(Number.isFinite(size) && size > 0, `measure() returned ${size}`);
          assert(destination.limits?.maxBytes === undefined || size <= destination.limits.maxBytes, 'a valid input measures above limits.maxBytes');
        }
      }
      await destination.stop?.();
    }, timeout);
  }

  if (groups.validation) {
    test('refuses invalid inputs at send, naming the field, and enqueues nothing', async () => {
      await withEgress(async (egress, destination) => {
        const send = sendFunction(egress, destination.name);
        const unknownField = { ...(options.input(0) as object), unexpectedField: true };
        const cases = [...(options.invalidInputs ?? []), { input: unknownField, path: '' }];
        for (const { input, path } of cases) {
          let caught: unknown;
          try {
            send(input);
          } catch (error) {
            caught = error;
          }
          assert(EgressValidationError.isInstance(caught), `input ${safeJson(input)} was accepted`);
          const issues = (caught as EgressValidationError).issues;
          assert(path === '' || issues.some((issue) => issue.path === path || issue.path.startsWith(`${path}.`) || issue.path.startsWith(`${path}[`)), `the error for ${safeJson(input)} does not name "${path}": ${(caught as Error).message}`);
        }
        const [stats] = await egress.stats();
        assert(stats!.waiting + stats!.inFlight === 0, 'an invalid input was enqueued');
      });
    }, timeout);
  }

  if (groups.delivery) {
    test('delivers what is sent, once, at the backend', async () => {
      const from = range();
      await withEgress(async (egress, destination) => {
        const send = sendFunction(egress, destination.name);
        for (const index of indices(from, 5)) send(options.input(index));
        await egress.flush();
        const [stats] = await egress.stats();
        assert(stats!.dead === 0, `events were dead-lettered: ${safeJson(await egress.deadLetters.list())}`);
      });
      assertSame(await arrivedIn(from, 5), indices(from, 5), 'arrived');
    }, timeout);

    test('delivers what a unit of work commits, and nothing of a unit that throws', async () => {
      const from = range();
      await withEgress(async (egress, destination) => {
        const name = destination.name;
        await egress.run(async () => {
          for (const index of indices(from, 3)) sendFunction(egress, name)(options.input(index));
        });
        await egress
          .run(async () => {
            sendFunction(egress, name)(options.input(from + 3));
            throw new Error('unit of work failed');
          })
          .catch(() => {});
        await egress.flush();
      });
      assertSame(await arrivedIn(from, 4), indices(from, 3), 'arrived');
    }, timeout);
  }

  if (groups.batching) {
    test('delivers many events across several batches with none lost or duplicated', async () => {
      const from = range();
      const count = 60;
      await withEgress(
        async (egress, destination) => {
          const send = sendFunction(egress, destination.name);
          for (const index of indices(from, count)) send(options.input(index));
          await egress.flush();
        },
        { batch: { maxEvents: 25, maxDelay: 50 } },
      );
      assertSame(await arrivedIn(from, count), indices(from, count), 'arrived');
    }, timeout);
  }

  if (groups.redelivery) {
    test('stores a batch once when it is delivered twice with the same ids', async () => {
      const from = range();
      const destination = await options.createDestination();
      await destination.start?.({ logger: silentLogger });
      try {
        const events = indices(from, 3).map((index) => {
          const result = destination.input['~standard'].validate(options.input(index));
          if (result instanceof Promise || result.issues) throw new Error(`input(${index}) is not valid`);
          return { id: createEventId(), payload: result.value, payloadJson: encodePayload(result.value), attempt: 1, sentAt: Date.now() };
        });
        const partition = destination.partition?.(events[0]!.payload) ?? '';
        const batch: Batch<unknown> = { id: createBatchId(destination.name, events.map((event) => event.id)), destination: destination.name, partition, attempt: 1, events };
        const context = { signal: new AbortController().signal, logger: silentLogger };
        await destination.deliver(batch, context);
        await destination.deliver({ ...batch, attempt: 2, events: events.map((event) => ({ ...event, attempt: 2 })) }, context);
      } finally {
        await destination.stop?.();
      }
      assertSame(await arrivedIn(from, 3), indices(from, 3), 'arrived after a repeated delivery');
    }, timeout);
  }
}

function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`[destination conformance] ${message}`);
}

function assertSame(actual: number[], expected: number[], label: string): void {
  assert(JSON.stringify(actual) === JSON.stringify(expected), `${label}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value);
  } catch {
    return String(value);
  }
}
