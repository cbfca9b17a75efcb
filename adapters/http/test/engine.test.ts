import { EgressConfigurationError, EgressValidationError, createEgress, memoryStore, type Logger } from '@egress/core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { http } from '../src/index.js';
import { startReceiver, type Receiver } from './receiver.js';

let receiver: Receiver;
const logged: unknown[] = [];
const capturingLogger: Logger = {
  debug: (fields, message) => logged.push(fields, message),
  info: (fields, message) => logged.push(fields, message),
  warn: (fields, message) => logged.push(fields, message),
  error: (fields, message) => logged.push(fields, message),
};

function egressFor(options: Parameters<typeof http>[0] = {}) {
  return createEgress({
    destinations: [http(options)],
    store: memoryStore(),
    logger: capturingLogger,
    policies: { http: { retry: { initialDelay: 5, maxDelay: 20, maxAttempts: 6 } } },
  });
}

let egress: ReturnType<typeof egressFor>;

beforeAll(async () => {
  receiver = await startReceiver();
});
beforeEach(() => {
  receiver.requests.length = 0;
  logged.length = 0;
  receiver.answer((_request, response) => response.end('ok'));
  egress = egressFor();
});
afterEach(async () => {
  await egress.close();
});
afterAll(async () => {
  await receiver.close();
});

/** Everything Egress showed or kept about failures, as one text to search for secrets. */
async function everythingVisible(events: unknown[]): Promise<string> {
  const deadLetters = await egress.deadLetters.list();
  return JSON.stringify({ deadLetters, events, logged: logged.map((entry) => (entry instanceof Error ? entry.message : entry)) });
}

