import { createEgress, memoryStore, PermanentError, silentLogger, type EgressEvents } from '@egress/core';
import { describe, expect, test } from 'vitest';
import { http } from '../src/index.js';
import { batchOf, deliveryContext, rejection, useReceiver } from './receiver.js';

const destination = http();
const receiver = useReceiver({ keepAnswer: true, stop: () => destination.stop?.() });

function answer(status: number, headers: Record<string, string | string[]>) {
  receiver.answer((_request, response) => {
    for (const [name, value] of Object.entries(headers)) response.setHeader(name, value);
    response.statusCode = status;
    response.end('no more, please');
  });
}

describe('http: the receiver stops the retries of one message', () => {
  test.each([503, 429, 500, 410])('a %i with webhook-delivery: abort-message is permanent, and says why', async (status) => {
    answer(status, { 'webhook-delivery': 'abort-message' });
    const error = await rejection(destination.deliver(batchOf([{ url: receiver.origin }]), deliveryContext()));
    expect(PermanentError.isInstance(error)).toBe(true);
    expect((error as Error).message).toMatch(new RegExp(`answered ${status} .*webhook-delivery: abort-message, so the message is not retried`));
  });

  test('the value is read without regard to case, within a list of values', async () => {
    answer(503, { 'Webhook-Delivery': 'retry-later, Abort-Message' });
    const error = await rejection(destination.deliver(batchOf([{ url: receiver.origin }]), deliveryContext()));
    expect(PermanentError.isInstance(error)).toBe(true);
  });

  test('another value of the header leaves a 503 retryable', async () => {
    answer(503, { 'webhook-delivery': 'later' });
    const error = await rejection(destination.deliver(batchOf([{ url: receiver.origin }]), deliveryContext()));
    expect(PermanentError.isInstance(error)).toBe(false);
  });

  test('the engine dead-letters the message after its first attempt, with the reason', async () => {
    answer(503, { 'webhook-delivery': 'abort-message' });
    const egress = createEgress({
      destinations: [http()],
      store: memoryStore(),
      logger: silentLogger,
      policies: { http: { retry: { initialDelay: 1, maxDelay: 1, maxAttempts: 10 } } },
    });
    const dead: EgressEvents['dead'][] = [];
    egress.on('dead', (event) => dead.push(event));
    try {
      egress.send.http({ url: `${receiver.origin}/hook`, data: { n: 1 } });
      await egress.flush();
      expect(receiver.requests).toHaveLength(1);
      expect(dead).toEqual([expect.objectContaining({ attempt: 1, error: expect.objectContaining({ name: 'PermanentError', message: expect.stringContaining('abort-message') }) })]);
      const [letter] = await egress.deadLetters.list();
      expect(letter).toMatchObject({ attempts: 1 });
    } finally {
      await egress.close();
    }
  });
});
