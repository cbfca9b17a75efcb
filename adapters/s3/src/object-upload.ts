import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { createGzip, gzip } from 'node:zlib';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  UploadPartCommand,
  type CompletedPart,
  type ServerSideEncryption,
  type StorageClass,
} from '@aws-sdk/client-s3';
import { PermanentError, RetryableError, type Logger } from '@egress/core';
import { classifyS3Error } from './s3-error-classification.js';
import type { ResolvedS3Options } from './s3-options.js';

const gzipAsync = promisify(gzip);

/** How objects are written, as the destination's options settle it. */
export type UploadSettings = Pick<
  ResolvedS3Options,
  'client' | 'compressionLevel' | 'storageClass' | 'serverSideEncryption' | 'sseKmsKeyId' | 'multipartThreshold' | 'multipartPartSize' | 'multipartConcurrency'
>;

/** One object to write: where, what, and how. */
export interface ObjectUpload extends UploadSettings {
  bucket: string;
  key: string;
  /** The NDJSON text, UTF-8, in pieces of any size, in order. */
  chunks: readonly Buffer[];
  /** Total bytes of `chunks`. */
  uncompressedBytes: number;
  /** User metadata of the object (`x-amz-meta-*`): the delivery's trace context, when tracing is on. */
  metadata?: Readonly<Record<string, string>>;
  signal: AbortSignal;
  logger: Logger;
}

/** How the object went up, for logs and tests. */
export interface UploadResult {
  compressedBytes: number;
  parts: number;
}

/** How long an AbortMultipartUpload may take; it runs after the delivery's own signal may have fired. */
const abortTimeout = 10_000;

/**
 * Gzips the NDJSON and writes it under its key. An object whose uncompressed text is under the
 * multipart threshold cannot be above it compressed (beyond gzip's 18-byte frame on incompressible
 * data, which S3 does not mind), so it is compressed in one call off the main thread and sent with
 * one PutObject. A larger one is compressed as a stream: if the compressed output stays under the
 * threshold it still goes up in one PutObject, otherwise parts are uploaded as they fill, so memory
 * holds a few parts rather than the whole object. A multipart upload that fails is aborted.
 */
export async function uploadObject(upload: ObjectUpload): Promise<UploadResult> {
  if (upload.uncompressedBytes < upload.multipartThreshold) {
    const text = upload.chunks.length === 1 ? upload.chunks[0]! : Buffer.concat(upload.chunks, upload.uncompressedBytes);
    const body = await gzipAsync(text, { level: upload.compressionLevel });
    await putObject(upload, body);
    return { compressedBytes: body.length, parts: 1 };
  }
  return streamObject(upload);
}

function objectParameters(upload: ObjectUpload) {
  return {
    Bucket: upload.bucket,
    Key: upload.key,
    ContentType: 'application/x-ndjson',
    ContentEncoding: 'gzip',
    ...(upload.storageClass !== undefined && { StorageClass: upload.storageClass }),
    ...(upload.serverSideEncryption !== undefined && { ServerSideEncryption: upload.serverSideEncryption }),
    ...(upload.sseKmsKeyId !== undefined && { SSEKMSKeyId: upload.sseKmsKeyId }),
    ...(upload.metadata !== undefined && { Metadata: { ...upload.metadata } }),
  };
}

function location(upload: ObjectUpload): string {
  return `s3://${upload.bucket}/${upload.key}`;
}

async function putObject(upload: ObjectUpload, body: Buffer): Promise<void> {
  try {
    await upload.client.send(new PutObjectCommand({ ...objectParameters(upload), Body: body, ContentLength: body.length }), { abortSignal: upload.signal });
  } catch (error) {
    throw classifyS3Error(error, 'PutObject', location(upload));
  }
}

