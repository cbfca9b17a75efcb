import { S3Client } from '@aws-sdk/client-s3';
import { EgressConfigurationError, encodePayload } from '@egress/core';
import { describe, expect, test } from 'vitest';
import { s3, type S3DestinationOptions } from '../src/index.js';

function configurationError(options: unknown): EgressConfigurationError {
  try {
    s3(options as S3DestinationOptions);
  } catch (error) {
    if (EgressConfigurationError.isInstance(error)) return error;
    throw error;
  }
  throw new Error('expected s3() to refuse the options');
}

describe('options', () => {
  test.each([
    [{ bucket: 'logs' }, 'bucket', 'unknown option'],
    [{ client: {} }, 'client', 'S3Client'],
    [{ client: new S3Client({ region: 'us-east-1' }), region: 'eu-west-1' }, 'region', 'together with "client"'],
    [{ endpoint: 'localhost:9000' }, 'endpoint', 'http:// or https://'],
    [{ region: 'EU West' }, 'region', 'region name'],
    [{ forcePathStyle: 'yes' }, 'forcePathStyle', 'true or false'],
    [{ credentials: { accessKeyId: 'only-half' } }, 'credentials', 'accessKeyId, secretAccessKey'],
    [{ maxAttempts: 0 }, 'maxAttempts', 'positive integer'],
    [{ key: 'logs/{YYYY}/{MM}.gz' }, 'key', '{id}'],
    [{ key: 'logs/{year}/{id}.gz' }, 'key', 'unknown placeholder {year}'],
    [{ key: '' }, 'key', 'non-empty'],
    [{ compressionLevel: 10 }, 'compressionLevel', '0 to 9'],
    [{ compressionLevel: 2.5 }, 'compressionLevel', '0 to 9'],
    [{ storageClass: 'COLD' }, 'storageClass', 'STANDARD_IA'],
    [{ serverSideEncryption: 'rot13' }, 'serverSideEncryption', 'AES256'],
    [{ sseKmsKeyId: 'key-1' }, 'sseKmsKeyId', 'aws:kms'],
    [{ multipartThreshold: '1MiB' }, 'multipartThreshold', 'at least 5 MiB'],
    [{ multipartThreshold: 'big' }, 'multipartThreshold', 'size'],
    [{ multipartPartSize: '4MiB' }, 'multipartPartSize', '5 MiB to 5 GiB'],
    [{ multipartConcurrency: -1 }, 'multipartConcurrency', 'positive integer'],
  ])('refuses %j naming the option', (options, name, expected) => {
    const error = configurationError(options);
    expect(error.path).toBe(`[s3] option "${name}"`);
    expect(error.message).toContain(`[s3] option "${name}"`);
    expect(error.message).toContain(expected);
  });

  test('never repeats a credential in the message', () => {
    const error = configurationError({ credentials: { accessKeyId: 'AKIAEGRESSTESTKEY0001', secretAccessKey: 42 } });
    expect(error.message).not.toContain('AKIAEGRESSTESTKEY0001');
  });

  test('accepts a client, or settings, or nothing (the usual AWS chain)', () => {
    expect(s3({ client: new S3Client({ region: 'us-east-1' }) }).name).toBe('s3');
    expect(s3({ endpoint: 'http://127.0.0.1:9000', forcePathStyle: true, credentials: { accessKeyId: 'a', secretAccessKey: 'b' } }).name).toBe('s3');
    expect(s3().name).toBe('s3');
    expect(s3({ serverSideEncryption: 'aws:kms', sseKmsKeyId: 'arn:aws:kms:eu-west-1:111122223333:key/abc' }).name).toBe('s3');
  });

  test('batches once a minute by default and keeps every batch within 10,000 parts', () => {
    const destination = s3({ multipartPartSize: '16MiB' });
    expect(destination.defaults?.batch).toMatchObject({ maxDelay: '60s', maxEvents: 10_000, maxBytes: '8MiB' });
    expect(destination.limits?.maxBytes).toBe(16 * 1024 * 1024 * 10_000);
  });
});

