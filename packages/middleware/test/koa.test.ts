import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { EgressConfigurationError } from '@egress/core';
import { egressMiddleware } from '@egress/middleware/koa';
import { createTestEgress, startReceiver, watchedStore, type TestEgress } from './request-harness.js';
import { describeRequestUnits } from './request-unit-suite.js';

async function readTag(request: Koa.Request): Promise<string> {
  let body = '';
  for await (const chunk of request.req) body += String(chunk);
  return (JSON.parse(body) as { tag: string }).tag;
}

describeRequestUnits('koa', async ({ egress, shop, options }) => {
  const app = new Koa();
  app.silent = true;
  app.use(egressMiddleware(egress, options));
  app.use(async (ctx) => {
    const tag = await readTag(ctx.request);
    await shop.order(ctx.egress, tag);
    if (ctx.path === '/orders/fail') throw new Error('payment declined');
    if (ctx.path === '/orders/mixed' && Number(tag.split('-').at(-1)) % 2 === 1) throw new Error('payment declined');
    ctx.status = ctx.path === '/orders/unavailable' ? 503 : ctx.path === '/orders/missing' ? 404 : 201;
    ctx.body = { ok: ctx.status < 400 };
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
});

describe('koa: options', () => {
  test('refuses a commitOn that is not a function when the middleware is created', () => {
    const egress = { run: async () => undefined } as never;
    expect(() => egressMiddleware(egress, { commitOn: 'below 500' as never })).toThrow(EgressConfigurationError);
    expect(() => egressMiddleware(egress, { commitOn: 'below 500' as never })).toThrow('[koa] options.commitOn: expected a function (status) => boolean, got string');
    expect(() => egressMiddleware({} as never)).toThrow('[koa] egress: expected the Egress instance returned by createEgress');
  });
});

describe('koa: ctx.egress called from outside the request’s async context', () => {
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let egress: TestEgress;
  let server: ReturnType<Koa['listen']>;
  let url: string;
  // Work queued by the handler and run by a timer the application started before any request:
  // its callbacks run in the start-up's async context, not the request's.
  const queue: (() => void)[] = [];
  const drainer = setInterval(() => queue.splice(0).forEach((work) => work()), 2);

  beforeAll(async () => {
    receiver = await startReceiver();
    egress = createTestEgress(watchedStore().store);
    const app = new Koa();
    app.silent = true;
    app.use(egressMiddleware(egress));
    app.use(async (ctx) => {
      const tag = ctx.query.tag as string;
      await new Promise<void>((resolve) =>
        queue.push(() => {
          ctx.egress.http({ url: receiver.url, data: { tag, step: 'handler' } });
          resolve();
        }),
      );
      if (ctx.query.fail) throw new Error('payment declined');
      ctx.status = 201;
    });
    server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    clearInterval(drainer);
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await egress.close();
    await receiver.close();
  });

  test('still joins its own unit: committed with a 201, discarded with a thrown error', async () => {
    expect((await fetch(`${url}/?tag=outside-kept`)).status).toBe(201);
    expect((await fetch(`${url}/?tag=outside-dropped&fail=1`)).status).toBe(500);
    await egress.flush({ timeout: '10s' });
    expect(receiver.steps('outside-kept')).toEqual(['handler']);
    expect(receiver.steps('outside-dropped')).toEqual([]);
  });
});
