import Fastify from 'fastify';
import { describe, expect, test } from 'vitest';
import { createEgress, EgressClosedError, memoryStore, silentLogger } from '@egress/core';
import { http } from '@egress/http';
import { egressPlugin } from '@egress/middleware/fastify';
import { describeRequestUnits } from './request-unit-suite.js';

describeRequestUnits('fastify', async ({ egress, shop, options }) => {
  const app = Fastify();
  await app.register(egressPlugin(egress, options));
  app.post<{ Body: { tag: string }; Params: { outcome?: string } }>('/orders/:outcome?', async (request, reply) => {
    const { tag } = request.body;
    await shop.order(request.egress, tag);
    const { outcome } = request.params;
    if (outcome === 'fail') throw new Error('payment declined');
    if (outcome === 'mixed' && Number(tag.split('-').at(-1)) % 2 === 1) throw new Error('payment declined');
    if (outcome === 'unavailable') return reply.code(503).send({ ok: false });
    if (outcome === 'missing') return reply.code(404).send({ ok: false });
    return reply.code(201).send({ ok: true });
  });
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  return { url, close: () => app.close() };
});

describe('fastify: a closed Egress', () => {
  test('answers 500 with the closed error instead of running the handler outside a unit', async () => {
    const egress = createEgress({ store: memoryStore(), destinations: [http()], logger: silentLogger });
    await egress.close();
    const app = Fastify();
    await app.register(egressPlugin(egress));
    let handled = false;
    app.get('/', async () => {
      handled = true;
      return 'ok';
    });
    const response = await app.inject({ method: 'GET', url: '/' });
    await app.close();
    expect(response.statusCode).toBe(500);
    expect(response.json()).toMatchObject({ message: new EgressClosedError().message });
    expect(handled).toBe(false);
  });
});