describe('$send.s3 input', () => {
  const destination = s3();
  function validate(value: unknown) {
    const result = destination.input['~standard'].validate(value);
    if (result instanceof Promise) throw new Error('validation must be synchronous');
    return result;
  }
  function issues(value: unknown): { path: string; message: string }[] {
    const result = validate(value);
    if (!result.issues) throw new Error('expected issues');
    return result.issues.map((issue) => ({
      path: (issue.path ?? []).map((segment) => (typeof segment === 'object' ? String(segment.key) : String(segment))).join('.'),
      message: issue.message,
    }));
  }

  test('accepts a string, an object or an array payload', () => {
    for (const payload of ['text', { a: 1, b: [true, null], c: { d: 'e' }, skipped: undefined }, [1, 2, 3]]) {
      const result = validate({ bucket: 'logs', prefix: 'a/', payload });
      expect(result.issues).toBeUndefined();
    }
  });

  test('requires bucket, prefix and payload', () => {
    expect(issues({}).map((issue) => issue.path).sort()).toEqual(['bucket', 'payload', 'prefix']);
  });

  test('refuses unknown keys, so a misspelt field is not lost', () => {
    const found = issues({ bucket: 'logs', prefix: '', payload: {}, data: { n: 1 } });
    expect(found.map((issue) => issue.message).join(' ')).toContain('data');
  });

  test.each([
    [42, 'payload', 'expected a string, an object or an array'],
    [null, 'payload', 'expected a string, an object or an array'],
    [{ when: new Date(0) }, 'payload.when', 'toISOString'],
    [{ list: [1, Number.NaN] }, 'payload.list.1', 'finite number'],
    [{ big: 10n }, 'payload.big', 'bigint'],
    [{ run: () => 1 }, 'payload.run', 'function'],
    [{ bytes: new Uint8Array(2) }, 'payload.bytes', 'Uint8Array'],
  ])('refuses the payload %s at %s', (payload, path, message) => {
    const [issue] = issues({ bucket: 'logs', prefix: '', payload });
    expect(issue?.path).toBe(path);
    expect(issue?.message).toContain(message);
  });

  test('refuses a circular payload', () => {
    const payload: Record<string, unknown> = { a: 1 };
    payload.self = payload;
    expect(issues({ bucket: 'logs', prefix: '', payload })[0]?.message).toContain('circular');
  });

  test('accepts an object that appears twice without a cycle', () => {
    const shared = { n: 1 };
    expect(validate({ bucket: 'logs', prefix: '', payload: { first: shared, second: [shared, shared] } }).issues).toBeUndefined();
  });

  test('judges each payload afresh after refusing one deep inside', () => {
    const payload = { a: [{ b: { c: Number.NaN } }] };
    for (let round = 0; round < 2; round++) {
      const [issue] = issues({ bucket: 'logs', prefix: '', payload });
      expect(issue).toEqual({ path: 'payload.a.0.b.c', message: expect.stringContaining('finite number') });
    }
  });

  test.each(['logs\r\nx', 'logs\u0000', 'my logs', 'Logs', 'log_s', '-logs', 'logs-', 'lo..gs', '192.168.0.1', 'xn--logs', 'logs-s3alias', 'a'.repeat(64)])('refuses the bucket name %j by S3\'s naming rules', (bucket) => {
    expect(issues({ bucket, prefix: '', payload: 'x' })[0]?.path).toBe('bucket');
  });

  test.each(['logs', 'my-logs.2024', 'a1b', 'a'.repeat(63)])('accepts the bucket name %j', (bucket) => {
    expect(validate({ bucket, prefix: '', payload: 'x' }).issues).toBeUndefined();
  });

  test('a payload nested deeper than core allows is refused, not overflowing the stack, even called directly', () => {
    const [issue] = issues({ bucket: 'logs', prefix: '', payload: JSON.parse(`${'['.repeat(100_000)}${']'.repeat(100_000)}`) });
    expect(issue?.message).toContain('nested deeper than');
  });

  test.each([
    [{ bucket: 'ab', prefix: '', payload: 'x' }, 'bucket'],
    [{ bucket: 'logs/2024', prefix: '', payload: 'x' }, 'bucket'],
    [{ bucket: 'logs', prefix: 7, payload: 'x' }, 'prefix'],
  ])('refuses %j at %s', (input, path) => {
    expect(issues(input)[0]?.path).toBe(path);
  });

  test('measures the NDJSON line and partitions by bucket and normalised prefix', () => {
    expect(destination.measure?.({ bucket: 'logs', prefix: 'a', payload: { é: 1 } })).toBe(Buffer.byteLength('{"é":1}\n'));
    expect(destination.measure?.({ bucket: 'logs', prefix: 'a', payload: 'hi' })).toBe('"hi"\n'.length);
    const partitions = ['a/b', '/a/b/', 'a//b'].map((prefix) => destination.partition?.({ bucket: 'logs', prefix, payload: 'x' }));
    expect(new Set(partitions)).toEqual(new Set(['logs/a/b']));
    expect(destination.partition?.({ bucket: 'other', prefix: 'a/b', payload: 'x' })).toBe('other/a/b');
  });

  test('measures from the queued JSON text the same as from the payload, and from the payload when the text has another shape', () => {
    const payloads = [
      { bucket: 'logs', prefix: 'a "quoted" \\ prefix/é', payload: { é: 1, nested: { list: [1, 'two', null] } } },
      { bucket: 'logs', prefix: '', payload: 'a line with "quotes" and \u2028' },
      { bucket: 'logs', prefix: 'p', payload: [{}, []] },
    ];
    for (const payload of payloads) {
      const expected = Buffer.byteLength(`${JSON.stringify(payload.payload)}\n`);
      expect(destination.measure?.(payload, encodePayload(payload))).toBe(expected);
      expect(destination.measure?.(payload, '{"unrelated":true}')).toBe(expected);
    }
  });
});
