import { defineDestination, type BatchEvent, type DeliveryReport, type Destination } from '@egress/core';
import { normalizePrefix } from './object-key.js';
import { uploadObject } from './object-upload.js';
import { s3InputSchema, type S3Input, type S3Payload } from './s3-input-schema.js';
import { maximumParts, resolveS3Options, type S3DestinationOptions } from './s3-options.js';

/** The payload as it is queued: the input, checked. */
export interface S3QueuedPayload {
  bucket: string;
  prefix: string;
  payload: S3Payload;
}

/** NDJSON lines are joined into pieces of about this size before compression. */
const chunkTarget = 1024 * 1024;

/**
 * Writes events to S3 or any S3-compatible store (`$send.s3({ bucket, prefix, payload })`).
 * Events of one bucket and prefix are batched and written as one gzip-compressed NDJSON object,
 * keyed by the batch's first event time and the batch id, so a retried batch overwrites its own
 * object instead of adding a second one.
 */
export function s3(options: S3DestinationOptions = {}): Destination<'s3', S3Input, S3QueuedPayload> {
  const resolved = resolveS3Options(options);

  return defineDestination({
    name: 's3',
    input: s3InputSchema,
    defaults: {
      batch: { maxDelay: '60s', maxEvents: 10_000, maxBytes: '8MiB' },
      timeout: '5m',
    },
    limits: {
      // One object is held in memory while it is compressed.
      maxEvents: 1_000_000,
      // The uncompressed size bounds the compressed one, so such a batch always fits in S3's 10,000 parts.
      maxBytes: resolved.multipartPartSize * maximumParts,
    },
    // Bucket names cannot contain "/", so this key is unambiguous; `logs/a` and `logs/a/` share objects.
    partition: (payload) => `${payload.bucket}/${normalizePrefix(payload.prefix)}`,
    measure: (payload, payloadJson) => Buffer.byteLength(lineText(payload, payloadJson), 'utf8') + 1,

    async deliver(batch, { signal, logger }): Promise<DeliveryReport | void> {
      const groups = groupByObject(batch.events);
      const write = async (group: ObjectGroup): Promise<void> => {
        const first = group.events[0]!;
        const key = resolved.buildKey(group.prefix, new Date(first.sentAt), batch.id);
        const { chunks, bytes } = encodeLines(group.events);
        const result = await uploadObject({ ...resolved, bucket: group.bucket, key, chunks, uncompressedBytes: bytes, signal, logger });
        logger.debug({ bucket: group.bucket, key, events: group.events.length, bytes, compressedBytes: result.compressedBytes, parts: result.parts }, '[s3] object written');
      };
      // With the default partitioning a batch is one object; a user's `partitionBy` may mix targets.
      if (groups.length === 1) return write(groups[0]!);
      const failures: { eventId: string; error: unknown }[] = [];
      await Promise.all(
        groups.map(async (group) => {
          try {
            await write(group);
          } catch (error) {
            for (const event of group.events) failures.push({ eventId: event.id, error });
          }
        }),
      );
      return failures.length > 0 ? { failures } : undefined;
    },

    async stop() {
      if (resolved.ownsClient) resolved.client.destroy();
    },
  });
}

interface ObjectGroup {
  bucket: string;
  prefix: string;
  events: BatchEvent<S3QueuedPayload>[];
}

function groupByObject(events: readonly BatchEvent<S3QueuedPayload>[]): ObjectGroup[] {
  // The usual case, every event with the first one's bucket and prefix, costs two comparisons each.
  const first = events[0]!.payload;
  if (events.every((event) => event.payload.bucket === first.bucket && event.payload.prefix === first.prefix)) {
    return [{ bucket: first.bucket, prefix: normalizePrefix(first.prefix), events: [...events] }];
  }
  const groups = new Map<string, ObjectGroup>();
  for (const event of events) {
    const prefix = normalizePrefix(event.payload.prefix);
    const target = `${event.payload.bucket}/${prefix}`;
    let group = groups.get(target);
    if (group === undefined) {
      group = { bucket: event.payload.bucket, prefix, events: [] };
      groups.set(target, group);
    }
    group.events.push(event);
  }
  return [...groups.values()];
}

/**
 * The event's NDJSON line: its `payload` field as JSON. The queued JSON text of the whole input is
 * `{"bucket":…,"prefix":…,"payload":…}`, in the schema's key order, so the line is the tail of
 * that text once the envelope is checked to be exactly what these bucket and prefix make; taking
 * it costs a comparison where encoding the payload again costs a walk over all of it.
 */
function lineText(payload: S3QueuedPayload, payloadJson: string | undefined): string {
  if (payloadJson !== undefined) {
    const head = `{"bucket":${JSON.stringify(payload.bucket)},"prefix":${JSON.stringify(payload.prefix)},"payload":`;
    if (payloadJson.startsWith(head) && payloadJson.endsWith('}')) return payloadJson.slice(head.length, -1);
  }
  return JSON.stringify(payload.payload);
}

/** One JSON text per line; a string payload becomes a JSON string, so every line parses. */
function encodeLines(events: readonly BatchEvent<S3QueuedPayload>[]): { chunks: Buffer[]; bytes: number } {
  const chunks: Buffer[] = [];
  let current = '';
  let bytes = 0;
  for (const event of events) {
    current += lineText(event.payload, event.payloadJson) + '\n';
    if (current.length >= chunkTarget) {
      const chunk = Buffer.from(current, 'utf8');
      bytes += chunk.length;
      chunks.push(chunk);
      current = '';
    }
  }
  if (current.length > 0) {
    const chunk = Buffer.from(current, 'utf8');
    bytes += chunk.length;
    chunks.push(chunk);
  }
  return { chunks, bytes };
}