describe('http: through createEgress', () => {
  test('delivers after a storm of 500s, with the same idempotency key on every attempt', async () => {
    receiver.answer((_request, response) => {
      response.statusCode = receiver.requests.length <= 4 ? 500 : 200;
      response.end();
    });
    const receipt = egress.send.http({ url: `${receiver.origin}/storm`, data: { n: 1 } });
    expect(await receipt.settled()).toEqual({ status: 'delivered' });
    expect(receiver.requests).toHaveLength(5);
    expect(new Set(receiver.requests.map((request) => request.headers['idempotency-key']))).toEqual(new Set([receipt.id]));
  });

  test('waits as long as Retry-After asks before the next attempt', async () => {
    receiver.answer((_request, response) => {
      if (receiver.requests.length === 1) response.writeHead(429, { 'retry-after': '1' });
      response.end();
    });
    const retries: number[] = [];
    egress.on('retrying', (event) => retries.push(event.retryAt - Date.now()));
    const receipt = egress.send.http({ url: receiver.origin, data: { n: 1 } });
    expect(await receipt.settled()).toEqual({ status: 'delivered' });
    // The backoff alone would wait at most 20 ms.
    expect(retries[0]).toBeGreaterThan(500);
    expect(receiver.requests).toHaveLength(2);
  });

  test('dead-letters a permanent 4xx with its status and body excerpt, after one attempt', async () => {
    receiver.answer((_request, response) => {
      response.statusCode = 422;
      response.end('{"error":"unknown customer"}');
    });
    const receipt = egress.send.http({ url: `${receiver.origin}/customers`, data: { id: 'c_1' } });
    const outcome = await receipt.settled();
    expect(outcome.status).toBe('dead');
    const [dead] = await egress.deadLetters.list();
    expect(dead).toMatchObject({ id: receipt.id, attempts: 1 });
    expect(dead!.error.message).toContain('422');
    expect(dead!.error.message).toContain('unknown customer');
    expect(receiver.requests).toHaveLength(1);
  });

  test('keeps auth, tokens and credential headers out of dead letters, events and logs', async () => {
    receiver.answer((request, response) => {
      response.statusCode = 403;
      response.end(`denied for ${request.headers.authorization} and ${request.headers['x-api-key']}`);
    });
    const events: unknown[] = [];
    egress.on('dead', (event) => events.push(event));
    egress.on('retrying', (event) => events.push(event));
    const secrets = ['hunter2-password', 'sk_live_token_value', 'cookie-session-secret', 'api-key-value-9', 'query-token-secret'];
    const receipts = [
      egress.send.http({ url: receiver.origin, auth: { username: 'luke', password: 'hunter2-password' } }),
      egress.send.http({ url: receiver.origin, auth: { bearer: 'sk_live_token_value' } }),
      egress.send.http({
        url: `${receiver.origin}/x?access_token=query-token-secret&page=2`,
        headers: { Cookie: 'cookie-session-secret', 'X-Api-Key': 'api-key-value-9', 'x-trace': 'visible' },
      }),
    ];
    await Promise.all(receipts.map((receipt) => receipt.settled()));
    const deadLetters = await egress.deadLetters.list();
    expect(deadLetters).toHaveLength(3);
    expect(deadLetters.map((letter) => letter.payload)).toEqual([
      { url: receiver.origin, auth: { username: '[redacted]', password: '[redacted]' } },
      { url: receiver.origin, auth: { bearer: '[redacted]' } },
      {
        url: `${receiver.origin}/x?access_token=[redacted]&page=2`,
        headers: { Cookie: '[redacted]', 'X-Api-Key': '[redacted]', 'x-trace': 'visible' },
      },
    ]);
    const visible = await everythingVisible(events);
    for (const secret of [...secrets, Buffer.from('luke:hunter2-password').toString('base64')]) expect(visible).not.toContain(secret);
    expect(receiver.requests).toHaveLength(3);
  });

  test('rejects "body" at once, saying the body goes in "data", and enqueues nothing', () => {
    let error: unknown;
    try {
      egress.send.http({ url: receiver.origin, body: { n: 1 } } as never);
    } catch (caught) {
      error = caught;
    }
    expect(EgressValidationError.isInstance(error)).toBe(true);
    expect((error as Error).message).toContain('"body"');
    expect((error as Error).message).toContain('goes in "data"');
  });

  test.each([
    [{ url: 'ftp://example.com/file' }, 'url', 'http:// or https://'],
    [{ url: 'not a url' }, 'url', 'absolute'],
    [{ url: 'https://user:pass@example.com/' }, 'url', 'put them in "auth"'],
    [{ url: 'https://example.com', method: 'post' }, 'method', 'upper case'],
    [{ url: 'https://example.com', method: 'FETCH' }, 'method', 'GET, HEAD, POST'],
    [{ url: 'https://example.com', auth: { username: 'luke' } }, 'auth', 'both "username" and "password"'],
    [{ url: 'https://example.com', auth: { bearer: 'x', username: 'y', password: 'z' } }, 'auth', 'not both'],
    [{ url: 'https://example.com', auth: 'token' }, 'auth', '{ bearer }'],
    [{ url: 'https://example.com', headers: { 'x-a': 'one\r\ntwo' } }, 'headers.x-a', 'line breaks'],
    [{ url: 'https://example.com', headers: { 'bad name': 'v' } }, 'headers', 'header name'],
    [{ url: 'https://example.com', params: { q: { nested: true } } }, 'params.q', 'string, number or boolean'],
    [{ url: 'https://example.com', data: () => 1 }, 'data', 'a function cannot be carried as JSON'],
    [{ url: 'https://example.com', data: new Map() }, 'data', 'a Map cannot be carried as JSON'],
    [{ url: 'https://example.com', data: Number.NaN }, 'data', 'finite number'],
    [{ url: 'https://example.com', data: Number.POSITIVE_INFINITY }, 'data', 'finite number'],
    [{ url: 'https://example.com\r\n/x' }, 'url', 'control character'],
    [{ url: ' https://example.com/' }, 'url', 'control character'],
    [{ url: 'https://example.com', headers: { 'x-a': 'one\u0001two' } }, 'headers.x-a', 'control characters'],
    [{ url: 'https://example.com', timeout: 'soon' }, 'timeout', 'duration'],
    [{ url: 'https://example.com', timeout: 0 }, 'timeout', 'above zero'],
  ])('rejects %j at %s', (input, path, message) => {
    let error: unknown;
    try {
      egress.send.http(input as never);
    } catch (caught) {
      error = caught;
    }
    expect(EgressValidationError.isInstance(error)).toBe(true);
    const issues = (error as EgressValidationError).issues;
    expect(issues.some((issue) => issue.path.startsWith(path) && issue.message.includes(message))).toBe(true);
  });

  test.each([
    ['an object', { n: 1, nested: { list: [1, 2] } }],
    ['an object without a prototype', Object.assign(Object.create(null) as object, { n: 1 })],
    ['an array', [1, 'two']],
    ['a string', 'text'],
    ['bytes', new Uint8Array([1, 2])],
    ['a Buffer', Buffer.from('bytes')],
    ['a number', 42],
    ['a boolean', false],
    ['null', null],
    // What is checked is what JSON carries: a Date's text, a class instance's own fields.
    ['a Date, as its JSON text', new Date(0)],
    ['a class instance, as its own fields', new (class Order {
      n = 1;
    })()],
  ])('accepts %s as data', (_kind, value) => {
    expect(() => egress.send.http({ url: receiver.origin, data: value as never })).not.toThrow();
  });

  test('refuses bad adapter options at construction, naming the option', () => {
    expect(() => http({ timeout: 'soon' as never })).toThrow(/\[http\] option "timeout"/);
    expect(() => http({ connectionsPerOrigin: 0 })).toThrow(/\[http\] option "connectionsPerOrigin"/);
    expect(() => http({ idempotencyHeader: 'bad header' })).toThrow(/\[http\] option "idempotencyHeader"/);
    expect(() => http({ batch: { format: 'xml' as never } })).toThrow(/\[http\] option "batch"/);
    expect(() => http({ followRedirects: -1 })).toThrow(/\[http\] option "followRedirects"/);
    expect(() => http({ timout: '5s' } as never)).toThrow(EgressConfigurationError);
  });
});
