import { PermanentError, RetryableError, createEgress, memoryStore, silentLogger } from '@egress/core';
import { describe, expect, test } from 'vitest';
import { http } from '../src/index.js';
import { batchOf, deliveryContext, rejection, useReceiver } from './receiver.js';

const receiver = useReceiver();

describe('http: batch mode', () => {
  test('sends many events in one request as a JSON array of { id, data }', async () => {
    const destination = http({ batch: true });
    const batch = batchOf([
      { url: `${receiver.origin}/bulk`, data: { n: 1 } },
      { url: `${receiver.origin}/bulk`, data: 'two' },
      { url: `${receiver.origin}/bulk`, data: new Uint8Array([1, 2, 3]) },
    ]);
    await destination.deliver(batch, deliveryContext());
    await destination.stop?.();
    expect(receiver.requests).toHaveLength(1);
    const request = receiver.requests[0]!;
    expect(request.headers['content-type']).toBe('application/json');
    expect(request.headers['idempotency-key']).toBe(batch.id);
    expect(JSON.parse(request.body.toString())).toEqual([
      { id: batch.events[0]!.id, data: { n: 1 } },
      { id: batch.events[1]!.id, data: 'two' },
      { id: batch.events[2]!.id, data: 'AQID', encoding: 'base64' },
    ]);
  });

  test('sends NDJSON, one event per line', async () => {
    const destination = http({ batch: { format: 'ndjson' } });
    const batch = batchOf([{ url: receiver.origin, data: { n: 1 } }, { url: receiver.origin, data: { n: 2 } }]);
    await destination.deliver(batch, deliveryContext());
    await destination.stop?.();
    const request = receiver.requests[0]!;
    expect(request.headers['content-type']).toBe('application/x-ndjson');
    const lines = request.body.toString().split('\n');
    expect(lines.pop()).toBe('');
    expect(lines.map((line) => JSON.parse(line))).toEqual(batch.events.map((event) => ({ id: event.id, data: event.payload.data })));
  });

  test('measures each event as the bytes it adds to the body', async () => {
    const destination = http({ batch: true });
    const batch = batchOf([{ url: receiver.origin, data: { name: 'Łukasz', n: 1 } }, { url: receiver.origin, data: 'x' }]);
    await destination.deliver(batch, deliveryContext());
    await destination.stop?.();
    const measured = batch.events.reduce((sum, event) => sum + destination.measure!(event.payload), 0);
    // The array's brackets replace one separator: the body is one byte longer than the sum.
    expect(receiver.requests[0]!.body.length).toBe(measured + 1);
  });

  test('partitions by method, URL, headers and auth, keeping secrets out of the key', () => {
    const destination = http({ batch: true });
    const key = (input: Parameters<typeof batchOf>[0][number]) => destination.partition!(batchOf([input]).events[0]!.payload);
    const base = { url: `${receiver.origin}/bulk`, headers: { 'x-a': '1', 'x-b': '2' } };
    expect(key(base)).toBe(key({ ...base, headers: { 'X-B': '2', 'x-a': '1' } }));
    expect(key(base)).not.toBe(key({ ...base, method: 'PUT' }));
    expect(key(base)).not.toBe(key({ ...base, headers: { 'x-a': '1' } }));
    expect(key(base)).not.toBe(key({ ...base, url: `${receiver.origin}/other` }));
    expect(key(base)).not.toBe(key({ ...base, auth: { bearer: 'tok-secret' } }));
    expect(key({ ...base, auth: { bearer: 'tok-secret' } })).not.toContain('tok-secret');
    expect(key(base).startsWith(`POST ${receiver.origin}/bulk `)).toBe(true);
  });

  test('sends events for different URLs in one batch as separate requests', async () => {
    const destination = http({ batch: true });
    const batch = batchOf([{ url: `${receiver.origin}/a`, data: 1 }, { url: `${receiver.origin}/b`, data: 2 }, { url: `${receiver.origin}/a`, data: 3 }]);
    await destination.deliver(batch, deliveryContext());
    await destination.stop?.();
    const byUrl = Object.fromEntries(receiver.requests.map((request) => [request.url, JSON.parse(request.body.toString()).map((element: { data: number }) => element.data)]));
    expect(byUrl).toEqual({ '/a': [1, 3], '/b': [2] });
  });

  test('reads per-event outcomes from { results: [{ id, status }] }', async () => {
    const destination = http({ batch: true });
    const batch = batchOf([{ url: receiver.origin, data: 1 }, { url: receiver.origin, data: 2 }, { url: receiver.origin, data: 3 }]);
    receiver.answer((request, response) => {
      const [first, second, third] = JSON.parse(request.body.toString()) as { id: string }[];
      response.setHeader('content-type', 'application/json');
      response.end(JSON.stringify({ results: [{ id: first!.id, status: 200 }, { id: second!.id, status: 422, error: 'missing email' }, { id: third!.id, status: 429, retryAfter: 2 }] }));
    });
    const report = await destination.deliver(batch, deliveryContext());
    await destination.stop?.();
    const failures = report?.failures ?? [];
    expect(failures.map((failure) => failure.eventId)).toEqual([batch.events[1]!.id, batch.events[2]!.id]);
    const [permanent, retryable] = failures.map((failure) => failure.error as Error);
    expect(PermanentError.isInstance(permanent)).toBe(true);
    expect(permanent!.message).toContain('missing email');
    expect(RetryableError.isInstance(retryable) && retryable.retryAfter).toBe(2000);
  });

  test('fails the whole batch together when the receiver answers with an error status', async () => {
    const destination = http({ batch: true });
    receiver.answer((_request, response) => {
      response.statusCode = 503;
      response.end();
    });
    const error = await rejection(destination.deliver(batchOf([{ url: receiver.origin, data: 1 }, { url: receiver.origin, data: 2 }]), deliveryContext()));
    await destination.stop?.();
    expect(RetryableError.isInstance(error)).toBe(true);
  });

  test('through the engine: batches events, retries only the ones the receiver asked to retry, dead-letters the rejected', async () => {
    let round = 0;
    receiver.answer((request, response) => {
      round++;
      const elements = JSON.parse(request.body.toString()) as { id: string; data: { n: number } }[];
      const results = elements.map((element) => ({
        id: element.id,
        status: element.data.n === 2 ? 400 : element.data.n === 3 && round === 1 ? 503 : 200,
      }));
      response.setHeader('content-type', 'application/json');
      response.end(JSON.stringify({ results }));
    });
    const egress = createEgress({
      destinations: [http({ batch: true })],
      store: memoryStore(),
      logger: silentLogger,
      policies: { http: { batch: { maxEvents: 10, maxDelay: 50 }, retry: { initialDelay: 10, maxDelay: 20 } } },
    });
    try {
      const receipts = [1, 2, 3, 4].map((n) => egress.send.http({ url: `${receiver.origin}/bulk`, data: { n } }));
      const outcomes = await Promise.all(receipts.map((receipt) => receipt.settled()));
      expect(outcomes.map((outcome) => outcome.status)).toEqual(['delivered', 'dead', 'delivered', 'delivered']);
      expect(receiver.requests).toHaveLength(2);
      expect(JSON.parse(receiver.requests[0]!.body.toString())).toHaveLength(4);
      expect(JSON.parse(receiver.requests[1]!.body.toString()).map((element: { data: { n: number } }) => element.data.n)).toEqual([3]);
      const [dead] = await egress.deadLetters.list();
      expect(dead!.error.message).toContain('reported status 400');
    } finally {
      await egress.close();
    }
  });
});
