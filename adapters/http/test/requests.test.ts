import { describe, expect, test } from 'vitest';
import { http } from '../src/index.js';
import { httpMethods } from '../src/http-input-schema.js';
import { batchOf, deliveryContext, useReceiver } from './receiver.js';

const destination = http();
const receiver = useReceiver({ stop: () => destination.stop?.() });

async function deliver(...inputs: Parameters<typeof batchOf>[0]) {
  const batch = batchOf(inputs);
  const report = await destination.deliver(batch, deliveryContext());
  return { batch, report };
}

describe('http: what arrives at the server', () => {
  test.each(httpMethods.filter((method) => method !== 'CONNECT'))('sends %s with the method as given', async (method) => {
    await deliver({ method, url: `${receiver.origin}/hooks/method` });
    expect(receiver.requests).toHaveLength(1);
    expect(receiver.requests[0]).toMatchObject({ method, url: '/hooks/method' });
  });

  test('sends CONNECT and closes the tunnel it opens', async () => {
    await deliver({ method: 'CONNECT', url: `${receiver.origin}/tunnel` });
    expect(receiver.requests[0]).toMatchObject({ method: 'CONNECT', url: '/tunnel' });
  });

  test('uses POST when no method is given', async () => {
    await deliver({ url: `${receiver.origin}/default`, data: { n: 1 } });
    expect(receiver.requests[0]?.method).toBe('POST');
  });

  test('encodes params into the query string after the query already in the URL, which stays as written', async () => {
    await deliver({
      url: `${receiver.origin}/search?sig=a/b%2Bc&x=1`,
      params: { q: 'a b&c=d', tags: ['red', 'blue'], n: 42, yes: true, unicode: 'é✓', plus: '1+1' },
    });
    const url = receiver.requests[0]!.url;
    expect(url.startsWith('/search?sig=a/b%2Bc&x=1&')).toBe(true);
    const query = new URL(url, receiver.origin).searchParams;
    expect(query.get('q')).toBe('a b&c=d');
    expect(query.getAll('tags')).toEqual(['red', 'blue']);
    expect(query.get('n')).toBe('42');
    expect(query.get('yes')).toBe('true');
    expect(query.get('unicode')).toBe('é✓');
    expect(query.get('plus')).toBe('1+1');
  });

  test('adds a query string to a URL that has none', async () => {
    await deliver({ url: `${receiver.origin}/plain`, params: { a: '1' } });
    expect(receiver.requests[0]!.url).toBe('/plain?a=1');
  });

  test('sends basic auth from { username, password }', async () => {
    await deliver({ url: receiver.origin, auth: { username: 'luke', password: 'use the force: é' } });
    const header = receiver.requests[0]!.headers.authorization!;
    expect(header.startsWith('Basic ')).toBe(true);
    expect(Buffer.from(header.slice(6), 'base64').toString()).toBe('luke:use the force: é');
  });

  test('sends a bearer token from { bearer }', async () => {
    await deliver({ url: receiver.origin, auth: { bearer: 'token-123' } });
    expect(receiver.requests[0]!.headers.authorization).toBe('Bearer token-123');
  });

  test('sends an object as JSON with its content type', async () => {
    await deliver({ url: receiver.origin, data: { name: 'Luke', tags: ['jedi'], nested: { n: 1 } } });
    const request = receiver.requests[0]!;
    expect(request.headers['content-type']).toBe('application/json');
    expect(JSON.parse(request.body.toString())).toEqual({ name: 'Luke', tags: ['jedi'], nested: { n: 1 } });
  });

  test('sends an array as JSON', async () => {
    await deliver({ url: receiver.origin, data: [1, 'two'] });
    expect(JSON.parse(receiver.requests[0]!.body.toString())).toEqual([1, 'two']);
  });

  test('sends a string as given, text/plain unless the call sets a content type', async () => {
    await deliver({ url: receiver.origin, data: 'a,b\n1,2' }, { url: receiver.origin, data: '<x/>', headers: { 'Content-Type': 'application/xml' } });
    expect(receiver.requests[0]!.body.toString()).toBe('a,b\n1,2');
    expect(receiver.requests[0]!.headers['content-type']).toBe('text/plain; charset=utf-8');
    const xml = receiver.requests.find((request) => request.body.toString() === '<x/>')!;
    expect(xml.headers['content-type']).toBe('application/xml');
  });

  test('sends bytes unchanged as application/octet-stream', async () => {
    const bytes = new Uint8Array([0, 1, 2, 253, 254, 255]);
    await deliver({ url: receiver.origin, data: bytes }, { url: receiver.origin, data: Buffer.from('buffer too') });
    const request = receiver.requests.find((candidate) => candidate.body.length === bytes.length)!;
    expect([...request.body]).toEqual([...bytes]);
    expect(request.headers['content-type']).toBe('application/octet-stream');
    expect(receiver.requests.some((candidate) => candidate.body.toString() === 'buffer too')).toBe(true);
  });

  test('sends the call\'s headers and the adapter\'s default headers, the call winning', async () => {
    const withDefaults = http({ headers: { 'user-agent': 'acme/1.0', 'x-team': 'core' } });
    try {
      await withDefaults.deliver(batchOf([{ url: receiver.origin, headers: { 'X-Team': 'billing', 'x-trace': 'abc' } }]), deliveryContext());
    } finally {
      await withDefaults.stop?.();
    }
    expect(receiver.requests[0]!.headers).toMatchObject({ 'user-agent': 'acme/1.0', 'x-team': 'billing', 'x-trace': 'abc' });
  });

  test('carries the event id as the idempotency key, the same on every attempt', async () => {
    receiver.answer((request, response) => {
      response.statusCode = receiver.requests.length < 3 ? 503 : 200;
      response.end();
    });
    const batch = batchOf([{ url: receiver.origin, data: { n: 1 } }]);
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await destination.deliver(batch, deliveryContext());
      } catch {
        // 503 twice, then success.
      }
    }
    expect(receiver.requests.map((request) => request.headers['idempotency-key'])).toEqual([batch.events[0]!.id, batch.events[0]!.id, batch.events[0]!.id]);
  });

  test('names the idempotency header as configured', async () => {
    const custom = http({ idempotencyHeader: 'X-Request-Id' });
    const batch = batchOf([{ url: receiver.origin }]);
    try {
      await custom.deliver(batch, deliveryContext());
    } finally {
      await custom.stop?.();
    }
    expect(receiver.requests[0]!.headers['x-request-id']).toBe(batch.events[0]!.id);
    expect(receiver.requests[0]!.headers['idempotency-key']).toBeUndefined();
  });

  test('reuses keep-alive connections for consecutive requests to an origin', async () => {
    receiver.answer((_request, response) => response.end('x'.repeat(10_000)));
    const fresh = http();
    try {
      for (let index = 0; index < 5; index++) await fresh.deliver(batchOf([{ url: `${receiver.origin}/${index}` }]), deliveryContext());
    } finally {
      await fresh.stop?.();
    }
    // A connection can be finishing its previous exchange when the next request starts, so a
    // second one may open; beyond that every request must ride an existing connection.
    expect(new Set(receiver.requests.map((request) => request.remotePort)).size).toBeLessThanOrEqual(2);
  });

  test('sends every event of a large batch in its own request, without leak warnings', async () => {
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(warning.name);
    process.on('warning', onWarning);
    try {
      await deliver(...Array.from({ length: 40 }, (_, index) => ({ url: `${receiver.origin}/many/${index}` })));
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('warning', onWarning);
    }
    expect(receiver.requests).toHaveLength(40);
    expect(warnings).not.toContain('MaxListenersExceededWarning');
  });

  test('keeps connections per origin within connectionsPerOrigin', async () => {
    const bounded = http({ connectionsPerOrigin: 2 });
    let open = 0;
    let most = 0;
    receiver.answer(async (_request, response) => {
      open++;
      most = Math.max(most, open);
      await new Promise((resolve) => setTimeout(resolve, 30));
      open--;
      response.end();
    });
    try {
      const batch = batchOf(Array.from({ length: 8 }, (_, index) => ({ url: `${receiver.origin}/${index}` })));
      await bounded.deliver(batch, deliveryContext());
    } finally {
      await bounded.stop?.();
    }
    expect(receiver.requests).toHaveLength(8);
    expect(most).toBeLessThanOrEqual(2);
    expect(new Set(receiver.requests.map((request) => request.remotePort)).size).toBeLessThanOrEqual(2);
  });
});
