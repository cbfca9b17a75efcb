import type { AddressInfo } from 'node:net';
import { serve as serveHono } from '@hono/node-server';
import { EventSource } from 'eventsource';
import express from 'express';
import Fastify from 'fastify';
import { Hono } from 'hono';
import { afterEach, describe, expect, test } from 'vitest';
import { createSubscriberToken, sse, subscribe, type SseDestination } from '@egress/sse';
import { eventually, numbersOf, publish, range, startServer, take } from './helpers.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

/** Subscribes with our client, checks replay and a live event, then checks the server notices the disconnect. */
async function expectStreamWorks(destination: SseDestination, url: string) {
  await publish(destination, 'orders', [{ n: 0 }, { n: 1 }]);
  const controller = new AbortController();
  cleanups.push(() => controller.abort());
  const events = subscribe(url, { signal: controller.signal, channels: ['orders'] });
  expect(numbersOf(await take(events, 2))).toEqual([0, 1]);
  await publish(destination, 'orders', [{ n: 2 }]);
  expect(numbersOf(await take(events, 1))).toEqual([2]);
  controller.abort();
  await eventually(() => destination.subscriberCount === 0);
}

describe('mounting the sse handler', () => {
  test('in node:http', async () => {
    const destination = sse();
    cleanups.push(() => destination.stop?.());
    const server = await startServer((request, response) => {
      if (request.url?.startsWith('/events')) destination.handler(request, response);
      else response.writeHead(404).end();
    });
    cleanups.push(() => server.close());
    await expectStreamWorks(destination, `${server.url}/events`);
  });

  test('in Express', async () => {
    const destination = sse();
    cleanups.push(() => destination.stop?.());
    const app = express();
    app.get('/events', destination.handler);
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    cleanups.push(() => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }));
    await expectStreamWorks(destination, `http://127.0.0.1:${(server.address() as AddressInfo).port}/events`);
  });

  test('in Fastify, with the reply hijacked', async () => {
    const destination = sse();
    cleanups.push(() => destination.stop?.());
    // Streams are long-lived: close() must not wait for them to end on their own.
    const app = Fastify({ forceCloseConnections: true });
    app.get('/events', (request, reply) => {
      reply.hijack();
      destination.handler(request.raw, reply.raw);
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    cleanups.push(async () => {
      await destination.stop?.();
      await app.close();
    });
    await expectStreamWorks(destination, `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/events`);
  });

  test('in Hono, through the fetch-style handler', async () => {
    const destination = sse();
    cleanups.push(() => destination.stop?.());
    const app = new Hono();
    app.get('/events', (context) => destination.fetch(context.req.raw));
    const server = await new Promise<ReturnType<typeof serveHono>>((resolve) => {
      const started = serveHono({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(started));
    });
    cleanups.push(() => new Promise<void>((resolve) => {
      server.close(() => resolve());
      (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
    }));
    await expectStreamWorks(destination, `http://127.0.0.1:${(server.address() as AddressInfo).port}/events`);
  });
});

describe('the eventsource package as a subscriber', () => {
  test('receives events per channel, reconnects and resumes with Last-Event-ID', async () => {
    const secret = 'a-signing-secret-of-at-least-32-characters';
    const destination = sse({ replay: 0, reconnectDelay: 1000, auth: { secret } });
    const server = await startServer(destination.handler);
    cleanups.push(() => server.close(), () => destination.stop?.());
    const token = createSubscriberToken({ secret, channels: ['orders', 'refunds'], expiresIn: '1m' });
    const source = new EventSource(`${server.url}/?token=${encodeURIComponent(token)}`);
    cleanups.push(() => source.close());
    const orders: number[] = [];
    const refunds: number[] = [];
    const ids: string[] = [];
    source.addEventListener('orders', (event) => {
      orders.push((JSON.parse(event.data) as { n: number }).n);
      ids.push(event.lastEventId);
    });
    source.addEventListener('refunds', (event) => refunds.push((JSON.parse(event.data) as { n: number }).n));
    await new Promise((resolve) => source.addEventListener('open', resolve, { once: true }));
    await publish(destination, 'orders', range(0, 3).map((n) => ({ n })));
    await publish(destination, 'refunds', [{ n: 100 }]);
    await eventually(() => orders.length === 3 && refunds.length === 1);

    server.server.closeAllConnections();
    await eventually(() => destination.subscriberCount === 0);
    await publish(destination, 'orders', range(3, 6).map((n) => ({ n })));
    await eventually(() => orders.length === 6);
    expect(orders).toEqual(range(0, 6));
    expect(refunds).toEqual([100]);
    expect(new Set(ids).size).toBe(6);
  });
});
