import { encodePayload } from '@egress/core';
import { describe, expect, test } from 'vitest';
import { payloadStart, queuedHead, splitQueuedJson } from '../src/queued-json.js';

describe('splitQueuedJson', () => {
  test.each([
    { bucket: 'logs', prefix: 'events/', payload: { a: 1, text: 'with "quotes", \\ and ,"payload": inside' } },
    { bucket: 'we"ird\\bucket', prefix: 'pré"fix\\', payload: 'a string payload' },
    { bucket: 'logs', prefix: '', payload: [1, { nested: [null, true] }, '\u2028'] },
    { bucket: 'logs', prefix: 'p', payload: {} },
  ])('takes bucket, prefix and line from the queued text of %j', (input) => {
    const parts = splitQueuedJson(encodePayload(input));
    expect(parts).toBeDefined();
    expect(JSON.parse(parts!.bucketJson)).toBe(input.bucket);
    expect(JSON.parse(parts!.prefixJson)).toBe(input.prefix);
    expect(parts!.line).toBe(JSON.stringify(input.payload));
  });

  test.each([
    ['absent', undefined],
    ['normalised with spaces, as a jsonb column returns it', '{"bucket": "logs", "prefix": "p", "payload": {"a": 1}}'],
    ['in another key order', '{"prefix":"p","bucket":"logs","payload":1}'],
    ['cut short', '{"bucket":"logs","prefix":"p'],
    ['with a field before the payload', '{"bucket":"logs","prefix":"p","extra":1,"payload":1}'],
  ])('gives up on a text %s', (_name, text) => {
    expect(splitQueuedJson(text)).toBeUndefined();
  });
});

describe('payloadStart', () => {
  test('points at the payload, and the heads before it are equal exactly when bucket and prefix are', () => {
    const texts = [
      encodePayload({ bucket: 'logs', prefix: 'a', payload: { n: 1 } }),
      encodePayload({ bucket: 'logs', prefix: 'a', payload: 'two' }),
      encodePayload({ bucket: 'logs', prefix: 'a/', payload: { n: 3 } }),
      encodePayload({ bucket: 'logs2', prefix: 'a', payload: { n: 4 } }),
    ];
    const starts = texts.map((text) => payloadStart(text));
    expect(texts.map((text, index) => text.slice(starts[index], -1))).toEqual(['{"n":1}', '"two"', '{"n":3}', '{"n":4}']);
    const heads = texts.map((text, index) => text.slice(0, starts[index]));
    expect(heads[0]).toBe(heads[1]);
    expect(new Set(heads).size).toBe(3);
  });

  test('ends where queuedHead says the head of that bucket and prefix ends', () => {
    for (const [bucket, prefix] of [['logs', ''], ['we"ird\\bucket', 'pré"fix\\/€']]) {
      const text = encodePayload({ bucket, prefix, payload: { n: 1 } });
      expect(text.startsWith(queuedHead(bucket!, prefix!))).toBe(true);
      expect(payloadStart(text)).toBe(queuedHead(bucket!, prefix!).length);
    }
  });

  test('is -1 for a text of another shape', () => {
    expect(payloadStart('{"prefix":"p","bucket":"logs","payload":1}')).toBe(-1);
    expect(payloadStart(undefined)).toBe(-1);
  });
});
