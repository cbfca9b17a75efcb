import { createEgress, defineDestination, memoryStore, PermanentError, RetryableError, silentLogger, type RoutedDeadLetter } from '@egress/core';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { z } from 'zod';
import { http } from '../src/index.js';
import { startReceiver, type Receiver } from './receiver.js';

const secret = 'sk_live_51Hx9dead1etter';

/** An ops webhook: posts what it is given as JSON to a URL, as a team's own small destination would. */
const opsWebhook = defineDestination({
  name: 'ops',
  input: z.strictObject({ url: z.string(), alert: z.unknown() }),
  async deliver(batch) {
    for (const event of batch.events) {
      const response = await fetch(event.payload.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(event.payload.alert) });
      await response.arrayBuffer();
      if (response.status >= 500) throw new RetryableError(`ops answered ${response.status}`);
      if (response.status >= 400) throw new PermanentError(`ops answered ${response.status}`);
    }
  },
});

let orders: Receiver;
let ops: Receiver;
beforeAll(async () => {
  orders = await startReceiver();
  ops = await startReceiver();
});
beforeEach(() => {
  orders.requests.length = 0;
  ops.requests.length = 0;
});
afterAll(async () => {
  await Promise.all([orders.close(), ops.close()]);
});

function egressRoutingToOps() {
  return createEgress({
    destinations: [http(), opsWebhook],
    store: memoryStore(),
    logger: silentLogger,
    policies: {
      http: { retry: { maxAttempts: 2, initialDelay: 5, maxDelay: 10 }, deadLetters: { routeTo: 'ops', fields: { url: `${ops.origin}/alerts` }, recordField: 'alert' } },
      ops: { retry: { maxAttempts: 2, initialDelay: 5, maxDelay: 10 } },
    },
  });
}

describe('routing dead letters to another destination', () => {
  test('sends each dead letter, redacted, to the ops receiver through the queue; delivered events are not sent', async () => {
    // The receiver refuses event 1 for good and echoes the credentials it was sent, as some do.
    orders.answer((request, response) => {
      if (request.url.includes('refuse')) response.writeHead(400).end(`bad request; you sent ${request.headers.authorization}`);
      else response.end('ok');
    });
    const egress = egressRoutingToOps();
    try {
      const kept = egress.send.http({ url: `${orders.origin}/orders`, data: { n: 0 } });
      const refused = egress.send.http({ url: `${orders.origin}/orders?refuse=1`, data: { n: 1, token: secret }, auth: { bearer: secret } });
      await egress.flush();
      expect(await kept.settled()).toEqual({ status: 'delivered' });
      expect(await refused.settled()).toMatchObject({ status: 'dead' });

      expect(ops.requests).toHaveLength(1);
      const body = ops.requests[0]!.body.toString();
      expect(body).not.toContain(secret);
      const letter = JSON.parse(body) as RoutedDeadLetter;
      expect(letter).toMatchObject({ destination: 'http', partition: orders.origin, eventId: refused.id, attempts: 1, error: { name: 'PermanentError' } });
      expect(letter.error.message).toContain('400');
      expect(letter.error.message).toContain('[redacted]');
      expect(letter.payload).toMatchObject({ url: `${orders.origin}/orders?refuse=1`, data: { n: 1, token: '[redacted]' } });
      // The dead letter also stays in the dead-letter queue; the routed record was delivered like any event.
      expect((await egress.deadLetters.list()).map((entry) => entry.id)).toEqual([refused.id]);
      const [httpStats, opsStats] = await egress.stats();
      expect(httpStats).toMatchObject({ dead: 1, delivered: 1 });
      expect(opsStats).toMatchObject({ delivered: 1, dead: 0 });
    } finally {
      await egress.close();
    }
  });

  test('a dead letter of the routing target is not routed again, so a failing ops receiver makes no loop', async () => {
    orders.answer((_request, response) => response.writeHead(422).end('unprocessable'));
    ops.answer((_request, response) => response.writeHead(410).end('gone'));
    const egress = egressRoutingToOps();
    try {
      egress.send.http({ url: `${orders.origin}/orders`, data: { n: 2 } });
      await egress.flush();
      expect(orders.requests).toHaveLength(1);
      expect(ops.requests).toHaveLength(1);
      const letters = await egress.deadLetters.list();
      expect(letters.map((entry) => entry.destination).sort()).toEqual(['http', 'ops']);
    } finally {
      await egress.close();
    }
  });

  test('a retryable failure of the target is retried by its own policy until the record arrives', async () => {
    orders.answer((_request, response) => response.writeHead(400).end('no'));
    let opsCalls = 0;
    ops.answer((_request, response) => {
      opsCalls += 1;
      response.writeHead(opsCalls === 1 ? 503 : 200).end();
    });
    const egress = egressRoutingToOps();
    try {
      egress.send.http({ url: `${orders.origin}/orders`, data: { n: 3 } });
      await egress.flush();
      expect(ops.requests).toHaveLength(2);
      expect(JSON.parse(ops.requests[1]!.body.toString())).toMatchObject({ destination: 'http', error: { name: 'PermanentError' } });
    } finally {
      await egress.close();
    }
  });
});
