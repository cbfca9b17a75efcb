import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createEgress, defineDestination, PermanentError, RetryableError, silentLogger, type RoutedDeadLetter } from '@egress/core';
import { afterAll, describe, expect, test } from 'vitest';
import { z } from 'zod';
import { postgresStore } from '../src/index.js';
import { dropSchemas, postgresUrl, randomSchema } from './postgres-test-schema.js';

const created = new Set<string>();

/** A node:http receiver answering each request with the status `answer` picks; keeps the bodies. */
async function receiver(answer: (call: number) => number): Promise<{ url: string; bodies: string[]; server: Server }> {
  const bodies: string[] = [];
  const server = createServer(async (request, response) => {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    bodies.push(Buffer.concat(chunks).toString());
    response.writeHead(answer(bodies.length)).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, bodies, server };
}

/** A destination that posts each payload's `body` as JSON to its `url`. */
function poster<const Name extends string>(name: Name) {
  return defineDestination({
    name,
    input: z.strictObject({ url: z.string(), body: z.unknown() }),
    async deliver(batch) {
      for (const event of batch.events) {
        const response = await fetch(event.payload.url, { method: 'POST', body: JSON.stringify(event.payload.body) });
        await response.arrayBuffer();
        if (response.status >= 500) throw new RetryableError(`answered ${response.status}`);
        if (response.status >= 400) throw new PermanentError(`answered ${response.status}`);
      }
    },
  });
}

describe.skipIf(!postgresUrl)('dead-letter routing on the postgres store', () => {
  afterAll(() => dropSchemas(created));

  test('the worker that dead-letters routes the record through the shared queue; the producer delivers nothing', async () => {
    const orders = await receiver(() => 400);
    // The ops receiver is down at first: the routed record waits in PostgreSQL and is retried.
    const ops = await receiver((call) => (call === 1 ? 503 : 200));
    const schema = randomSchema();
    created.add(schema);
    const options = (role: 'producer' | 'worker') => ({
      role,
      destinations: [poster('orders'), poster('ops')],
      store: postgresStore({ connectionString: postgresUrl!, schema, pollInterval: 50 }),
      logger: silentLogger,
      pollInterval: 50,
      policies: {
        orders: { deadLetters: { routeTo: 'ops', fields: { url: ops.url }, recordField: 'body' } },
        ops: { retry: { initialDelay: 10, maxDelay: 20 } },
      },
    });
    const producer = createEgress(options('producer'));
    const worker = createEgress(options('worker'));
    try {
      const receipt = producer.send.orders({ url: orders.url, body: { order: 7 } });
      await receipt.committed();
      await worker.flush();

      expect(orders.bodies).toHaveLength(1);
      expect(ops.bodies).toHaveLength(2);
      const letter = JSON.parse(ops.bodies[1]!) as RoutedDeadLetter;
      expect(letter).toMatchObject({ destination: 'orders', eventId: receipt.id, attempts: 1, error: { name: 'PermanentError', message: 'answered 400' }, payload: { body: { order: 7 } } });
      // Both processes see the same store: the dead letter stays, the routed record was delivered.
      const stats = await producer.stats();
      expect(stats.map(({ destination, dead, delivered, failed }) => ({ destination, dead, delivered, failed }))).toEqual([
        { destination: 'orders', dead: 1, delivered: 0, failed: 1 },
        { destination: 'ops', dead: 0, delivered: 1, failed: 1 },
      ]);
    } finally {
      await Promise.all([producer.close(), worker.close()]);
      await Promise.all([orders, ops].map(({ server }) => new Promise((resolve) => server.close(resolve))));
    }
  });
});
