import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { describe, expect, test } from 'vitest';
import { EgressConfigurationError } from '@egress/core';
import { withEgress } from '@egress/middleware/fetch';
import { describeRequestUnits } from './request-unit-suite.js';

describeRequestUnits('fetch', async ({ egress, shop, options }) => {
  // A fetch-style handler (Request → Response), as a Next.js route handler or Bun.serve takes it,
  // served over node:http by @hono/node-server; a thrown error becomes its 500.
  const handler = withEgress(
    egress,
    async (request, $send) => {
      const { tag } = (await request.json()) as { tag: string };
      await shop.order($send, tag);
      const { pathname } = new URL(request.url);
      if (pathname === '/orders/fail') throw new Error('payment declined');
      if (pathname === '/orders/mixed' && Number(tag.split('-').at(-1)) % 2 === 1) throw new Error('payment declined');
      if (pathname === '/orders/unavailable') return Response.json({ ok: false }, { status: 503 });
      if (pathname === '/orders/missing') return Response.json({ ok: false }, { status: 404 });
      return Response.json({ ok: true }, { status: 201 });
    },
    options,
  );
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const started = serve({ fetch: (request) => handler(request).catch(() => new Response('Internal Server Error', { status: 500 })), port: 0, hostname: '127.0.0.1' }, () => resolve(started));
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
});

describe('fetch: the wrapper', () => {
  test('passes the host’s further arguments after $send, as a Next.js route handler receives its context', async () => {
    const egress = { run: async (fn: (send: object) => unknown) => fn({}) } as never;
    const handler = withEgress(egress, async (_request, _send, context: { params: Promise<{ id: string }> }) => new Response((await context.params).id));
    const response = await handler(new Request('http://localhost/orders/7'), { params: Promise.resolve({ id: '7' }) });
    expect(await response.text()).toBe('7');
  });

  test('refuses a handler that is not a function when it is created', () => {
    const egress = { run: async () => undefined } as never;
    expect(() => withEgress(egress, 'handler' as never)).toThrow(EgressConfigurationError);
  });
});