async function streamObject(upload: ObjectUpload): Promise<UploadResult> {
  const compressor = createGzip({ level: upload.compressionLevel, chunkSize: 256 * 1024 });
  // Errors surface through the loop over `compressor` below; the pipeline's own promise is not awaited.
  pipeline(Readable.from(upload.chunks), compressor).catch(() => {});

  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let compressedBytes = 0;
  let uploadId: string | undefined;
  const parts: CompletedPart[] = [];
  const inFlight = new Set<Promise<void>>();
  // Stops the other parts when one fails, so that nothing is written after the abort.
  const partsController = new AbortController();
  const partSignal = AbortSignal.any([upload.signal, partsController.signal]);
  let failure: unknown;

  const take = (bytes: number): Buffer => {
    const joined = Buffer.concat(pending, pendingBytes);
    const part = joined.subarray(0, bytes);
    const rest = joined.subarray(bytes);
    pending = rest.length > 0 ? [rest] : [];
    pendingBytes = rest.length;
    return part;
  };

  const startPart = async (body: Buffer): Promise<void> => {
    while (inFlight.size >= upload.multipartConcurrency) await Promise.race(inFlight);
    if (failure !== undefined) throw failure;
    const partNumber = parts.length + 1;
    const part: CompletedPart = { PartNumber: partNumber };
    parts.push(part);
    const sending = upload.client
      .send(new UploadPartCommand({ Bucket: upload.bucket, Key: upload.key, UploadId: uploadId, PartNumber: partNumber, Body: body, ContentLength: body.length }), { abortSignal: partSignal })
      .then(
        (response) => {
          part.ETag = response.ETag;
          if (response.ChecksumCRC32 !== undefined) part.ChecksumCRC32 = response.ChecksumCRC32;
        },
        (error: unknown) => {
          failure ??= classifyS3Error(error, `UploadPart ${partNumber}`, location(upload));
          partsController.abort();
        },
      )
      .finally(() => inFlight.delete(sending));
    inFlight.add(sending);
  };

  try {
    for await (const chunk of compressor as AsyncIterable<Buffer>) {
      upload.signal.throwIfAborted();
      pending.push(chunk);
      pendingBytes += chunk.length;
      compressedBytes += chunk.length;
      if (uploadId === undefined && pendingBytes >= upload.multipartThreshold) {
        uploadId = await createMultipartUpload(upload);
      }
      while (uploadId !== undefined && pendingBytes >= upload.multipartPartSize) {
        await startPart(take(upload.multipartPartSize));
      }
    }
    if (uploadId === undefined) {
      await putObject(upload, take(pendingBytes));
      return { compressedBytes, parts: 1 };
    }
    if (pendingBytes > 0 || parts.length === 0) await startPart(take(pendingBytes));
    await Promise.all(inFlight);
    if (failure !== undefined) throw failure;
    await completeMultipartUpload(upload, uploadId, parts);
    return { compressedBytes, parts: parts.length };
  } catch (error) {
    compressor.destroy();
    partsController.abort();
    await Promise.allSettled(inFlight);
    if (uploadId !== undefined) await abortMultipartUpload(upload, uploadId);
    if (RetryableError.isInstance(error) || PermanentError.isInstance(error)) throw error;
    throw classifyS3Error(error, 'multipart upload', location(upload));
  }
}

async function createMultipartUpload(upload: ObjectUpload): Promise<string> {
  try {
    const response = await upload.client.send(new CreateMultipartUploadCommand(objectParameters(upload)), { abortSignal: upload.signal });
    if (response.UploadId === undefined) throw new Error('the store answered without an UploadId');
    return response.UploadId;
  } catch (error) {
    throw classifyS3Error(error, 'CreateMultipartUpload', location(upload));
  }
}

async function completeMultipartUpload(upload: ObjectUpload, uploadId: string, parts: CompletedPart[]): Promise<void> {
  try {
    await upload.client.send(
      new CompleteMultipartUploadCommand({ Bucket: upload.bucket, Key: upload.key, UploadId: uploadId, MultipartUpload: { Parts: parts } }),
      { abortSignal: upload.signal },
    );
  } catch (error) {
    throw classifyS3Error(error, 'CompleteMultipartUpload', location(upload));
  }
}

/**
 * Parts of an upload that is neither completed nor aborted stay in the bucket, invisible and billed.
 * The abort gets its own time limit, as the delivery's signal may be what stopped the upload.
 */
async function abortMultipartUpload(upload: ObjectUpload, uploadId: string): Promise<void> {
  try {
    await upload.client.send(new AbortMultipartUploadCommand({ Bucket: upload.bucket, Key: upload.key, UploadId: uploadId }), {
      abortSignal: AbortSignal.timeout(abortTimeout),
    });
  } catch (error) {
    const reason = classifyS3Error(error, 'AbortMultipartUpload', location(upload));
    upload.logger.warn({ bucket: upload.bucket, key: upload.key, uploadId }, `${reason.message}; the incomplete upload stays until a lifecycle rule removes it`);
  }
}
