import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { egressMiddleware } from '@egress/middleware/hono';
import { describeRequestUnits } from './request-unit-suite.js';

describeRequestUnits('hono', async ({ egress, shop, options }) => {
  const app = new Hono().use(egressMiddleware(egress, options));
  app.onError((_error, c) => c.text('Internal Server Error', 500));
  app.post('/orders/:outcome?', async (c) => {
    const { tag } = await c.req.json<{ tag: string }>();
    // c.var.egress and c.get('egress') are the same, typed from the instance.
    await shop.order(c.var.egress, tag);
    const outcome = c.req.param('outcome');
    if (outcome === 'fail') throw new Error('payment declined');
    if (outcome === 'mixed' && Number(tag.split('-').at(-1)) % 2 === 1) throw new Error('payment declined');
    if (outcome === 'unavailable') return c.json({ ok: false }, 503);
    if (outcome === 'missing') return c.json({ ok: false }, 404);
    c.get('egress').http satisfies (typeof c.var.egress)['http'];
    return c.json({ ok: true }, 201);
  });
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const started = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(started));
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
});
