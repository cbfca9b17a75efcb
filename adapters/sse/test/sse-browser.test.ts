import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { createSubscriberToken, sse, type SseDestination } from '@egress/sse';
import { eventually, publish, range, startServer } from './helpers.js';

const chromiumPath = '/usr/bin/chromium';
const chromiumPresent = existsSync(chromiumPath);
if (!chromiumPresent && !process.env.CI) {
  console.warn(`[sse] browser tests skipped: ${chromiumPath} is missing (install it with: apt-get install -y chromium)`);
}

const secret = 'a-signing-secret-of-at-least-32-characters';

describe.skipIf(!chromiumPresent && !process.env.CI)('a page in headless Chromium subscribing with EventSource', () => {
  let browser: Browser;
  let page: Page;
  let pageOrigin: string;
  let otherOrigin: string;
  const closers: (() => Promise<void> | void)[] = [];

  beforeAll(async () => {
    if (!chromiumPresent) throw new Error(`${chromiumPath} is missing: CI must install Debian's chromium package (apt-get install -y chromium)`);
    browser = await chromium.launch({
      executablePath: chromiumPath,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
    const pages = await startServer((_request, response) => response.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>subscriber</title>'));
    const other = await startServer((_request, response) => response.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>elsewhere</title>'));
    closers.push(() => pages.close(), () => other.close());
    pageOrigin = pages.url;
    otherOrigin = other.url.replace('127.0.0.1', 'localhost');
    page = await browser.newPage();
    await page.goto(pageOrigin);
  });

  afterAll(async () => {
    await browser?.close();
    for (const close of closers) await close();
  });

  const streams: (() => Promise<void>)[] = [];
  afterEach(async () => {
    await page.evaluate(() => (globalThis as unknown as { source?: EventSource }).source?.close());
    while (streams.length > 0) await streams.pop()!();
  });

  async function stream(destination: SseDestination) {
    const server = await startServer(destination.handler);
    streams.push(() => server.close(), async () => destination.stop?.());
    return server;
  }

  /** Opens an EventSource in the page that records each event of the given channels. */
  async function openInPage(url: string, channels: readonly string[]) {
    await page.evaluate(
      ({ url, channels }) => {
        const state = globalThis as unknown as { source: EventSource; received: { channel: string; n: number; id: string }[]; failed: boolean };
        state.received = [];
        state.failed = false;
        state.source = new EventSource(url);
        for (const channel of channels) {
          state.source.addEventListener(channel, (event) => {
            const message = event as unknown as { data: string; lastEventId: string };
            state.received.push({ channel, n: (JSON.parse(message.data) as { n: number }).n, id: message.lastEventId });
          });
        }
        state.source.addEventListener('error', () => {
          if (state.source.readyState === EventSource.CLOSED) state.failed = true;
        });
      },
      { url, channels },
    );
  }

  const received = () => page.evaluate(() => (globalThis as unknown as { received: { channel: string; n: number; id: string }[] }).received);
  const failed = () => page.evaluate(() => (globalThis as unknown as { failed: boolean }).failed);

  test('receives the replay and live events of its channels with a signed query token, across origins', async () => {
    const destination = sse({ auth: { secret }, corsOrigins: [pageOrigin], replay: 2, reconnectDelay: 1000 });
    const server = await stream(destination);
    await publish(destination, 'orders', range(0, 3).map((n) => ({ n })));
    await publish(destination, 'admin', [{ n: 99 }]);
    const token = createSubscriberToken({ secret, channels: ['orders'], expiresIn: '2m' });
    await openInPage(`${server.url}/?token=${encodeURIComponent(token)}`, ['orders', 'admin']);
    await eventually(async () => (await received()).length === 2);
    expect((await received()).map((event) => event.n)).toEqual([1, 2]);

    await publish(destination, 'orders', [{ n: 3 }]);
    await publish(destination, 'admin', [{ n: 100 }]);
    await eventually(async () => (await received()).length === 3);

    // The browser reconnects by itself and sends Last-Event-ID: nothing is missed or repeated.
    server.server.closeAllConnections();
    await eventually(() => destination.subscriberCount === 0);
    await publish(destination, 'orders', [{ n: 4 }, { n: 5 }]);
    await eventually(async () => (await received()).length === 5);
    const events = await received();
    expect(events.map((event) => event.n)).toEqual([1, 2, 3, 4, 5]);
    expect(events.every((event) => event.channel === 'orders')).toBe(true);
    expect(new Set(events.map((event) => event.id)).size).toBe(5);
  });

  test('fails to connect with an expired token', async () => {
    const destination = sse({ auth: { secret }, corsOrigins: [pageOrigin] });
    const server = await stream(destination);
    const expired = createSubscriberToken({ secret, expiresIn: 1000, now: Date.now() - 10_000 });
    await openInPage(`${server.url}/?token=${encodeURIComponent(expired)}`, ['orders']);
    await eventually(failed);
    expect(destination.subscriberCount).toBe(0);
  });

  test('cannot read a stream from an origin that is not allowed', async () => {
    const destination = sse({ corsOrigins: [pageOrigin] });
    const server = await stream(destination);
    await publish(destination, 'orders', [{ n: 1 }]);
    await page.goto(otherOrigin);
    try {
      await openInPage(server.url, ['orders']);
      await eventually(failed);
      expect(await received()).toEqual([]);
    } finally {
      await page.goto(pageOrigin);
    }
  });
});
