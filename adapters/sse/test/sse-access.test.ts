import { afterEach, describe, expect, test } from 'vitest';
import { EgressConfigurationError } from '@egress/core';
import { createSseHandler, createSubscriberToken, sse, SseSubscribeError, subscribe, type SseDestination, type SseOptions } from '@egress/sse';
import { numbersOf, publish, readRaw, startServer, take } from './helpers.js';

const secret = 'a-signing-secret-of-at-least-32-characters';
const serviceToken = 'service-token-0123456789';
const ordersToken = 'orders-only-token-0123456789';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function serve(options: SseOptions) {
  const destination = sse(options);
  const server = await startServer(destination.handler);
  cleanups.push(() => server.close(), () => destination.stop?.());
  await publish(destination, 'orders', [{ n: 1 }]);
  await publish(destination, 'admin', [{ n: 2 }]);
  return { destination, url: server.url };
}

const authOptions: SseOptions = { auth: { tokens: [serviceToken, { token: ordersToken, channels: ['orders'] }], secret } };

async function errorOf(url: string, init: RequestInit = {}) {
  const { status, headers, text } = await readRaw(url, () => true, init);
  return { status, headers, body: text ? (JSON.parse(text) as { error: string; message: string }) : undefined };
}

function firstEvents(url: string, count: number, options: Parameters<typeof subscribe>[1] = {}) {
  const controller = new AbortController();
  cleanups.push(() => controller.abort());
  return take(subscribe(url, { reconnect: false, ...options, signal: controller.signal }), count);
}

describe('sse authentication', () => {
  test('accepts a static bearer token in the Authorization header', async () => {
    const { url } = await serve(authOptions);
    expect(numbersOf(await firstEvents(url, 2, { token: serviceToken }))).toEqual([1, 2]);
  });

  test('answers 401 with a clear reason for a missing, unknown or malformed token', async () => {
    const { url } = await serve(authOptions);
    const missing = await errorOf(url);
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toContain('Bearer');
    expect(missing.body).toEqual({ error: 'unauthorized', message: expect.stringContaining('missing token') });
    expect((await errorOf(url, { headers: { authorization: 'Bearer not-a-known-token' } })).body?.message).toBe('unknown token');
    expect((await errorOf(url, { headers: { authorization: 'Basic abc' } })).body?.message).toContain('Bearer <token>');
  });

  test('refuses a static token in the query string, where it would be logged', async () => {
    const { url } = await serve(authOptions);
    const refused = await errorOf(`${url}/?token=${serviceToken}`);
    expect(refused.status).toBe(401);
    expect(refused.body?.message).toContain('only signed tokens');
  });

  test('accepts a signed token in the query string and limits it to its channels', async () => {
    const { url } = await serve(authOptions);
    const token = createSubscriberToken({ secret, channels: ['orders'], expiresIn: '5m' });
    const events = await firstEvents(`${url}/?token=${encodeURIComponent(token)}`, 1);
    expect(events[0]).toMatchObject({ channel: 'orders', data: { n: 1 } });
    const forbidden = await errorOf(`${url}/?channel=admin&token=${encodeURIComponent(token)}`);
    expect(forbidden.status).toBe(403);
    expect(forbidden.body).toEqual({ error: 'forbidden', message: 'the token does not allow channel(s) "admin"' });
  });

  test('answers 401 for an expired signed token and for a bad signature', async () => {
    const { url } = await serve(authOptions);
    const expired = createSubscriberToken({ secret, expiresIn: 1000, now: Date.now() - 5000 });
    const expiredAnswer = await errorOf(`${url}/?token=${encodeURIComponent(expired)}`);
    expect(expiredAnswer.status).toBe(401);
    expect(expiredAnswer.body?.message).toMatch(/^token expired at /);
    const forged = createSubscriberToken({ secret: 'another-secret-of-at-least-32-characters!', expiresIn: '5m' });
    const forgedAnswer = await errorOf(`${url}/?token=${encodeURIComponent(forged)}`);
    expect(forgedAnswer.status).toBe(401);
    expect(forgedAnswer.body?.message).toBe('token signature does not match');
    const tampered = createSubscriberToken({ secret, channels: ['orders'], expiresIn: '5m' }).replace(/\.([^.]+)\./, `.${Buffer.from('{"exp":99999999999999}').toString('base64url')}.`);
    expect((await errorOf(`${url}/?token=${encodeURIComponent(tampered)}`)).status).toBe(401);
  });

  test('accepts tokens signed with any listed secret, so secrets can rotate', async () => {
    const previous = 'the-previous-secret-of-32-characters-or-more';
    const { url } = await serve({ auth: { secret: [secret, previous] } });
    const token = createSubscriberToken({ secret: previous, expiresIn: '1m' });
    expect(numbersOf(await firstEvents(url, 2, { token }))).toEqual([1, 2]);
  });

  test('a static token limited to channels gets those channels by default and 403 for others', async () => {
    const { url } = await serve(authOptions);
    const events = await firstEvents(url, 1, { token: ordersToken });
    expect(events[0]).toMatchObject({ channel: 'orders' });
    const forbidden = await errorOf(`${url}/?channel=orders&channel=admin`, { headers: { authorization: `Bearer ${ordersToken}` } });
    expect(forbidden.status).toBe(403);
  });

  test('the client reports a refusal as SseSubscribeError with the status and the reason', async () => {
    const { url } = await serve(authOptions);
    const attempt = firstEvents(url, 1, { token: 'wrong-token-0123456789', reconnect: true });
    await expect(attempt).rejects.toSatisfy((error: unknown) => SseSubscribeError.isInstance(error) && error.status === 401 && error.message.includes('unknown token'));
  });

  test('createSseHandler serves the same stream with its own authentication', async () => {
    const destination = sse({ auth: { tokens: [serviceToken] } });
    cleanups.push(() => destination.stop?.());
    const browsers = createSseHandler(destination, { auth: { secret } });
    const server = await startServer(browsers.handler);
    cleanups.push(() => server.close());
    await publish(destination, 'orders', [{ n: 5 }]);
    expect((await errorOf(server.url, { headers: { authorization: `Bearer ${serviceToken}` } })).status).toBe(401);
    const token = createSubscriberToken({ secret, expiresIn: '1m' });
    expect(numbersOf(await firstEvents(`${server.url}/?token=${encodeURIComponent(token)}`, 1))).toEqual([5]);
  });
});

