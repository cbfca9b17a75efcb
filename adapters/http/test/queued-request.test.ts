import { encodePayload } from '@egress/core';
import { describe, expect, test } from 'vitest';
import { httpInputSchema } from '../src/http-input-schema.js';
import { readQueuedRequest } from '../src/queued-request.js';
import { encodeData } from '../src/request-builder.js';

/** The JSON text `$send.http(input)` queues, as the engine makes it. */
function queued(input: unknown): { payload: Record<string, unknown>; text: string } {
  const result = httpInputSchema['~standard'].validate(input);
  if (result instanceof Promise || result.issues) throw new Error('invalid input');
  return { payload: result.value as Record<string, unknown>, text: encodePayload(result.value) };
}

describe('readQueuedRequest', () => {
  test.each([
    { url: 'https://example.com/hook', data: { a: 1, text: 'with "quotes", \\ and }] inside', nested: [{ b: [] }, {}] } },
    { method: 'PUT', url: 'http://127.0.0.1:8080/a?b=c', data: [1, 'two', { three: null }] },
    { method: 'DELETE', url: 'https://example.com/items/7' },
    { url: 'https://example.com/é?q=ü', data: { emoji: '😀', line: '\u2028' } },
  ])('takes method, URL and the JSON body from the queued text of %j', (input) => {
    const { payload, text } = queued(input);
    const request = readQueuedRequest(text);
    expect(request).toEqual({ method: payload.method, url: payload.url, body: encodeData(payload.data as never).body });
  });

  test.each([
    ['headers', { url: 'https://example.com', data: { a: 1 }, headers: { 'x-a': 'b' } }],
    ['params', { url: 'https://example.com', data: { a: 1 }, params: { page: 2 } }],
    ['auth', { url: 'https://example.com', data: { a: 1 }, auth: { bearer: 'secret' } }],
    ['a timeout', { url: 'https://example.com', data: { a: 1 }, timeout: '2s' }],
    ['a string body', { url: 'https://example.com', data: 'plain text' }],
    ['a bytes body', { url: 'https://example.com', data: new Uint8Array([1, 2]) }],
    ['bytes inside the body', { url: 'https://example.com', data: { file: new Uint8Array([1, 2]) } }],
    ['a number body', { url: 'https://example.com', data: 42 }],
    ['an escaped URL', { url: 'https://example.com/a"b', data: { a: 1 } }],
  ])('leaves an event with %s to the decoded payload', (_name, input) => {
    expect(readQueuedRequest(queued(input).text)).toBeUndefined();
  });

  test.each([
    ['absent', undefined],
    ['normalised with spaces, as a jsonb column returns it', '{"url": "https://example.com", "data": {"a": 1}}'],
    ['with the body before the URL', '{"data":{"a":1},"url":"https://example.com"}'],
    ['with a field after the body', '{"url":"https://example.com","data":{"a":1},"headers":{"x":"y"}}'],
    ['with an unknown method', '{"method":"BREW","url":"https://example.com","data":{"a":1}}'],
    ['cut short', '{"url":"https://example.com","data":{"a":1}'],
  ])('gives up on a text %s', (_name, text) => {
    expect(readQueuedRequest(text)).toBeUndefined();
  });
});
