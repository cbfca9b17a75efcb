import { z } from 'zod';
import { defineDestination, PermanentError, RetryableError, type Batch, type DeliveryReport } from '../src/index.js';

export const eventInput = z.strictObject({
  n: z.number().int(),
  group: z.string().optional(),
  size: z.number().int().optional(),
});
export type EventInput = z.infer<typeof eventInput>;

export type Behaviour = (batch: Batch<EventInput>, call: number) => Promise<DeliveryReport | void> | DeliveryReport | void;

/**
 * A destination that records every batch it receives; `behaviour` decides each call's outcome.
 * It stands for a sink in the core's own tests (adapters test against real servers).
 */
export function recordingDestination<const Name extends string = 'events'>(
  options: { name?: Name; behaviour?: Behaviour; limits?: { maxEvents?: number; maxBytes?: number }; partitionByGroup?: boolean } = {},
) {
  const batches: Batch<EventInput>[] = [];
  let calls = 0;
  const destination = defineDestination({
    name: (options.name ?? 'events') as Name,
    input: eventInput,
    limits: options.limits,
    partition: options.partitionByGroup ? (payload) => payload.group ?? '' : undefined,
    measure: (payload) => payload.size ?? 10,
    async deliver(batch) {
      calls += 1;
      batches.push(batch);
      return options.behaviour?.(batch, calls);
    },
  });
  return {
    destination,
    batches,
    /** Event numbers in the order they were handed to the destination (with repeats for retries). */
    delivered: () => batches.flatMap((batch) => batch.events.map((event) => event.payload.n)),
    calls: () => calls,
  };
}

export function failTimes(times: number, error: () => Error): Behaviour {
  return (_batch, call) => {
    if (call <= times) throw error();
  };
}

export const retryable = (message = 'try later', retryAfter?: number) => new RetryableError(message, { retryAfter });
export const permanent = (message = 'rejected') => new PermanentError(message);

export function sleep(milliseconds: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, milliseconds));
}

export async function waitFor(condition: () => boolean | Promise<boolean>, timeout = 5000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(5);
  }
}

/**
 * Closes every engine a test file made, after each test: `const track = trackEngines(afterEach)`,
 * then `const egress = track(createEgress(...))`.
 */
export function trackEngines(afterEach: (hook: () => Promise<void>) => void) {
  let instances: { close(options?: { timeout?: number }): Promise<void> }[] = [];
  afterEach(async () => {
    await Promise.all(instances.map((instance) => instance.close({ timeout: 500 })));
    instances = [];
  });
  return <T extends { close(options?: { timeout?: number }): Promise<void> }>(instance: T): T => {
    instances.push(instance);
    return instance;
  };
}