describe('sse requests and CORS', () => {
  test('answers 400 naming the problem for a bad query or a bad Last-Event-ID', async () => {
    const { url } = await serve({});
    const unknown = await errorOf(`${url}/?chanel=a`);
    expect(unknown.status).toBe(400);
    expect(unknown.body?.message).toContain('unknown query parameter(s) "chanel"');
    const badChannel = await errorOf(`${url}/?channel=${encodeURIComponent('a\nb')}`);
    expect(badChannel.status).toBe(400);
    expect(badChannel.body?.message).toContain('query parameter "channel"');
    const badId = await errorOf(url, { headers: { 'last-event-id': 'not an id' } });
    expect(badId.status).toBe(400);
    expect(badId.body?.message).toContain('header Last-Event-ID');
    const badQueryId = await errorOf(`${url}/?lastEventId=x`);
    expect(badQueryId.body?.message).toContain('query parameter "lastEventId"');
    expect((await errorOf(url, { method: 'POST' })).status).toBe(405);
  });

  test('answers 503 once maxSubscribers are connected', async () => {
    const { url, destination } = await serve({ maxSubscribers: 1 });
    const controller = new AbortController();
    cleanups.push(() => controller.abort());
    const first = subscribe(url, { signal: controller.signal });
    await take(first, 1);
    expect(destination.subscriberCount).toBe(1);
    const refused = await errorOf(url);
    expect(refused.status).toBe(503);
    expect(refused.body?.message).toContain('maximum of 1 subscribers');
  });

  test('sends Access-Control-Allow-Origin only to allowed origins', async () => {
    const { url } = await serve({ corsOrigins: ['https://app.example.com'] });
    const allowed = await readRaw(url, (text) => text.includes('data:'), { headers: { origin: 'https://app.example.com' } });
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    expect(allowed.headers.get('vary')).toBe('Origin');
    const other = await readRaw(url, (text) => text.includes('data:'), { headers: { origin: 'https://evil.example.com' } });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
    const preflight = await readRaw(url, () => true, { method: 'OPTIONS', headers: { origin: 'https://app.example.com', 'access-control-request-headers': 'last-event-id' } });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-headers')).toContain('Last-Event-ID');
    const refusedPreflight = await readRaw(url, () => true, { method: 'OPTIONS', headers: { origin: 'https://evil.example.com' } });
    expect(refusedPreflight.status).toBe(403);
  });

  test('without corsOrigins no origin is allowed; with "*" every origin is', async () => {
    const closed = await serve({});
    expect((await readRaw(closed.url, (text) => text.includes('data:'), { headers: { origin: 'https://app.example.com' } })).headers.get('access-control-allow-origin')).toBeNull();
    const open = await serve({ corsOrigins: '*' });
    expect((await readRaw(open.url, (text) => text.includes('data:'), { headers: { origin: 'https://any.example.com' } })).headers.get('access-control-allow-origin')).toBe('*');
  });
});

