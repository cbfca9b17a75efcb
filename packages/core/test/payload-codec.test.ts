import { describe, expect, test } from 'vitest';
import { z } from 'zod';
import { createBatchId, createEgress, createEventId, decodePayload, defineDestination, encodePayload, eventIdTime, silentLogger } from '../src/index.js';

describe('payload codec', () => {
  test('round-trips JSON values and bytes', () => {
    const payload = { text: 'hé', list: [1, null, true], bytes: new Uint8Array([0, 255, 7]), buffer: Buffer.from('abc'), nested: { bytes: new Uint8Array([1]) } };
    const decoded = decodePayload(encodePayload(payload)) as Record<string, unknown>;
    expect(decoded.text).toBe('hé');
    expect(decoded.list).toEqual([1, null, true]);
    expect(decoded.bytes).toEqual(new Uint8Array([0, 255, 7]));
    expect(decoded.buffer).toEqual(new Uint8Array(Buffer.from('abc')));
    expect((decoded.nested as Record<string, unknown>).bytes).toEqual(new Uint8Array([1]));
  });

  test('round-trips empty and nested bytes, and empty objects', () => {
    const payload = { empty: new Uint8Array(0), list: [new Uint8Array([1, 2])], nothing: {}, zero: { '0': 'kept' } };
    const decoded = decodePayload(encodePayload(payload)) as Record<string, unknown>;
    expect(decoded.empty).toEqual(new Uint8Array(0));
    expect(decoded.list).toEqual([new Uint8Array([1, 2])]);
    expect(decoded.nothing).toEqual({});
    expect(decoded.zero).toEqual({ '0': 'kept' });
  });

  test('leaves look-alike objects alone', () => {
    const payload = { type: 'Buffer', data: [1, 2] };
    expect(decodePayload(encodePayload(payload))).toEqual(payload);
  });
});

describe('ids', () => {
  test('event ids sort in the order they were made, even within one millisecond', () => {
    const ids = Array.from({ length: 5000 }, () => createEventId());
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
    expect(Math.abs(eventIdTime(ids[0]!) - Date.now())).toBeLessThan(5000);
  });

  test('batch ids depend on the destination and the events only', () => {
    expect(createBatchId('s3', ['a', 'b'])).toBe(createBatchId('s3', ['a', 'b']));
    expect(createBatchId('s3', ['a', 'b'])).not.toBe(createBatchId('s3', ['b', 'a']));
    expect(createBatchId('s3', ['a'])).not.toBe(createBatchId('sql', ['a']));
    expect(createBatchId('s3', ['a'])).toMatch(/^[0-9a-f]{64}$/);
  });

  test('a single event id makes a 64-hex batch id of its own digits, and anything else is hashed', () => {
    const id = createEventId();
    const single = createBatchId('http', [id]);
    expect(single).toMatch(/^[0-9a-f]{64}$/);
    expect(single.slice(0, 32)).toBe(id.replaceAll('-', ''));
    expect(createBatchId('sql', [id])).not.toBe(single);
    // Upper case or a misplaced dash is not an event id's shape: hashed, still 64 hex.
    for (const other of [id.toUpperCase(), `${id.slice(0, 7)}-${id.slice(7, 8)}${id.slice(9)}`]) {
      const hashed = createBatchId('http', [other]);
      expect(hashed).toMatch(/^[0-9a-f]{64}$/);
      expect(hashed.slice(0, 32)).not.toBe(id.replaceAll('-', ''));
    }
  });
});

describe('events handed to deliver', () => {
  test('carry the queued JSON text, and a payload that is decoded once, on first read, and serializes', async () => {
    const seen: { json: string | undefined; payload: unknown; copied: unknown; serialized: string; same: boolean }[] = [];
    const destination = defineDestination({
      name: 'inspect',
      input: z.strictObject({ n: z.number(), bytes: z.custom<Uint8Array>((value) => value instanceof Uint8Array).optional() }),
      async deliver(batch) {
        for (const event of batch.events) {
          const json = event.payloadJson;
          const copied = { ...event, payload: event.payload }.payload;
          seen.push({ json, payload: event.payload, copied, serialized: JSON.stringify(event), same: event.payload === event.payload });
        }
      },
    });
    const egress = createEgress({ destinations: [destination], logger: silentLogger });
    egress.send.inspect({ n: 1 });
    egress.send.inspect({ n: 2, bytes: new Uint8Array([1, 2]) });
    await egress.flush();
    await egress.close();
    expect(seen.map((entry) => entry.json)).toEqual(['{"n":1}', '{"n":2,"bytes":{"$egress:bytes":"AQI="}}']);
    expect(seen.map((entry) => entry.payload)).toEqual([{ n: 1 }, { n: 2, bytes: new Uint8Array([1, 2]) }]);
    expect(seen.map((entry) => entry.copied)).toEqual([{ n: 1 }, { n: 2, bytes: new Uint8Array([1, 2]) }]);
    expect(JSON.parse(seen[0]!.serialized)).toEqual({ id: expect.any(String), payload: { n: 1 }, payloadJson: '{"n":1}', attempt: 1, sentAt: expect.any(Number) });
    expect(seen.every((entry) => entry.same)).toBe(true);
  });

});

