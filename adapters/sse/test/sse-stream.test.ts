import { connect } from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { silentLogger } from '@egress/core';
import { sse, subscribe, type SseDestination, type SseEvent } from '@egress/sse';
import { batchOf, eventually, numbersOf, publish, range, readRaw, startServer, take } from './helpers.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function serve(destination: SseDestination) {
  const server = await startServer(destination.handler);
  cleanups.push(() => server.close(), () => destination.stop?.());
  return server;
}

function open(url: string, options: Parameters<typeof subscribe>[1] = {}) {
  const controller = new AbortController();
  cleanups.push(() => controller.abort());
  return subscribe(url, { ...options, signal: controller.signal });
}

describe('sse stream', () => {
  test('a new subscriber receives the 100 most recent events, then live ones', async () => {
    const destination = sse();
    const { url } = await serve(destination);
    await publish(destination, 'orders', range(0, 150).map((n) => ({ n })));
    const events = open(url);
    const replayed = await take(events, 100);
    expect(numbersOf(replayed)).toEqual(range(50, 150));
    expect(replayed.every((event) => event.channel === 'orders')).toBe(true);
    await publish(destination, 'orders', [{ n: 150 }, { n: 151 }]);
    expect(numbersOf(await take(events, 2))).toEqual([150, 151]);
  });

  test('the replay length is configurable, and ids increase by one per event', async () => {
    const destination = sse({ replay: 3 });
    const { url } = await serve(destination);
    await publish(destination, 'a', range(0, 10).map((n) => ({ n })));
    const events = open(url);
    const replayed = await take(events, 3);
    expect(numbersOf(replayed)).toEqual([7, 8, 9]);
    const sequences = replayed.map((event) => Number(event.id.split('-').at(-1)));
    expect(sequences).toEqual([8, 9, 10]);
  });

  test('writes the channel as the SSE event field and the payload as JSON data', async () => {
    const destination = sse();
    const { url } = await serve(destination);
    await publish(destination, 'orders.created', [{ id: 7, text: 'line one\nline two' }, 'plain text']);
    const { text } = await readRaw(url, (received) => received.includes('plain text'));
    expect(text).toMatch(/^retry: 3000\n\n/);
    expect(text).toMatch(/id: [0-9a-z]+-1\nevent: orders\.created\ndata: \{"id":7,"text":"line one\\nline two"\}\n\n/);
    expect(text).toMatch(/id: [0-9a-z]+-2\nevent: orders\.created\ndata: "plain text"\n\n/);
  });

  test('resumes exactly after Last-Event-ID: nothing missed, nothing repeated', async () => {
    const destination = sse({ replay: 0 });
    const { url } = await serve(destination);
    const controller = new AbortController();
    const first = subscribe(url, { signal: controller.signal });
    const pending = take(first, 5);
    await eventually(() => destination.subscriberCount === 1);
    await publish(destination, 'a', range(0, 5).map((n) => ({ n })));
    const seen = await pending;
    controller.abort();
    await eventually(() => destination.subscriberCount === 0);
    await publish(destination, 'a', range(5, 8).map((n) => ({ n })));
    await publish(destination, 'b', [{ n: 8 }]);

    const resumed = open(url, { lastEventId: seen[2]!.id });
    expect(numbersOf(await take(resumed, 6))).toEqual([3, 4, 5, 6, 7, 8]);
    await publish(destination, 'a', [{ n: 9 }]);
    expect(numbersOf(await take(resumed, 1))).toEqual([9]);
  });

  test('takes the resume point from the lastEventId query parameter for clients that cannot set headers', async () => {
    const destination = sse();
    const { url } = await serve(destination);
    await publish(destination, 'a', range(0, 6).map((n) => ({ n })));
    const all = await take(open(url), 6);
    const events = open(`${url}/?lastEventId=${encodeURIComponent(all[3]!.id)}`);
    expect(numbersOf(await take(events, 2))).toEqual([4, 5]);
  });

  test('signals with egress-reset how much was lost when the id fell out of the replay window', async () => {
    const destination = sse({ replay: 2, windowEvents: 5 });
    const { url } = await serve(destination);
    await publish(destination, 'a', range(0, 3).map((n) => ({ n })));
    const early = await take(open(url), 2);
    await publish(destination, 'a', range(3, 10).map((n) => ({ n })));
    const resumed = open(url, { lastEventId: early[0]!.id });
    const [reset, ...rest] = await take(resumed, 6);
    expect(reset!.channel).toBe('egress-reset');
    expect(reset!.data).toMatchObject({ reason: 'expired', lastEventId: early[0]!.id, missed: 3 });
    expect(numbersOf(rest)).toEqual([5, 6, 7, 8, 9]);
  });

  test('bounds the replay window by bytes as well as by events', async () => {
    const destination = sse({ replay: 1000, windowEvents: 1000, windowBytes: 10_000 });
    const { url } = await serve(destination);
    const text = 'x'.repeat(1000);
    await publish(destination, 'a', range(0, 100).map((n) => ({ n, text })));
    const { text: raw } = await readRaw(url, (received) => received.includes('"n":99'));
    const replayed = [...raw.matchAll(/"n":(\d+)/g)].map((match) => Number(match[1]));
    expect(replayed.at(-1)).toBe(99);
    expect(replayed.length).toBeLessThanOrEqual(10);
    expect(replayed).toEqual(range(100 - replayed.length, 100));
  });

  test('signals egress-reset for an id from another stream, such as one before a restart', async () => {
    const before = sse();
    const { url: oldUrl } = await serve(before);
    await publish(before, 'a', [{ n: 0 }]);
    const [old] = await take(open(oldUrl), 1);
    const after = sse();
    const { url } = await serve(after);
    await publish(after, 'a', [{ n: 1 }]);
    const [reset, next] = await take(open(url, { lastEventId: old!.id }), 2);
    expect(reset!.data).toMatchObject({ reason: 'unknown', missed: null });
    expect(numbersOf([next!])).toEqual([1]);
  });

  test('a retried delivery of the same events is published once', async () => {
    const destination = sse();
    const { url } = await serve(destination);
    const batch = batchOf([{ channel: 'a', payload: { n: 0 } }, { channel: 'a', payload: { n: 1 } }]);
    const context = { signal: new AbortController().signal, logger: silentLogger };
    await destination.deliver(batch, context);
    await destination.deliver(batch, context);
    await publish(destination, 'a', [{ n: 2 }]);
    const events = await take(open(url), 3);
    expect(numbersOf(events)).toEqual([0, 1, 2]);
  });

  test('a subscriber may take only some channels with ?channel=', async () => {
    const destination = sse();
    const { url } = await serve(destination);
    await publish(destination, 'a', [{ n: 0 }]);
    await publish(destination, 'b', [{ n: 1 }]);
    await publish(destination, 'c', [{ n: 2 }]);
    const filtered = open(url, { channels: ['a', 'c'] });
    const replayed = await take(filtered, 2);
    expect(replayed.map((event) => event.channel)).toEqual(['a', 'c']);
    await publish(destination, 'b', [{ n: 3 }]);
    await publish(destination, 'c', [{ n: 4 }]);
    const [live] = await take(filtered, 1);
    expect(live).toMatchObject({ channel: 'c', data: { n: 4 } });
  });

  test('a busy stream writes events together, and a subscriber joining meanwhile gets each event once', async () => {
    const destination = sse({ coalesce: 300 });
    const { url } = await serve(destination);
    const early = open(url);
    const earlyEvents = take(early, 4);
    await eventually(() => destination.subscriberCount === 1);
    await publish(destination, 'a', [{ n: 1 }]);
    await publish(destination, 'a', [{ n: 2 }]);
    await publish(destination, 'a', [{ n: 3 }]);
    // 2 and 3 now wait to be written; the new subscriber's replay already holds them.
    const late = open(url);
    const lateEvents = take(late, 4);
    await eventually(() => destination.subscriberCount === 2);
    await new Promise((resolve) => setTimeout(resolve, 400));
    await publish(destination, 'a', [{ n: 4 }]);
    expect(numbersOf(await earlyEvents)).toEqual([1, 2, 3, 4]);
    expect(numbersOf(await lateEvents)).toEqual([1, 2, 3, 4]);
    await publish(destination, 'a', [{ n: 5 }]);
    expect(numbersOf(await take(late, 1))).toEqual([5]);
  });

  test('a quiet stream writes a delivery at once; deliveries within the interval go to each subscriber in one write, the same bytes for all', async () => {
    const destination = sse({ replay: 0, coalesce: '1h' });
    cleanups.push(() => destination.stop?.());
    const readers = [destination.fetch(new Request('http://stream.test/')), destination.fetch(new Request('http://stream.test/'))].map((response) => response.body!.getReader());
    const writes = readers.map(() => [] as Uint8Array[]);
    const collected = readers.map(async (reader, index) => {
      for (let result = await reader.read(); !result.done; result = await reader.read()) writes[index]!.push(result.value);
    });
    await publish(destination, 'a', [{ n: 1 }]);
    await publish(destination, 'a', [{ n: 2 }]);
    await publish(destination, 'a', [{ n: 3 }]);
    // Nothing forces the interval to end but stop(), which writes what waits before ending the streams.
    await destination.stop?.();
    await Promise.all(collected);
    const texts = writes.map((chunks) => chunks.map((chunk) => new TextDecoder().decode(chunk)));
    for (const text of texts) {
      expect(text).toHaveLength(3);
      expect(text[0]).toMatch(/^retry: /);
      expect(text[1]).toMatch(/^id: \S+-1\nevent: a\ndata: \{"n":1\}\n\n$/);
      expect(text[2]).toMatch(/^id: \S+-2\nevent: a\ndata: \{"n":2\}\n\nid: \S+-3\nevent: a\ndata: \{"n":3\}\n\n$/);
    }
    expect(writes[0]![2]).toBe(writes[1]![2]);
  });

  test('the body is the bare SSE bytes, without chunked framing, and ends with the connection', async () => {
    const destination = sse({ replay: 0 });
    const { url } = await serve(destination);
    const socket = connect(Number(new URL(url).port), '127.0.0.1');
    let received = '';
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
    });
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n');
    await eventually(() => destination.subscriberCount === 1);
    await publish(destination, 'a', [{ n: 1 }]);
    await publish(destination, 'a', [{ n: 2 }]);
    await eventually(() => received.includes('{"n":2}'));
    await destination.stop?.();
    await closed;
    const [head, body] = received.split('\r\n\r\n') as [string, string];
    expect(head.toLowerCase()).toContain('\r\nconnection: close');
    expect(head.toLowerCase()).not.toContain('transfer-encoding');
    expect(body).toMatch(/^retry: 3000\n\nid: [0-9a-z]+-1\nevent: a\ndata: \{"n":1\}\n\nid: [0-9a-z]+-2\nevent: a\ndata: \{"n":2\}\n\n$/);
  });

  test('sends a :keepalive comment at the configured interval', async () => {
    const destination = sse({ keepalive: 50 });
    const { url } = await serve(destination);
    const { text } = await readRaw(url, (received) => received.split(':keepalive\n\n').length > 2);
    expect(text.split(':keepalive\n\n').length).toBeGreaterThan(2);
  });

  test('the client reconnects after a dropped connection and resumes without gaps', async () => {
    const destination = sse({ replay: 0, reconnectDelay: 1000 });
    const { url, server } = await serve(destination);
    const events = open(url);
    const pending = take(events, 3);
    await eventually(() => destination.subscriberCount === 1);
    await publish(destination, 'a', range(0, 3).map((n) => ({ n })));
    expect(numbersOf(await pending)).toEqual([0, 1, 2]);
    server.closeAllConnections();
    await eventually(() => destination.subscriberCount === 0);
    await publish(destination, 'a', range(3, 6).map((n) => ({ n })));
    expect(numbersOf(await take(events, 3))).toEqual([3, 4, 5]);
  });

  test('listen() serves the stream standalone and stop() closes it', async () => {
    const destination = sse({ path: '/events' });
    const address = await destination.listen(0, '127.0.0.1');
    expect(address.url).toBe(`http://127.0.0.1:${address.port}/events`);
    await publish(destination, 'a', [{ n: 1 }]);
    const received: SseEvent[] = [];
    const controller = new AbortController();
    for await (const event of subscribe(address.url, { signal: controller.signal, reconnect: false })) {
      received.push(event);
      break;
    }
    expect(numbersOf(received)).toEqual([1]);
    expect((await readRaw(`http://127.0.0.1:${address.port}/other`, () => true)).status).toBe(404);
    await destination.stop?.();
    await expect(fetch(address.url)).rejects.toThrow();
  });

  test('stop() ends the streams of subscribers on a mounted handler', async () => {
    const destination = sse();
    const { url } = await serve(destination);
    const events = subscribe(url, { reconnect: false });
    const pending = events.next();
    await eventually(() => destination.subscriberCount === 1);
    await destination.stop?.();
    expect((await pending).done).toBe(true);
    const refused = await readRaw(url, () => true);
    expect(refused.status).toBe(503);
  });
});
