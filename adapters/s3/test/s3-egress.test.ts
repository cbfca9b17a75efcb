import { createHash } from 'node:crypto';
import { createEgress, memoryStore, silentLogger } from '@egress/core';
import { destinationTestSuite } from '@egress/testkit';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { s3 } from '../src/index.js';
import { startS3TestServer, type S3TestServer } from './support/s3-test-server.js';

const bucket = 'egress-engine';
const conformanceBucket = 'egress-conformance';

let server: S3TestServer;
beforeAll(async () => {
  server = await startS3TestServer([bucket, conformanceBucket]);
});
afterAll(async () => {
  await server?.close();
});

function start(policy: Record<string, unknown> = {}) {
  return createEgress({
    destinations: [s3({ ...server.clientOptions, maxAttempts: 1 })],
    store: memoryStore(),
    logger: silentLogger,
    policies: { s3: { retry: { initialDelay: 5, maxDelay: 20 }, ...policy } },
  });
}

describe('through createEgress', () => {
  beforeEach(async () => {
    await server.empty(bucket);
  });

  test('every event arrives exactly once after throttling, 5xx, dropped connections and lost answers', async () => {
    server.inject({ operation: 'PutObject', times: 2, status: 503, code: 'SlowDown' });
    server.inject({ operation: 'PutObject', times: 1, status: 500, code: 'InternalError' });
    server.inject({ operation: 'PutObject', times: 1, disconnect: true });
    // The object is written but the answer is lost: the retry must overwrite it, not add a second.
    server.inject({ operation: 'PutObject', times: 2, loseAnswer: true });
    const egress = start({ batch: { maxEvents: 50, maxDelay: 10 } });
    const sent: string[] = [];
    for (let index = 0; index < 400; index++) {
      const prefix = ['alpha/', 'beta', '/gamma//', ''][index % 4]!;
      egress.send.s3({ bucket, prefix, payload: index % 5 === 0 ? `text ${index}` : { index, prefix } });
      sent.push(index % 5 === 0 ? `text ${index}` : JSON.stringify({ index, prefix }));
    }
    await egress.flush();
    const stats = await egress.stats();
    await egress.close();
    expect(stats[0]?.dead).toBe(0);

    const received = (await server.readAll(bucket)).map((line) => (typeof line === 'string' ? line : JSON.stringify(line)));
    expect(received.sort()).toEqual(sent.sort());
    const keys = await server.keys(bucket);
    for (const key of keys) expect(key).toMatch(/^((alpha|beta|gamma)\/)?\d{4}\/\d{2}\/\d{2}\/\d{2}\/\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-[0-9a-f]{64}\.gz$/);
    expect(server.requests.filter((request) => request.operation === 'PutObject').length).toBeGreaterThan(keys.length);
  });

  test('dead-letters the events of a missing bucket with the reason, and delivers the rest', async () => {
    const egress = start({ batch: { maxEvents: 10, maxDelay: 10 } });
    const lost = egress.send.s3({ bucket: 'no-such-bucket', prefix: 'x', payload: { n: 1 } });
    const kept = egress.send.s3({ bucket, prefix: 'x', payload: { n: 2 } });
    const [lostOutcome, keptOutcome] = await Promise.all([lost.settled(), kept.settled()]);
    const deadLetters = await egress.deadLetters.list();
    await egress.close();

    expect(lostOutcome.status).toBe('dead');
    expect(keptOutcome.status).toBe('delivered');
    expect(deadLetters).toHaveLength(1);
    expect(deadLetters[0]?.id).toBe(lost.id);
    expect(deadLetters[0]?.attempts).toBe(1);
    expect(deadLetters[0]?.error.message).toContain('NoSuchBucket');
    expect(deadLetters[0]?.error.message).toContain('s3://no-such-bucket/');
    expect(await server.readAll(bucket)).toEqual([{ n: 2 }]);
  });

  test('keeps every object within maxBytes, compressed, even for incompressible payloads', async () => {
    const egress = start({ batch: { maxBytes: '64KiB', maxEvents: 10_000, maxDelay: 10 } });
    const random = (index: number) => createHash('sha256').update(String(index)).digest('base64');
    for (let index = 0; index < 3000; index++) egress.send.s3({ bucket, prefix: 'sized', payload: { index, noise: random(index) } });
    await egress.flush();
    await egress.close();
    const keys = await server.keys(bucket);
    expect(keys.length).toBeGreaterThan(1);
    let count = 0;
    for (const key of keys) {
      const object = await server.readObject(bucket, key);
      expect(object.size).toBeLessThanOrEqual(64 * 1024);
      count += object.lines.length;
    }
    expect(count).toBe(3000);
  });

  test('dead-letters AccessDenied at once, without retrying', async () => {
    server.inject({ operation: 'PutObject', times: 1, status: 403, code: 'AccessDenied' });
    const egress = start({ batch: { maxDelay: 10 } });
    const receipt = egress.send.s3({ bucket, prefix: 'denied', payload: 'secret-free text' });
    const outcome = await receipt.settled();
    await egress.close();
    expect(outcome).toMatchObject({ status: 'dead' });
    expect(server.requests.filter((request) => request.operation === 'PutObject')).toHaveLength(1);
    expect(await server.keys(bucket)).toEqual([]);
  });

  test('waits up to a minute by default, as Pipedream does, and flush() writes at once', async () => {
    const egress = createEgress({ destinations: [s3({ ...server.clientOptions })], store: memoryStore(), logger: silentLogger });
    egress.send.s3({ bucket, prefix: 'minute', payload: { n: 1 } });
    egress.send.s3({ bucket, prefix: 'minute', payload: { n: 2 } });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await server.keys(bucket)).toEqual([]);
    await egress.flush();
    await egress.close();
    const keys = await server.keys(bucket);
    expect(keys).toHaveLength(1);
    expect(await server.readAll(bucket)).toEqual([{ n: 1 }, { n: 2 }]);
  });

  test('refuses an unknown field at $send, naming it', () => {
    const egress = start();
    expect(() => (egress.send.s3 as (input: unknown) => unknown)({ bucket, prefix: '', data: { n: 1 } })).toThrow(/data/);
    expect(() => egress.send.s3({ bucket, prefix: '', payload: { when: new Map() } as never })).toThrow(/payload\.when/);
    expect(() => egress.send.s3({ bucket, prefix: '', payload: { deep: JSON.parse(`${'['.repeat(1500)}${']'.repeat(1500)}`) } })).toThrow(/payload\.deep(\[0\])+: nested deeper than 64 levels/);
    return egress.close();
  });
});

describe('conformance', () => {
  destinationTestSuite(test, {
    createDestination: () => s3({ ...server.clientOptions, maxAttempts: 1 }),
    input: (index) => ({ bucket: conformanceBucket, prefix: 'conformance/', payload: { index } }),
    arrived: async () => (await server.readAll(conformanceBucket)).map((line) => (line as { index: number }).index),
    invalidInputs: [
      { input: { bucket: conformanceBucket, prefix: 'conformance/' }, path: 'payload' },
      { input: { bucket: 'x', prefix: '', payload: 'text' }, path: 'bucket' },
      { input: { bucket: conformanceBucket, prefix: 3, payload: 'text' }, path: 'prefix' },
      { input: { bucket: conformanceBucket, prefix: '', payload: 42 }, path: 'payload' },
    ],
    policy: { batch: { maxDelay: 20 }, retry: { initialDelay: 5, maxDelay: 20 } },
  });
});
