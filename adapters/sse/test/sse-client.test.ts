import { afterEach, describe, expect, test } from 'vitest';
import { subscribe } from '@egress/sse';
import { startServer, take } from './helpers.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

describe('the subscribe() client', () => {
  test('reconnects when the stream goes silent and resumes with Last-Event-ID', async () => {
    const seenLastEventIds: (string | undefined)[] = [];
    const server = await startServer((request, response) => {
      seenLastEventIds.push(request.headers['last-event-id'] as string | undefined);
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      const lastEventId = request.headers['last-event-id'] as string | undefined;
      const next = lastEventId === undefined ? 1 : Number(lastEventId.slice(2)) + 1;
      // Each connection sends one event, then says nothing more, as a half-dead connection would.
      response.write(`retry: 10\n\nid: s-${next}\nevent: ticks\ndata: {"n":${next}}\n\n`);
    });
    cleanups.push(() => server.close());
    const controller = new AbortController();
    cleanups.push(() => controller.abort());
    const events = await take(subscribe(server.url, { signal: controller.signal, idleTimeout: 300 }), 3);
    expect(events).toEqual([
      { id: 's-1', channel: 'ticks', data: { n: 1 } },
      { id: 's-2', channel: 'ticks', data: { n: 2 } },
      { id: 's-3', channel: 'ticks', data: { n: 3 } },
    ]);
    // A loaded machine may let the idle timer fire before an event; such a retry repeats its id.
    expect(seenLastEventIds[0]).toBeUndefined();
    expect([...new Set(seenLastEventIds)].slice(0, 3)).toEqual([undefined, 's-1', 's-2']);
  });

  test('retries a server error with backoff, then gives up after maxAttempts with the reason', async () => {
    let attempts = 0;
    const server = await startServer((_request, response) => {
      attempts += 1;
      response.writeHead(502, { 'content-type': 'text/plain' }).end('upstream down');
    });
    cleanups.push(() => server.close());
    const iteration = subscribe(server.url, { reconnect: { initialDelay: 5, maxAttempts: 3 } });
    await expect(iteration.next()).rejects.toThrow(/after 3 attempt\(s\).*502: upstream down/);
    expect(attempts).toBe(3);
  });

  test('ends quietly when the signal is aborted', async () => {
    const server = await startServer((_request, response) => {
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      response.write(': open\n\n');
    });
    cleanups.push(() => server.close());
    const controller = new AbortController();
    const iteration = subscribe(server.url, { signal: controller.signal });
    const next = iteration.next();
    setTimeout(() => controller.abort(), 50);
    expect(await next).toEqual({ done: true, value: undefined });
  });

  test('passes non-JSON data through as text', async () => {
    const server = await startServer((_request, response) => {
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      response.end('id: 1\ndata: hello\n\n');
    });
    cleanups.push(() => server.close());
    const [event] = await take(subscribe(server.url, { reconnect: false }), 1);
    expect(event).toEqual({ id: '1', channel: 'message', data: 'hello' });
  });
});
