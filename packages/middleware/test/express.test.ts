import type { AddressInfo } from 'node:net';
import express, { type ErrorRequestHandler } from 'express';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { egressErrorHandler, egressMiddleware } from '@egress/middleware/express';
import { createShop, createTestEgress, startReceiver, watchedStore, type Shop, type TestEgress } from './request-harness.js';
import { describeRequestUnits } from './request-unit-suite.js';

function listen(app: express.Express) {
  return new Promise<{ url: string; close(): Promise<void> }>((resolve) => {
    const server = app.listen(0, '127.0.0.1', () =>
      resolve({
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        close: () => new Promise<void>((done) => server.close(() => done())),
      }),
    );
  });
}

const quietErrors: ErrorRequestHandler = (error: { status?: number }, _request, response, _next) => {
  response.status(error.status ?? 500).json({ ok: false });
};

describeRequestUnits('express', async ({ egress, shop, options }) => {
  const app = express();
  app.use(egressMiddleware(egress, options));
  // The body parser reads the socket's events after the middleware: the helper's egress.send must
  // still find the request's unit.
  app.use(express.json());
  app.post('/orders{/:outcome}', async (request, response) => {
    const { tag } = request.body as { tag: string };
    await shop.order(request.egress, tag);
    const { outcome } = request.params;
    if (outcome === 'fail') throw new Error('payment declined');
    if (outcome === 'mixed' && Number(tag.split('-').at(-1)) % 2 === 1) throw new Error('payment declined');
    if (outcome === 'unavailable') return void response.status(503).json({ ok: false });
    if (outcome === 'missing') return void response.status(404).json({ ok: false });
    response.status(201).json({ ok: true });
  });
  app.use(quietErrors);
  return listen(app);
});

describe('express: errors, locals and streamed answers', () => {
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let watched: ReturnType<typeof watchedStore>;
  let egress: TestEgress;
  let shop: Shop;
  let app: Awaited<ReturnType<typeof listen>>;

  beforeAll(async () => {
    receiver = await startReceiver();
    watched = watchedStore();
    egress = createTestEgress(watched.store);
    shop = createShop(egress, receiver.url);
    const server = express();
    server.use(express.json());
    server.use(egressMiddleware(egress));
    server.post('/invalid', async (request) => {
      await shop.order(request.egress, (request.body as { tag: string }).tag);
      throw Object.assign(new Error('the order has no lines'), { status: 422 });
    });
    server.post('/locals', async (request, response) => {
      await shop.order(response.locals.egress, (request.body as { tag: string }).tag);
      response.status(201).end();
    });
    server.post('/stream', async (request, response) => {
      const { tag } = request.body as { tag: string };
      response.status(200).setHeader('content-type', 'text/plain');
      response.write('first part\n');
      await shop.order(request.egress, tag);
      response.end('last part\n');
    });
    server.post('/slow', async (request, response) => {
      await shop.order(request.egress, (request.body as { tag: string }).tag);
      await new Promise((resolve) => setTimeout(resolve, 150));
      response.status(201).json({ ok: true });
    });
    server.use(egressErrorHandler());
    server.use(quietErrors);
    app = await listen(server);
  });

  afterAll(async () => {
    await app?.close();
    await egress?.close();
    await receiver?.close();
  });

  const post = (path: string, tag: string, signal?: AbortSignal) =>
    fetch(`${app.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ tag }), signal });

  test('egressErrorHandler discards the sends of a thrown error answered 422', async () => {
    const response = await post('/invalid', 'express-invalid');
    expect(response.status).toBe(422);
    await egress.flush({ timeout: '10s' });
    expect(receiver.steps('express-invalid')).toEqual([]);
  });

  test('res.locals.egress is the request’s $send', async () => {
    expect((await post('/locals', 'express-locals')).status).toBe(201);
    await egress.flush({ timeout: '10s' });
    expect(receiver.steps('express-locals')).toEqual(['handler', 'helper']);
  });

  test('discards the sends of a request whose client left before the answer', async () => {
    const leaving = new AbortController();
    const request = post('/slow', 'express-left', leaving.signal);
    setTimeout(() => leaving.abort(), 50);
    await expect(request).rejects.toThrow();
    // The handler answers after the connection closed; nothing of it is delivered.
    await new Promise((resolve) => setTimeout(resolve, 200));
    await egress.flush({ timeout: '10s' });
    expect(receiver.steps('express-left')).toEqual([]);
    expect(watched.enqueuedFor('express-left')).toBe(0);
  });

  test('types the request’s $send from the registered instance', () => {
    // Never called: the compiler refuses what egress.send refuses.
    const typeChecks = (request: express.Request, response: express.Response) => {
      // @ts-expect-error `body` is not an http input field
      request.egress.http({ url: 'https://example.com', body: 'lost' });
      // @ts-expect-error no destination is named `smtp`
      response.locals.egress.smtp({ to: 'owner@example.com' });
    };
    expect(typeof typeChecks).toBe('function');
  });

  test('a streamed answer ends only after the commit, and is cut off when the store refuses it', async () => {
    const whole = await post('/stream', 'express-stream');
    expect(await whole.text()).toBe('first part\nlast part\n');
    expect(watched.enqueuedFor('express-stream')).toBe(2);
    watched.control.refusing = true;
    try {
      const cut = await post('/stream', 'express-stream-refused');
      await expect(cut.text()).rejects.toThrow();
    } finally {
      watched.control.refusing = false;
    }
    await egress.flush({ timeout: '10s' });
    expect(receiver.steps('express-stream')).toEqual(['handler', 'helper']);
    expect(receiver.steps('express-stream-refused')).toEqual([]);
  });
});
