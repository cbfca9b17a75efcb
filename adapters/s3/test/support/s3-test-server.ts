import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { DeleteObjectCommand, GetObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';

/** The S3 operations the fault injector and the request log tell apart. */
export type S3Operation =
  | 'PutObject'
  | 'UploadPart'
  | 'CreateMultipartUpload'
  | 'CompleteMultipartUpload'
  | 'AbortMultipartUpload'
  | 'ListMultipartUploads'
  | 'GetObject'
  | 'ListObjects'
  | 'Other';

/** The next `times` requests of `operation` fail as described instead of reaching s3rver. */
export interface Fault {
  operation: S3Operation;
  times: number;
  /** Requests of this operation to let through before failing (e.g. fail the second part). */
  after?: number;
  status?: number;
  code?: string;
  retryAfter?: string;
  /** Drop the connection without an answer, as a network failure would. */
  disconnect?: boolean;
  /** Never answer: the request hangs until the client gives up. */
  hang?: boolean;
  /** Let s3rver store the object, then drop the connection: the write happened but the client never hears it. */
  loseAnswer?: boolean;
}

export interface LoggedRequest {
  operation: S3Operation;
  path: string;
  headers: Record<string, string | string[] | undefined>;
}

export interface S3TestServer {
  endpoint: string;
  /** A client for the test's own reads, with the SDK's retries off so nothing is hidden. */
  client: S3Client;
  clientOptions: { endpoint: string; region: string; forcePathStyle: true; credentials: { accessKeyId: string; secretAccessKey: string } };
  requests: LoggedRequest[];
  inject(fault: Fault): void;
  keys(bucket: string): Promise<string[]>;
  readObject(bucket: string, key: string): Promise<{ lines: unknown[]; contentType: string | undefined; contentEncoding: string | undefined; metadata: Record<string, string>; size: number }>;
  /** Every NDJSON line of every object in the bucket. */
  readAll(bucket: string): Promise<unknown[]>;
  multipartUploads(bucket: string): Promise<string[]>;
  empty(bucket: string): Promise<void>;
  close(): Promise<void>;
}

function operationOf(method: string, query: Record<string, unknown>, path: string): S3Operation {
  const isObject = path.split('/').filter(Boolean).length > 1;
  if (method === 'PUT' && isObject) return 'uploadId' in query ? 'UploadPart' : 'PutObject';
  if (method === 'POST' && 'uploads' in query) return 'CreateMultipartUpload';
  if (method === 'POST' && 'uploadId' in query) return 'CompleteMultipartUpload';
  if (method === 'DELETE' && 'uploadId' in query) return 'AbortMultipartUpload';
  if (method === 'GET' && !isObject && 'uploads' in query) return 'ListMultipartUploads';
  if (method === 'GET' && isObject) return 'GetObject';
  if (method === 'GET') return 'ListObjects';
  return 'Other';
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * s3rver on loopback, in a temporary directory, with what the tests need beside it: a fault
 * injector that answers chosen requests with S3 errors or a dropped connection, a log of requests,
 * and ListMultipartUploads and AbortMultipartUpload, which s3rver lacks, implemented over s3rver's
 * own store so that "no upload left behind" is checked on the server's files.
 */
export async function startS3TestServer(buckets: readonly string[]): Promise<S3TestServer> {
  const directory = await mkdtemp(join(tmpdir(), 'egress-s3-'));
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory, configureBuckets: buckets.map((name) => ({ name, configs: [] })) });
  const store = (server as unknown as { store: { getResourcePath(bucket: string, key: undefined, resource: string): string } }).store;
  const faults: (Fault & { seen: number })[] = [];
  const requests: LoggedRequest[] = [];
  const uploadsDirectory = (bucket: string) => store.getResourcePath(bucket, undefined, 'uploads');

  type Context = {
    method: string;
    path: string;
    query: Record<string, unknown>;
    headers: Record<string, string | string[] | undefined>;
    req: NodeJS.ReadableStream & { socket: { destroy(): void; once(event: 'close', listener: () => void): void } };
    status: number;
    body: unknown;
    type: string;
    set(name: string, value: string): void;
  };
  const middleware = async (context: Context, next: () => Promise<void>) => {
    const operation = operationOf(context.method, context.query, context.path);
    requests.push({ operation, path: context.path, headers: { ...context.headers } });
    const fault = faults.find((candidate) => candidate.operation === operation && candidate.times > 0);
    if (fault) {
      fault.seen += 1;
      if (fault.seen > (fault.after ?? 0)) {
        fault.times -= 1;
        if (fault.loseAnswer) {
          await next();
          context.req.socket.destroy();
          return;
        }
        // Read the body first, so the client hears the answer rather than a reset mid-upload.
        for await (const _chunk of context.req) void _chunk;
        if (fault.hang) {
          await new Promise<void>((resolve) => context.req.socket.once('close', () => resolve()));
          return;
        }
        if (fault.disconnect) {
          context.req.socket.destroy();
          return;
        }
        const code = fault.code ?? 'InternalError';
        if (fault.retryAfter !== undefined) context.set('Retry-After', fault.retryAfter);
        context.status = fault.status ?? 500;
        context.type = 'application/xml';
        context.body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>injected ${escapeXml(code)}</Message><RequestId>test</RequestId></Error>`;
        return;
      }
    }
    const [bucket, ...keyParts] = context.path.split('/').filter(Boolean);
    if (operation === 'ListMultipartUploads' && bucket) {
      const root = uploadsDirectory(bucket);
      const ids = await readdir(root).catch(() => [] as string[]);
      const uploads = await Promise.all(ids.map(async (id) => ({ id, key: await readFile(join(root, id, 'key'), 'utf8') })));
      context.type = 'application/xml';
      context.body =
        `<?xml version="1.0" encoding="UTF-8"?>\n<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>${escapeXml(bucket)}</Bucket>` +
        `<MaxUploads>1000</MaxUploads><IsTruncated>false</IsTruncated>` +
        uploads.map((upload) => `<Upload><Key>${escapeXml(upload.key)}</Key><UploadId>${escapeXml(upload.id)}</UploadId></Upload>`).join('') +
        `</ListMultipartUploadsResult>`;
      return;
    }
    if (operation === 'AbortMultipartUpload' && bucket && keyParts.length > 0) {
      const uploadId = String(context.query.uploadId);
      const folder = join(uploadsDirectory(bucket), uploadId);
      const exists = await readdir(folder).then(() => true, () => false);
      if (!exists || uploadId.includes('/') || uploadId.includes('..')) {
        context.status = 404;
        context.type = 'application/xml';
        context.body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchUpload</Code><Message>The specified upload does not exist.</Message></Error>`;
        return;
      }
      await rm(folder, { recursive: true, force: true });
      context.status = 204;
      return;
    }
    await next();
  };
  (server as unknown as { middleware: unknown[] }).middleware.unshift(middleware);
  const address = await server.run();
  const endpoint = `http://127.0.0.1:${address.port}`;
  const clientOptions = {
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true as const,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  };
  const client = new S3Client({ ...clientOptions, maxAttempts: 1 });

  const keys = async (bucket: string): Promise<string[]> => {
    const found: string[] = [];
    let token: string | undefined;
    do {
      const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
      for (const entry of page.Contents ?? []) if (entry.Key) found.push(entry.Key);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return found.sort();
  };
  const readObject = async (bucket: string, key: string) => {
    const response = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    const compressed = Buffer.from(await response.Body!.transformToByteArray());
    const text = gunzipSync(compressed).toString('utf8');
    if (!text.endsWith('\n')) throw new Error(`object ${key} does not end with a newline`);
    const lines = text.slice(0, -1).split('\n').map((line) => JSON.parse(line) as unknown);
    return { lines, contentType: response.ContentType, contentEncoding: response.ContentEncoding, metadata: response.Metadata ?? {}, size: compressed.length };
  };

  return {
    endpoint,
    client,
    clientOptions,
    requests,
    inject(fault) {
      faults.push({ ...fault, seen: 0 });
    },
    keys,
    readObject,
    async readAll(bucket) {
      const lines: unknown[] = [];
      for (const key of await keys(bucket)) lines.push(...(await readObject(bucket, key)).lines);
      return lines;
    },
    async multipartUploads(bucket) {
      const response = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
      return (response.Uploads ?? []).map((upload) => upload.UploadId!);
    },
    async empty(bucket) {
      // One at a time: s3rver removes emptied folders after each delete and races with itself on a batch delete.
      for (const key of await keys(bucket)) await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
      faults.length = 0;
      requests.length = 0;
    },
    async close() {
      client.destroy();
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}
