import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { PermanentError, RetryableError } from '@egress/core';
import { describe, expect, test } from 'vitest';
import { HttpStatusError, http } from '../src/index.js';
import { batchOf, deliveryContext, rejection, useReceiver } from './receiver.js';

const destination = http();
const receiver = useReceiver({ keepAnswer: true, stop: () => destination.stop?.() });

function send(input: Parameters<typeof batchOf>[0][number], target = destination, signal?: AbortSignal) {
  return target.deliver(batchOf([input]), deliveryContext(signal));
}

/** Makes the receiver answer only after two seconds, longer than any test here waits. */
function answerLate(): void {
  receiver.answer(async (_request, response) => {
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    response.end();
  });
}

/** A signal that aborts with `message` while the request is under way. */
function abortSoon(message: string): AbortSignal {
  const controller = new AbortController();
  setTimeout(() => controller.abort(new Error(message)), 100);
  return controller.signal;
}

describe('http: outcomes', () => {
  test.each([200, 201, 202, 204, 299])('treats %i as delivered', async (status) => {
    receiver.answer((_request, response) => {
      response.statusCode = status;
      response.end(status === 204 ? undefined : 'fine');
    });
    await expect(send({ url: receiver.origin })).resolves.toBeUndefined();
  });

  test.each([408, 429, 500, 502, 503, 504])('retries %i', async (status) => {
    receiver.answer((_request, response) => {
      response.statusCode = status;
      response.end('try later');
    });
    const error = await rejection(send({ url: `${receiver.origin}/x?token=abc` }));
    expect(RetryableError.isInstance(error)).toBe(true);
    expect(error.message).toContain(String(status));
    expect(error.message).not.toContain('token=abc');
  });

  test('honours Retry-After in seconds on a 429', async () => {
    receiver.answer((_request, response) => {
      response.writeHead(429, { 'retry-after': '7' });
      response.end();
    });
    const error = await rejection(send({ url: receiver.origin }));
    expect(RetryableError.isInstance(error) && error.retryAfter).toBe(7000);
  });

  test('honours Retry-After as an HTTP date on a 503', async () => {
    const at = new Date(Date.now() + 60_000);
    receiver.answer((_request, response) => {
      response.writeHead(503, { 'retry-after': at.toUTCString() });
      response.end();
    });
    const error = await rejection(send({ url: receiver.origin }));
    const retryAfter = RetryableError.isInstance(error) ? error.retryAfter : undefined;
    expect(retryAfter).toBeGreaterThan(50_000);
    expect(retryAfter).toBeLessThanOrEqual(60_000);
  });

  test('leaves the delay to the backoff when Retry-After is unreadable', async () => {
    receiver.answer((_request, response) => {
      response.writeHead(503, { 'retry-after': 'soon' });
      response.end();
    });
    const error = await rejection(send({ url: receiver.origin }));
    expect(RetryableError.isInstance(error) && error.retryAfter).toBeUndefined();
  });

  test.each([400, 401, 403, 404, 409, 410, 422])('fails %i permanently with the status and an excerpt of the body', async (status) => {
    receiver.answer((_request, response) => {
      response.statusCode = status;
      response.end(JSON.stringify({ error: 'the email field is invalid' }));
    });
    const error = await rejection(send({ url: receiver.origin }));
    expect(PermanentError.isInstance(error)).toBe(true);
    expect(error.message).toContain(`answered ${status}`);
    expect(error.message).toContain('the email field is invalid');
    expect((error.cause as HttpStatusError).status).toBe(status);
  });

  test('bounds the excerpt of a large error body', async () => {
    receiver.answer((_request, response) => {
      response.statusCode = 400;
      response.end('e'.repeat(200_000));
    });
    const error = await rejection(send({ url: receiver.origin }));
    expect(error.message.length).toBeLessThan(700);
    expect(error.message).toContain('eeee…');
  });

  test('keeps the call\'s secrets out of the excerpt when the receiver echoes them', async () => {
    receiver.answer((request, response) => {
      response.statusCode = 401;
      response.end(`bad credentials: ${request.headers.authorization} / ${request.headers['x-api-key']}`);
    });
    const error = await rejection(send({ url: receiver.origin, auth: { bearer: 'sk_live_bearer_secret' }, headers: { 'x-api-key': 'key-secret-42' } }));
    expect(error.message).toContain('[redacted]');
    expect(error.message).not.toContain('sk_live_bearer_secret');
    expect(error.message).not.toContain('key-secret-42');
  });

  test('does not follow redirects by default and fails permanently', async () => {
    receiver.answer((request, response) => {
      response.writeHead(302, { location: '/elsewhere' });
      response.end();
    });
    const error = await rejection(send({ url: `${receiver.origin}/start` }));
    expect(PermanentError.isInstance(error)).toBe(true);
    expect(error.message).toContain('302');
    expect(receiver.requests.map((request) => request.url)).toEqual(['/start']);
  });

  test('follows redirects when followRedirects allows them', async () => {
    const following = http({ followRedirects: true });
    receiver.answer((request, response) => {
      if (request.url === '/start') response.writeHead(307, { location: '/final' });
      response.end();
    });
    try {
      await send({ url: `${receiver.origin}/start`, data: { n: 1 } }, following);
    } finally {
      await following.stop?.();
    }
    expect(receiver.requests.map((request) => [request.method, request.url, request.body.toString()])).toEqual([
      ['POST', '/start', '{"n":1}'],
      ['POST', '/final', '{"n":1}'],
    ]);
  });

  test('times out a server that does not answer, as a retryable failure', async () => {
    const quick = http({ timeout: 200 });
    answerLate();
    try {
      const error = await rejection(send({ url: receiver.origin }, quick));
      expect(RetryableError.isInstance(error)).toBe(true);
      expect(error.message).toContain('timed out after 200 ms');
    } finally {
      await quick.stop?.();
    }
  });

  test('times out a body that trickles in after quick headers: the deadline runs to the last byte', async () => {
    const quick = http({ timeout: 300 });
    receiver.answer(async (_request, response) => {
      response.writeHead(200);
      for (let index = 0; index < 20 && !response.destroyed; index++) {
        response.write('.');
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      response.end();
    });
    try {
      const error = await rejection(send({ url: receiver.origin }, quick));
      expect(RetryableError.isInstance(error)).toBe(true);
      expect(error.message).toContain('timed out after 300 ms');
    } finally {
      await quick.stop?.();
    }
  });

  test('lets a call set its own timeout over the adapter\'s', async () => {
    const quick = http({ timeout: 100 });
    receiver.answer(async (_request, response) => {
      await new Promise((resolve) => setTimeout(resolve, 300));
      response.end();
    });
    try {
      await expect(send({ url: receiver.origin, timeout: '5s' }, quick)).resolves.toBeUndefined();
      const error = await rejection(send({ url: receiver.origin, timeout: 50 }, destination));
      expect(error.message).toContain('timed out after 50 ms');
    } finally {
      await quick.stop?.();
    }
  });

  test('times out a request still waiting for a connection, without waiting for one, and never sends it', async () => {
    const single = http({ connectionsPerOrigin: 1 });
    let release = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    receiver.answer(async (request, response) => {
      if (request.url === '/held') await held;
      response.end();
    });
    try {
      const first = send({ url: `${receiver.origin}/held` }, single);
      // The only connection is busy with /held until it is released, so /queued waits for it.
      const error = await rejection(send({ url: `${receiver.origin}/queued`, timeout: 100 }, single));
      expect(RetryableError.isInstance(error)).toBe(true);
      expect(error.message).toContain('timed out after 100 ms');
      release();
      await first;
      await send({ url: `${receiver.origin}/after` }, single);
    } finally {
      release();
      await single.stop?.();
    }
    expect(receiver.requests.map((request) => request.url)).toEqual(['/held', '/after']);
  });

  test('counts a success whose body exceeds a mebibyte as delivered, and closes that connection instead of reading on', async () => {
    receiver.answer((request, response) => {
      if (request.url === '/huge') {
        response.writeHead(200, { 'content-length': String(4 * 1024 * 1024) });
        response.end(Buffer.alloc(4 * 1024 * 1024, 'x'));
      } else response.end('ok');
    });
    const fresh = http({ connectionsPerOrigin: 1 });
    try {
      await expect(send({ url: `${receiver.origin}/huge` }, fresh)).resolves.toBeUndefined();
      await send({ url: `${receiver.origin}/next` }, fresh);
    } finally {
      await fresh.stop?.();
    }
    const [huge, next] = receiver.requests;
    expect(next!.remotePort).not.toBe(huge!.remotePort);
  });

  test('keeps the adapter\'s own credential headers out of the excerpt too', async () => {
    const withKey = http({ headers: { 'X-Api-Key': 'adapter-key-secret', authorization: 'Token adapter-token-secret' } });
    receiver.answer((request, response) => {
      response.statusCode = 403;
      response.end(`denied: ${request.headers['x-api-key']} ${request.headers.authorization}`);
    });
    try {
      const error = await rejection(send({ url: receiver.origin }, withKey));
      expect(error.message).toContain('denied: [redacted] [redacted]');
      expect(error.message).not.toContain('adapter-key-secret');
      expect(error.message).not.toContain('adapter-token-secret');
    } finally {
      await withKey.stop?.();
    }
  });

  test('aborts every request of a multi-event delivery when its signal aborts', async () => {
    answerLate();
    const batch = batchOf([{ url: `${receiver.origin}/a` }, { url: `${receiver.origin}/b` }, { url: `${receiver.origin}/c` }]);
    const report = await destination.deliver(batch, deliveryContext(abortSoon('shutting down')));
    expect(report?.failures.map((failure) => failure.eventId)).toEqual(batch.events.map((event) => event.id));
    for (const failure of report?.failures ?? []) {
      expect(RetryableError.isInstance(failure.error)).toBe(true);
      expect((failure.error as Error).message).toContain('aborted: shutting down');
    }
  });

  test('aborts when the delivery signal aborts, as a retryable failure', async () => {
    answerLate();
    const error = await rejection(send({ url: receiver.origin }, destination, abortSoon('delivery timed out')));
    expect(RetryableError.isInstance(error)).toBe(true);
    expect(error.message).toContain('aborted');
  });

  test('retries when the server resets the connection', async () => {
    receiver.answer((_request, _response, raw) => {
      raw.socket.destroy();
    });
    const error = await rejection(send({ url: receiver.origin, data: { n: 1 } }));
    expect(RetryableError.isInstance(error)).toBe(true);
  });

  test('retries when the connection is refused', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const error = await rejection(send({ url: `http://127.0.0.1:${port}/` }));
    expect(RetryableError.isInstance(error)).toBe(true);
    expect(error.message).toContain('ECONNREFUSED');
  });

  test('reports each event of a multi-event batch on its own when sending one request per event', async () => {
    receiver.answer((request, response) => {
      response.statusCode = request.url === '/bad' ? 404 : request.url === '/busy' ? 503 : 200;
      response.end();
    });
    const batch = batchOf([{ url: `${receiver.origin}/ok` }, { url: `${receiver.origin}/bad` }, { url: `${receiver.origin}/busy` }]);
    const report = await destination.deliver(batch, deliveryContext());
    const failures = report?.failures ?? [];
    expect(failures.map((failure) => failure.eventId)).toEqual([batch.events[1]!.id, batch.events[2]!.id]);
    expect(PermanentError.isInstance(failures[0]!.error)).toBe(true);
    expect(RetryableError.isInstance(failures[1]!.error)).toBe(true);
  });
});
