import { randomBytes } from 'node:crypto';
import { PermanentError, RetryableError } from '@egress/core';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { s3, type S3QueuedPayload } from '../src/index.js';
import { deliveryContext, makeBatch } from './support/batches.js';
import { startS3TestServer, type S3TestServer } from './support/s3-test-server.js';

const bucket = 'egress-delivery';
const otherBucket = 'egress-other';
const keyPattern = /^test\/2019\/05\/25\/16\/2019-05-25-16-14-58-[0-9a-f]{64}\.gz$/;

let server: S3TestServer;
beforeAll(async () => {
  server = await startS3TestServer([bucket, otherBucket]);
});
afterAll(async () => {
  await server?.close();
});
beforeEach(async () => {
  await server.empty(bucket);
  await server.empty(otherBucket);
});

/** The adapter with the SDK's own retries off, so every failure reaches the classification. */
function destination(options: Parameters<typeof s3>[0] = {}) {
  return s3({ ...server.clientOptions, maxAttempts: 1, ...options });
}

function events(count: number, prefix = 'test/'): S3QueuedPayload[] {
  return Array.from({ length: count }, (_, index) => ({ bucket, prefix, payload: { n: index, name: `event ${index}` } }));
}

describe('objects', () => {
  test('writes a batch as one gzip NDJSON object keyed PREFIX/YYYY/MM/DD/HH/YYYY-MM-DD-HH-MM-SS-<batch id>.gz', async () => {
    const batch = makeBatch(events(25));
    await destination().deliver(batch, deliveryContext());

    const keys = await server.keys(bucket);
    expect(keys).toEqual([`test/2019/05/25/16/2019-05-25-16-14-58-${batch.id}.gz`]);
    expect(keys[0]).toMatch(keyPattern);
    const object = await server.readObject(bucket, keys[0]!);
    expect(object.contentType).toBe('application/x-ndjson');
    expect(object.contentEncoding).toBe('gzip');
    expect(object.lines).toEqual(batch.events.map((event) => event.payload.payload));
  });

  test("keeps the delivery attempt's trace context as object metadata, and none without tracing", async () => {
    const traceHeaders = { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', tracestate: 'vendor=opaque' };
    await destination().deliver(makeBatch(events(2, 'traced/')), { ...deliveryContext(), traceHeaders });
    await destination().deliver(makeBatch(events(2, 'untraced/')), deliveryContext());
    const [traced] = await server.keys(bucket).then((keys) => keys.filter((key) => key.startsWith('traced/')));
    const [untraced] = await server.keys(bucket).then((keys) => keys.filter((key) => key.startsWith('untraced/')));
    expect((await server.readObject(bucket, traced!)).metadata).toEqual(traceHeaders);
    expect((await server.readObject(bucket, untraced!)).metadata).toEqual({});
  });

  test('writes string payloads as JSON strings and arrays as JSON arrays, one per line', async () => {
    const payloads: S3QueuedPayload[] = [
      { bucket, prefix: 'test', payload: 'plain text with "quotes"\nand a newline' },
      { bucket, prefix: 'test', payload: [1, 'two', { three: 3 }] },
      { bucket, prefix: 'test', payload: { nested: { ok: true, none: null } } },
    ];
    await destination().deliver(makeBatch(payloads), deliveryContext());
    const [key] = await server.keys(bucket);
    const object = await server.readObject(bucket, key!);
    expect(object.lines).toEqual(payloads.map((entry) => entry.payload));
  });

  test.each([
    ['test/', 'test/2019/'],
    ['test', 'test/2019/'],
    ['', '2019/'],
    ['/a//b/', 'a/b/2019/'],
  ])('puts no double slash in the key for the prefix %j', async (prefix, start) => {
    const batch = makeBatch([{ bucket, prefix, payload: { prefix } }]);
    await destination().deliver(batch, deliveryContext());
    const [key] = await server.keys(bucket);
    expect(key).toBe(`${start}05/25/16/2019-05-25-16-14-58-${batch.id}.gz`);
    expect(key).not.toContain('//');
    expect(key!.startsWith('/')).toBe(false);
  });

  test('takes the time in the key from the first event in UTC, so a retried batch overwrites its own object', async () => {
    const batch = makeBatch(events(3), { sentAt: Date.UTC(2024, 11, 31, 23, 59, 59, 999) });
    const adapter = destination();
    await adapter.deliver(batch, deliveryContext());
    await adapter.deliver({ ...batch, attempt: 2 }, deliveryContext());
    const keys = await server.keys(bucket);
    expect(keys).toEqual([`test/2024/12/31/23/2024-12-31-23-59-59-${batch.id}.gz`]);
    expect((await server.readAll(bucket)).length).toBe(3);
  });

  test('follows a key template', async () => {
    const batch = makeBatch(events(2, 'logs/'));
    await destination({ key: 'archive/{prefix}/dt={YYYY}-{MM}-{DD}/{HH}{mm}{ss}-{id}.ndjson.gz' }).deliver(batch, deliveryContext());
    expect(await server.keys(bucket)).toEqual([`archive/logs/dt=2019-05-25/161458-${batch.id}.ndjson.gz`]);
  });

  test('writes one object per bucket and prefix when a batch mixes them', async () => {
    const batch = makeBatch([
      { bucket, prefix: 'a', payload: { n: 1 } },
      { bucket, prefix: 'b/', payload: { n: 2 } },
      { bucket: otherBucket, prefix: 'a', payload: { n: 3 } },
      { bucket, prefix: 'a/', payload: { n: 4 } },
    ]);
    const report = await destination().deliver(batch, deliveryContext());
    expect(report).toBeUndefined();
    expect((await server.keys(bucket)).map((key) => key.split('/')[0])).toEqual(['a', 'b']);
    expect(await server.readAll(bucket)).toEqual(expect.arrayContaining([{ n: 1 }, { n: 2 }, { n: 4 }]));
    expect(await server.readAll(otherBucket)).toEqual([{ n: 3 }]);
  });

  test('sends the storage class and server-side encryption asked for', async () => {
    await destination({ storageClass: 'STANDARD_IA', serverSideEncryption: 'AES256' }).deliver(makeBatch(events(1)), deliveryContext());
    const put = server.requests.find((request) => request.operation === 'PutObject');
    expect(put?.headers['x-amz-storage-class']).toBe('STANDARD_IA');
    expect(put?.headers['x-amz-server-side-encryption']).toBe('AES256');
  });
});

describe('multipart', () => {
  // Random base64 compresses to about three quarters, so 12 MiB of it makes two parts of 5 MiB or more.
  function largeBatch(megabytes: number) {
    const line = 64 * 1024;
    const count = Math.ceil((megabytes * 1024 * 1024) / line);
    return makeBatch(Array.from({ length: count }, (_, index) => ({ bucket, prefix: 'big', payload: { n: index, blob: randomBytes((line * 3) / 4).toString('base64') } })));
  }
  const multipartOptions = { multipartThreshold: '5MiB', multipartPartSize: '5MiB', compressionLevel: 1 } as const;

  test('uploads a large object in parts and reads back whole', async () => {
    const batch = largeBatch(12);
    await destination(multipartOptions).deliver(batch, deliveryContext());
    const operations = server.requests.map((request) => request.operation);
    expect(operations.filter((operation) => operation === 'CreateMultipartUpload')).toHaveLength(1);
    expect(operations.filter((operation) => operation === 'UploadPart').length).toBeGreaterThanOrEqual(2);
    expect(operations.filter((operation) => operation === 'CompleteMultipartUpload')).toHaveLength(1);
    expect(operations).not.toContain('PutObject');
    const [key] = await server.keys(bucket);
    expect(key).toBe(`big/2019/05/25/16/2019-05-25-16-14-58-${batch.id}.gz`);
    const object = await server.readObject(bucket, key!);
    expect(object.contentEncoding).toBe('gzip');
    expect(object.lines.map((line) => (line as { n: number }).n)).toEqual(batch.events.map((_, index) => index));
    expect(await server.multipartUploads(bucket)).toEqual([]);
  });

  test('aborts a multipart upload that fails midway and leaves no upload or object behind', async () => {
    server.inject({ operation: 'UploadPart', after: 1, times: 1, status: 500, code: 'InternalError' });
    const batch = largeBatch(12);
    const failure = await destination(multipartOptions)
      .deliver(batch, deliveryContext())
      .then(() => undefined, (error: unknown) => error);
    expect(RetryableError.isInstance(failure)).toBe(true);
    expect((failure as Error).message).toContain('UploadPart');
    expect(server.requests.map((request) => request.operation)).toContain('AbortMultipartUpload');
    expect(await server.multipartUploads(bucket)).toEqual([]);
    expect(await server.keys(bucket)).toEqual([]);

    // The retry of the same batch writes the object once.
    await destination(multipartOptions).deliver({ ...batch, attempt: 2 }, deliveryContext());
    expect(await server.keys(bucket)).toHaveLength(1);
    expect((await server.readAll(bucket)).length).toBe(batch.events.length);
  });

  test('aborts the multipart upload when the delivery is cancelled', async () => {
    const controller = new AbortController();
    server.inject({ operation: 'UploadPart', after: 1, times: 1, hang: true });
    const delivery = destination(multipartOptions).deliver(largeBatch(12), deliveryContext(controller.signal));
    await expect.poll(() => server.requests.filter((request) => request.operation === 'UploadPart').length, { timeout: 20_000 }).toBeGreaterThanOrEqual(2);
    controller.abort();
    const failure = await delivery.then(() => undefined, (error: unknown) => error);
    expect(RetryableError.isInstance(failure)).toBe(true);
    expect(server.requests.map((request) => request.operation)).toContain('AbortMultipartUpload');
    expect(await server.multipartUploads(bucket)).toEqual([]);
    expect(await server.keys(bucket)).toEqual([]);
  });

  test('sends a batch whose text is above the threshold but compresses below it with one PutObject', async () => {
    const batch = makeBatch(Array.from({ length: 60_000 }, (_, index) => ({ bucket, prefix: 'p', payload: { n: index, text: 'the same words again and again' } })));
    await destination({ multipartThreshold: '5MiB' }).deliver(batch, deliveryContext());
    expect(server.requests.map((request) => request.operation)).toContain('PutObject');
    expect(server.requests.map((request) => request.operation)).not.toContain('CreateMultipartUpload');
    expect((await server.readAll(bucket)).length).toBe(60_000);
  });
});

describe('outcomes', () => {
  async function failureOf(promise: Promise<unknown>): Promise<Error> {
    return promise.then(
      () => {
        throw new Error('expected the delivery to fail');
      },
      (error: unknown) => error as Error,
    );
  }

  test('SlowDown (503) is retryable and carries Retry-After', async () => {
    server.inject({ operation: 'PutObject', times: 1, status: 503, code: 'SlowDown', retryAfter: '7' });
    const failure = await failureOf(destination().deliver(makeBatch(events(2)), deliveryContext()));
    expect(RetryableError.isInstance(failure)).toBe(true);
    expect((failure as RetryableError).retryAfter).toBe(7000);
    expect(failure.message).toContain('SlowDown');
  });

  test.each([
    [500, 'InternalError'],
    [503, 'ServiceUnavailable'],
    [502, 'BadGateway'],
    [400, 'ThrottlingException'],
  ])('HTTP %i %s is retryable', async (status, code) => {
    server.inject({ operation: 'PutObject', times: 1, status, code });
    const failure = await failureOf(destination().deliver(makeBatch(events(1)), deliveryContext()));
    expect(RetryableError.isInstance(failure)).toBe(true);
  });

  test('a dropped connection is retryable', async () => {
    server.inject({ operation: 'PutObject', times: 1, disconnect: true });
    const failure = await failureOf(destination().deliver(makeBatch(events(1)), deliveryContext()));
    expect(RetryableError.isInstance(failure)).toBe(true);
  });

  test('a store that does not answer is retryable', async () => {
    const closed = s3({ ...server.clientOptions, endpoint: 'http://127.0.0.1:1', maxAttempts: 1 });
    const failure = await failureOf(closed.deliver(makeBatch(events(1)), deliveryContext()));
    expect(RetryableError.isInstance(failure)).toBe(true);
  });

  test('a missing bucket is permanent and says so', async () => {
    const batch = makeBatch([{ bucket: 'no-such-bucket', prefix: 'x', payload: { n: 1 } }]);
    const failure = await failureOf(destination().deliver(batch, deliveryContext()));
    expect(PermanentError.isInstance(failure)).toBe(true);
    expect(failure.message).toContain('NoSuchBucket');
    expect(failure.message).toContain('s3://no-such-bucket/');
  });

  test.each([
    [403, 'AccessDenied'],
    [400, 'InvalidBucketName'],
  ])('HTTP %i %s is permanent', async (status, code) => {
    server.inject({ operation: 'PutObject', times: 1, status, code });
    const failure = await failureOf(destination().deliver(makeBatch(events(1)), deliveryContext()));
    expect(PermanentError.isInstance(failure)).toBe(true);
    expect(failure.message).toContain(code);
  });

  test('unknown credentials are permanent and neither key appears in the error', async () => {
    // s3rver echoes the access key id in its error document, as AWS does for InvalidAccessKeyId.
    const accessKeyId = 'AKIAEGRESSTESTKEY0001';
    const secretAccessKey = 'not-the-secret-9f8e7d6c5b4a';
    const adapter = s3({ ...server.clientOptions, credentials: { accessKeyId, secretAccessKey }, maxAttempts: 1 });
    const failure = await failureOf(adapter.deliver(makeBatch(events(1)), deliveryContext()));
    expect(PermanentError.isInstance(failure)).toBe(true);
    expect(failure.message).toContain('InvalidAccessKeyId');
    const cause = failure.cause as Error;
    const everything = JSON.stringify({ message: failure.message, stack: failure.stack, cause, causeMessage: cause.message, causeStack: cause.stack, own: Object.entries(failure) });
    expect(everything).not.toContain(secretAccessKey);
    expect(everything).not.toContain(accessKeyId);
  });

  test('reports per-object failures when a batch mixes buckets', async () => {
    const batch = makeBatch([
      { bucket, prefix: 'ok', payload: { n: 1 } },
      { bucket: 'no-such-bucket', prefix: 'x', payload: { n: 2 } },
    ]);
    const report = await destination().deliver(batch, deliveryContext());
    expect(report?.failures.map((failure) => failure.eventId)).toEqual([batch.events[1]!.id]);
    expect(PermanentError.isInstance(report?.failures[0]!.error)).toBe(true);
    expect(await server.readAll(bucket)).toEqual([{ n: 1 }]);
  });
});
