import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import { describe, expect, test } from 'vitest';
import { EgressConfigurationError } from '@egress/core';
import { egressMiddleware } from '@egress/middleware/koa';
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
