import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { MiddlewareOptions } from '@egress/middleware';
import { createShop, createTestEgress, startReceiver, watchedStore, type Shop, type TestEgress } from './request-harness.js';

/**
 * The application each framework's test serves, every route a POST with a JSON body `{ tag }` that
 * calls `shop.order($send, tag)` and then:
 * - `/orders` answers 201;
 * - `/orders/fail` throws an Error;
 * - `/orders/unavailable` answers 503;
 * - `/orders/missing` answers 404;
 * - `/orders/mixed` throws when the tag ends in an odd number, answers 201 otherwise.
 */
export type StartApp = (context: { egress: TestEgress; shop: Shop; options: MiddlewareOptions | undefined }) => Promise<{ url: string; close(): Promise<void> }>;

/** The behaviour every integration promises, checked over real HTTP against a real receiver. */
export function describeRequestUnits(framework: string, start: StartApp): void {
  describe(`${framework}: one unit of work per request`, () => {
    let receiver: Awaited<ReturnType<typeof startReceiver>>;
    let watched: ReturnType<typeof watchedStore>;
    let egress: TestEgress;
    let app: Awaited<ReturnType<StartApp>>;
    let strictApp: Awaited<ReturnType<StartApp>>;
    let requests = 0;

    beforeAll(async () => {
      receiver = await startReceiver();
      watched = watchedStore();
      egress = createTestEgress(watched.store);
      const shop = createShop(egress, receiver.url);
      app = await start({ egress, shop, options: undefined });
      strictApp = await start({ egress, shop, options: { commitOn: (status) => status < 400 } });
    });

    afterAll(async () => {
      await app?.close();
      await strictApp?.close();
      await egress?.close();
      await receiver?.close();
    });

    const newTag = (suffix: number | string = '') => `${framework}-${(requests += 1)}-${suffix}`;
    const post = (base: string, path: string, tag: string) =>
      fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ tag }) });
    // The body comes in two packets, so that the framework reads it from socket events that fire
    // outside the request's async context.
    const postInTwoParts = (base: string, path: string, tag: string) =>
      new Promise<number>((resolve, reject) => {
        const body = JSON.stringify({ tag });
        const request = httpRequest(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (response) => {
          response.resume();
          response.once('end', () => resolve(response.statusCode ?? 0));
        });
        request.once('error', reject);
        request.flushHeaders();
        request.write(body.slice(0, 5));
        setTimeout(() => request.end(body.slice(5)), 30);
      });
    const arrived = async (tag: string) => {
      await egress.flush({ timeout: '10s' });
      return receiver.steps(tag);
    };

    test('commits the sends of a request answered 201 before the answer arrives, helper included', async () => {
      const tag = newTag();
      const response = await post(app.url, '/orders', tag);
      expect(response.status).toBe(201);
      // In the store already when the client holds the answer: the commit came first.
      expect(watched.enqueuedFor(tag)).toBe(2);
      expect(await arrived(tag)).toEqual(['handler', 'helper']);
    });

    test('delivers nothing for a request whose handler throws', async () => {
      const tag = newTag();
      const response = await post(app.url, '/orders/fail', tag);
      expect(response.status).toBe(500);
      expect(await arrived(tag)).toEqual([]);
      expect(watched.enqueuedFor(tag)).toBe(0);
    });

    test('delivers nothing for a request answered 503', async () => {
      const tag = newTag();
      const response = await post(app.url, '/orders/unavailable', tag);
      expect(response.status).toBe(503);
      expect(await arrived(tag)).toEqual([]);
      expect(watched.enqueuedFor(tag)).toBe(0);
    });

    test('commits a 404 under the default rule and discards it under commitOn: status < 400', async () => {
      const kept = newTag();
      expect((await post(app.url, '/orders/missing', kept)).status).toBe(404);
      const refused = newTag();
      expect((await post(strictApp.url, '/orders/missing', refused)).status).toBe(404);
      expect(await arrived(kept)).toEqual(['handler', 'helper']);
      expect(await arrived(refused)).toEqual([]);
      // The strict rule still commits a 201.
      const committed = newTag();
      expect((await post(strictApp.url, '/orders', committed)).status).toBe(201);
      expect(await arrived(committed)).toEqual(['handler', 'helper']);
    });

    test('50 concurrent interleaved requests each commit or discard only their own sends', async () => {
      const tags = Array.from({ length: 50 }, (_, index) => newTag(index));
      const before = receiver.count();
      const statuses = await Promise.all(tags.map(async (tag) => (await post(app.url, '/orders/mixed', tag)).status));
      expect(statuses).toEqual(tags.map((_, index) => (index % 2 === 1 ? 500 : 201)));
      await egress.flush({ timeout: '10s' });
      for (const [index, tag] of tags.entries()) expect(receiver.steps(tag), tag).toEqual(index % 2 === 1 ? [] : ['handler', 'helper']);
      expect(receiver.count() - before).toBe(50);
    });

    test('a body read after the middleware keeps the helper inside the request’s unit', async () => {
      const committed = newTag(2);
      const discarded = newTag(1);
      expect(await postInTwoParts(app.url, '/orders/mixed', committed)).toBe(201);
      expect(await postInTwoParts(app.url, '/orders/mixed', discarded)).toBe(500);
      expect(await arrived(committed)).toEqual(['handler', 'helper']);
      expect(await arrived(discarded)).toEqual([]);
    });

    test('answers 500 instead of claiming success when the store refuses the commit, and commits again once it takes writes', async () => {
      const refused = newTag();
      watched.control.refusing = true;
      let status: number;
      try {
        status = (await post(app.url, '/orders', refused)).status;
      } finally {
        watched.control.refusing = false;
      }
      expect(status).toBe(500);
      const committed = newTag();
      expect((await post(app.url, '/orders', committed)).status).toBe(201);
      expect(await arrived(committed)).toEqual(['handler', 'helper']);
      expect(await arrived(refused)).toEqual([]);
    });
  });
}
