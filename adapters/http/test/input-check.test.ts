import { describe, expect, test } from 'vitest';
import { httpInputCheck, httpInputSchema } from '../src/http-input-schema.js';

function check(schema: typeof httpInputCheck | typeof httpInputSchema, input: unknown) {
  const result = schema['~standard'].validate(input);
  if (result instanceof Promise) throw new Error('validation must be synchronous');
  return result;
}

describe('the input check of $send.http', () => {
  test.each([
    { url: 'https://example.com/hook' },
    { url: 'https://example.com/hook', data: { a: 1, list: [1, 2] } },
    { data: [1, 2], url: 'http://127.0.0.1:9/x', method: 'PUT' },
    { method: 'GET', url: 'https://example.com' },
    { url: 'https://example.com', data: 'text' },
    { url: 'https://example.com', data: new Uint8Array([1]) },
    { url: 'https://example.com', data: null },
    { url: 'https://example.com', data: undefined },
    { url: 'https://example.com', data: { a: 1 }, headers: { 'x-a': 'b' } },
  ])('accepts %j as the zod schema does, with the same value and key order', (input) => {
    const fast = check(httpInputCheck, input);
    const full = check(httpInputSchema, input);
    expect(fast.issues).toBeUndefined();
    expect(fast).toEqual(full);
    expect(Object.keys((fast as { value: object }).value)).toEqual(Object.keys((full as { value: object }).value));
  });

  test.each([
    { url: 'ftp://example.com', data: { a: 1 } },
    { url: 'https://user:secret@example.com' },
    { url: 'not a url' },
    { method: 'post', url: 'https://example.com' },
    { url: 'https://example.com', body: { a: 1 } },
    { url: 'https://example.com', data: Number.NaN },
    { url: 'https://example.com', data: new Date(0) },
    { data: { a: 1 } },
  ])('refuses %j with the zod schema\'s issues', (input) => {
    const fast = check(httpInputCheck, input);
    expect(fast.issues?.length).toBeGreaterThan(0);
    expect(fast).toEqual(check(httpInputSchema, input));
  });
});
