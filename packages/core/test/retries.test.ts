import { afterEach, describe, expect, test } from 'vitest';
import { createEgress, EgressDeliveryError, EgressTimeoutError, type Egress, type EgressEvents } from '../src/index.js';
import { failTimes, permanent, recordingDestination, retryable, waitFor } from './helpers.js';

let egress: Egress | undefined;
afterEach(async () => {
  await egress?.close({ timeout: 1000 });
  egress = undefined;
});

const fastRetry = { retry: { initialDelay: 10, maxDelay: 40 } };

describe('retries and dead letters', () => {
  test('retries a retryable failure with backoff and keeps the batch id', async () => {
    const sink = recordingDestination({ behaviour: failTimes(2, () => retryable()) });
    const instance = createEgress({ destinations: [sink.destination], policies: { events: { ...fastRetry, batch: { maxEvents: 2 } } } });
    egress = instance;
    const retrying: EgressEvents['retrying'][] = [];
    instance.on('retrying', (event) => retrying.push(event));
    instance.send.events({ n: 1 });
    instance.send.events({ n: 2 });
    await instance.flush();
    expect(sink.calls()).toBe(3);
    expect(new Set(sink.batches.map((batch) => batch.id)).size).toBe(1);
    expect(sink.batches.map((batch) => batch.attempt)).toEqual([1, 2, 3]);
    expect(retrying.map((event) => event.attempt)).toEqual([1, 2]);
    for (const event of retrying) expect(event.retryAt - event.error.at).toBeGreaterThanOrEqual(10);
  });

  test('honours a retry-after from the sink over the backoff', async () => {
    const sink = recordingDestination({ behaviour: failTimes(1, () => retryable('slow down', 150)) });
    const instance = createEgress({ destinations: [sink.destination], policies: { events: fastRetry } });
    egress = instance;
    const firstAt = Date.now();
    instance.send.events({ n: 1 });
    await instance.flush();
    expect(sink.calls()).toBe(2);
    expect(sink.batches[1]!.events[0]!.attempt).toBe(2);
    expect(Date.now() - firstAt).toBeGreaterThanOrEqual(145);
  });

  test('dead-letters a permanent failure at once, with its error and attempts', async () => {
    const sink = recordingDestination({ behaviour: () => Promise.reject(permanent('422 unprocessable')) });
    const instance = createEgress({ destinations: [sink.destination], policies: { events: fastRetry } });
    egress = instance;
    const receipt = instance.send.events({ n: 7 });
    await instance.flush();
    expect(sink.calls()).toBe(1);
    const outcome = await receipt.settled();
    expect(outcome).toMatchObject({ status: 'dead', error: { name: 'PermanentError', message: '422 unprocessable' } });
    const [letter] = await instance.deadLetters.list();
    expect(letter).toMatchObject({ id: receipt.id, destination: 'events', payload: { n: 7 }, attempts: 1, error: { message: '422 unprocessable' } });
  });

  test('dead-letters after maxAttempts, saying why', async () => {
    const sink = recordingDestination({ behaviour: () => Promise.reject(retryable('503 unavailable')) });
    const instance = createEgress({ destinations: [sink.destination], policies: { events: { retry: { initialDelay: 5, maxDelay: 10, maxAttempts: 3 } } } });
    egress = instance;
    const dead: EgressEvents['dead'][] = [];
    instance.on('dead', (event) => dead.push(event));
    instance.send.events({ n: 1 });
    await instance.flush();
    expect(sink.calls()).toBe(3);
    expect(dead).toHaveLength(1);
    expect(dead[0]!.error.message).toBe('gave up after 3 attempts; last error: 503 unavailable');
  });

  test('dead-letters an event whose next retry would pass maxAge', async () => {
    const sink = recordingDestination({ behaviour: () => Promise.reject(retryable('later', 5000)) });
    const instance = createEgress({ destinations: [sink.destination], policies: { events: { retry: { maxAge: '1s' } } } });
    egress = instance;
    const receipt = instance.send.events({ n: 1 });
    await instance.flush();
    const outcome = await receipt.settled();
    expect(outcome.status).toBe('dead');
    expect(outcome.status === 'dead' && outcome.error.message).toMatch(/maxAge/);
  });

  test('wraps an unclassified throw in EgressDeliveryError and retries it', async () => {
    const sink = recordingDestination({ behaviour: failTimes(1, () => new TypeError('socket hang up')) });
    const instance = createEgress({ destinations: [sink.destination], policies: { events: fastRetry } });
    egress = instance;
    const retrying: EgressEvents['retrying'][] = [];
    instance.on('retrying', (event) => retrying.push(event));
    instance.send.events({ n: 1 });
    await instance.flush();
    expect(sink.calls()).toBe(2);
    expect(retrying[0]!.error).toMatchObject({ name: 'EgressDeliveryError', message: '[egress] [events] delivery failed: socket hang up' });
    expect(EgressDeliveryError.isInstance(new EgressDeliveryError('events', new Error('x')))).toBe(true);
  });

  test('retries only the failed events of a partly successful batch', async () => {
    const sink = recordingDestination({
      behaviour: (batch, call) => {
        if (call > 1) return;
        return {
          failures: batch.events
            .filter((event) => event.payload.n % 2 === 1)
            .map((event) => ({ eventId: event.id, error: event.payload.n === 3 ? permanent('bad row') : retryable() })),
        };
      },
    });
    const instance = createEgress({ destinations: [sink.destination], policies: { events: { ...fastRetry, batch: { maxEvents: 10, maxDelay: 0 } } } });
    egress = instance;
    for (let n = 0; n < 6; n++) instance.send.events({ n });
    await instance.flush();
    expect(sink.batches[0]!.events.map((event) => event.payload.n)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(sink.batches[1]!.events.map((event) => event.payload.n)).toEqual([1, 5]);
    expect(sink.batches[1]!.id).not.toBe(sink.batches[0]!.id);
    const dead = await instance.deadLetters.list();
    expect(dead.map((letter) => letter.payload)).toEqual([{ n: 3 }]);
  });

  test('times out a delivery that hangs and retries it', async () => {
    const sink = recordingDestination({
      behaviour: (_batch, call) => (call === 1 ? new Promise<void>(() => {}) : undefined),
    });
    const instance = createEgress({ destinations: [sink.destination], policies: { events: { ...fastRetry, timeout: '50ms' } } });
    egress = instance;
    const retrying: EgressEvents['retrying'][] = [];
    instance.on('retrying', (event) => retrying.push(event));
    instance.send.events({ n: 1 });
    await instance.flush();
    expect(sink.calls()).toBe(2);
    expect(retrying[0]!.error).toMatchObject({ name: 'EgressTimeoutError' });
    expect(retrying[0]!.error.message).toMatch(/timed out after 50 ms/);
  });

  test('passes an abort signal that fires on timeout', async () => {
    let aborted: unknown;
    const sink = recordingDestination();
    const hanging = {
      ...sink.destination,
      deliver: (_batch: unknown, context: { signal: AbortSignal }) =>
        new Promise<void>((resolve) => {
          if (aborted) return resolve();
          context.signal.addEventListener('abort', () => (aborted = context.signal.reason));
        }),
    };
    const instance = createEgress({ destinations: [hanging], policies: { events: { ...fastRetry, timeout: 30 } } });
    egress = instance;
    instance.send.events({ n: 1 });
    await instance.flush();
    expect(String(aborted)).toMatch(/timed out/);
  });

  test('a flush with a timeout gives up when it runs out, between its periodic checks, and loses nothing', async () => {
    const sink = recordingDestination();
    let release: (() => void) | undefined;
    const stuck = { ...sink.destination, deliver: () => new Promise<void>((resolve) => (release = resolve)) };
    const instance = createEgress({ destinations: [stuck], policies: { events: { timeout: '10s' } } });
    egress = instance;
    instance.send.events({ n: 1 });
    const started = Date.now();
    await expect(instance.flush({ timeout: 300 })).rejects.toBeInstanceOf(EgressTimeoutError);
    const waited = Date.now() - started;
    // Checks every 250 ms would give up at 500 ms; the deadline has its own wake-up.
    expect(waited).toBeGreaterThanOrEqual(290);
    expect(waited).toBeLessThan(450);
    expect((await instance.stats())[0]).toMatchObject({ inFlight: 1, delivered: 0 });
    release?.();
    await instance.flush();
    expect((await instance.stats())[0]).toMatchObject({ inFlight: 0, delivered: 1 });
  });

  test('dead letters can be retried and purged', async () => {
    let failing = true;
    const sink = recordingDestination({ behaviour: () => (failing ? Promise.reject(permanent('no such bucket')) : undefined) });
    const instance = createEgress({ destinations: [sink.destination] });
    egress = instance;
    const first = instance.send.events({ n: 1 });
    const second = instance.send.events({ n: 2 });
    await instance.flush();
    expect((await instance.deadLetters.list()).map((letter) => letter.id)).toEqual([first.id, second.id]);
    failing = false;
    expect(await instance.deadLetters.retry([first.id])).toBe(1);
    await waitFor(async () => (await instance.stats())[0]!.waiting === 0 && (await instance.stats())[0]!.inFlight === 0);
    await instance.flush();
    expect(sink.batches.at(-1)!.events.map((event) => event.id)).toEqual([first.id]);
    expect(sink.batches.at(-1)!.events[0]!.attempt).toBe(1);
    expect((await instance.deadLetters.list()).map((letter) => letter.id)).toEqual([second.id]);
    expect(await instance.deadLetters.purge()).toBe(1);
    expect(await instance.deadLetters.list()).toEqual([]);
  });
});