describe('sse options', () => {
  test.each([
    [{ replay: -1 }, 'option "replay"'],
    [{ replay: 50, windowEvents: 10 }, 'option "windowEvents"'],
    [{ keepalive: 'soon' }, 'option "keepalive"'],
    [{ subscriberBuffer: '1 parsec' }, 'option "subscriberBuffer"'],
    [{ auth: {} }, 'option "auth"'],
    [{ auth: { secret: 'short' } }, 'option "auth.secret"'],
    [{ auth: { tokens: ['tiny'] } }, 'option "auth.tokens[0]"'],
    [{ auth: { tokens: [{ token: serviceToken, channels: ['bad channel'] }] } }, 'option "auth.tokens[0].channels"'],
    [{ corsOrigins: ['app.example.com'] }, 'option "corsOrigins"'],
    [{ path: 'events' }, 'option "path"'],
    [{ replayCount: 5 }, 'option "replayCount"'],
  ])('rejects %j naming the option', (options, named) => {
    expect(() => sse(options as SseOptions)).toThrow(EgressConfigurationError);
    expect(() => sse(options as SseOptions)).toThrow(`[sse] ${named}`);
  });

  test('createSubscriberToken checks its secret, expiry and channels', () => {
    expect(() => createSubscriberToken({ secret: 'short', expiresIn: '1m' })).toThrow('"secret"');
    expect(() => createSubscriberToken({ secret, expiresIn: 0 })).toThrow('"expiresIn"');
    expect(() => createSubscriberToken({ secret, expiresIn: '1m', channels: ['a\r\nb'] })).toThrow('"channels"');
  });
});

describe('sse input', () => {
  const destination: SseDestination = sse();
  const validate = (input: unknown) => destination.input['~standard'].validate(input) as { issues?: readonly { message: string; path?: readonly PropertyKey[] }[]; value?: unknown };
  const paths = (input: unknown) => (validate(input).issues ?? []).map((issue) => (issue.path ?? []).map(String).join('.'));

  test('accepts a channel and any JSON payload', () => {
    expect(validate({ channel: 'orders', payload: { id: 1 } }).issues).toBeUndefined();
    expect(validate({ channel: 'a.b:c/d-e_f', payload: 'text' }).issues).toBeUndefined();
  });

  test('requires channel and payload and rejects unknown keys', () => {
    expect(paths({ payload: {} })).toEqual(['channel']);
    expect(paths({ channel: 'a' })).toEqual(['payload']);
    const unknown = validate({ channel: 'a', payload: {}, data: {} });
    expect(unknown.issues?.[0]?.message).toMatch(/data/);
  });

  test('rejects channels that could break the SSE framing or use the reserved prefix', () => {
    for (const channel of ['a\nb', 'a\rb', '', ' a', 'x'.repeat(129), 'egress-reset']) {
      expect(paths({ channel, payload: 1 })).toEqual(['channel']);
    }
  });

  test('rejects payloads that are not JSON', () => {
    expect(paths({ channel: 'a', payload: undefined })).toEqual(['payload']);
    expect(paths({ channel: 'a', payload: () => 1 })).toEqual(['payload']);
  });
});
