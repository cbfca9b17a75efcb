import { connect } from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { sse, subscribe } from '@egress/sse';
import { eventually, numbersOf, publish, range, startServer, take } from './helpers.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

const bulky = 'x'.repeat(32 * 1024);

describe('sse slow subscribers', () => {
  test('a subscriber that stops reading is disconnected once its buffer passes the bound, and can resume by id', async () => {
    const destination = sse({ replay: 0, subscriberBuffer: '64KiB', windowBytes: '64MiB', windowEvents: 5000 });
    const server = await startServer(destination.handler);
    cleanups.push(() => server.close(), () => destination.stop?.());

    // A healthy subscriber on the same stream keeps receiving everything.
    const controller = new AbortController();
    cleanups.push(() => controller.abort());
    const healthy = subscribe(server.url, { signal: controller.signal, channels: ['small'] });
    const healthyFirst = take(healthy, 1);

    const { port } = new URL(server.url);
    const socket = connect(Number(port), '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    let received = '';
    socket.once('data', (chunk) => {
      received += chunk.toString('latin1');
      // Stop reading: from now on everything piles up in kernel buffers, then in the server's.
      socket.pause();
    });
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.write('GET /?channel=big&channel=small HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n');
    await eventually(() => destination.subscriberCount === 2);
    await publish(destination, 'small', [{ n: 0 }]);
    const [beforeBig] = await healthyFirst;
    expect(numbersOf([beforeBig!])).toEqual([0]);

    let published = 0;
    while (destination.subscriberCount === 2 && published < 4000) {
      await publish(destination, 'big', range(published, published + 10).map((n) => ({ n, bulky })));
      published += 10;
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(destination.subscriberCount).toBe(1);
    socket.resume();
    await closed;
    expect(received).toContain('HTTP/1.1 200 OK');

    await publish(destination, 'small', [{ n: 1 }]);
    expect(numbersOf(await take(healthy, 1))).toEqual([1]);

    // The cut-off subscriber reconnects after the last id it saw and gets the rest.
    const firstBig = await take(subscribe(server.url, { signal: controller.signal, channels: ['big'], lastEventId: beforeBig!.id }), 3);
    expect(numbersOf(firstBig)).toEqual([0, 1, 2]);
  });

  test('a fetch-style subscriber whose body is not read is disconnected once its queue passes the bound', async () => {
    const destination = sse({ replay: 0, subscriberBuffer: '64KiB', coalesce: 0 });
    cleanups.push(() => destination.stop?.());
    const response = destination.fetch(new Request('http://stream.test/'));
    expect(response.status).toBe(200);
    expect(destination.subscriberCount).toBe(1);
    for (let round = 0; round < 10 && destination.subscriberCount > 0; round += 1) {
      await publish(destination, 'big', [{ n: round, bulky }]);
    }
    expect(destination.subscriberCount).toBe(0);
    const reader = response.body!.getReader();
    await expect((async () => {
      for (;;) if ((await reader.read()).done) return;
    })()).rejects.toThrow('subscriber too slow');
  });
});
