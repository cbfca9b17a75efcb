import { defineDestination, type BatchEvent, type DeliveryReport, type Destination } from '@egress/core';
import { normalizePrefix } from './object-key.js';
import { hasQueuedHead, payloadStart, queuedHead, splitQueuedJson } from './queued-json.js';
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
    // A credential provider's keys are not known ahead; static ones are masked wherever they could echo.
    secrets: () => credentialSecrets(options.credentials),
    // Bucket names cannot contain "/", so this key is unambiguous; `logs/a` and `logs/a/` share objects.
    partition: (payload) => objectTarget(payload.bucket, payload.prefix).partition,
    // The line's bytes and its newline: the queued text less the part before the payload, its
    // closing brace standing in for the newline.
    measure: (payload, payloadJson) => {
      const { head, headBytes } = objectTarget(payload.bucket, payload.prefix);
      if (hasQueuedHead(payloadJson, head)) return Buffer.byteLength(payloadJson, 'utf8') - headBytes;
      return Buffer.byteLength(JSON.stringify(payload.payload), 'utf8') + 1;
    },

    async deliver(batch, { signal, logger, traceHeaders }): Promise<DeliveryReport | void> {
      const groups = groupByObject(batch.events);
      const write = async (group: ObjectGroup): Promise<void> => {
        const first = group.events[0]!;
        const key = resolved.buildKey(group.prefix, new Date(first.sentAt), batch.id);
        const { chunks, bytes } = encodeLines(group.lines);
        // The attempt's trace context goes with the object as metadata (x-amz-meta-traceparent), where whoever reads it can pick it up.
        const result = await uploadObject({ ...resolved, bucket: group.bucket, key, chunks, uncompressedBytes: bytes, metadata: traceHeaders, signal, logger });
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

// An application writes to few targets. Handing out the same partition string for each keeps the
// engine's per-event work on it (queue lookups by partition) from hashing a freshly built string.
const objectTargets = new Map<string, Map<string, ObjectTarget>>();
const objectTargetsLimit = 1000;

interface ObjectTarget {
  /** `bucket/prefix`: the partition, and the identity of the objects an event goes to. */
  partition: string;
  /** The prefix as it goes into keys (`normalizePrefix`). */
  prefix: string;
  /** How the queued JSON of an event for this bucket and prefix starts, up to its payload. */
  head: string;
  headBytes: number;
}

function objectTarget(bucket: string, prefix: string): ObjectTarget {
  let byPrefix = objectTargets.get(bucket);
  if (byPrefix === undefined) {
    if (objectTargets.size >= objectTargetsLimit) objectTargets.clear();
    objectTargets.set(bucket, (byPrefix = new Map()));
  }
  let target = byPrefix.get(prefix);
  if (target === undefined) {
    const head = queuedHead(bucket, prefix);
    const normalized = normalizePrefix(prefix);
    target = { partition: `${bucket}/${normalized}`, prefix: normalized, head, headBytes: Buffer.byteLength(head, 'utf8') };
    if (byPrefix.size >= objectTargetsLimit) byPrefix.clear();
    byPrefix.set(prefix, target);
  }
  return target;
}

interface ObjectGroup {
  bucket: string;
  prefix: string;
  events: BatchEvent<S3QueuedPayload>[];
  /** Each event's NDJSON line, without its newline, in the order of `events`. */
  lines: string[];
}

/**
 * Groups a batch's events by the object they go to, reading bucket, prefix and line from the
 * queued JSON text where it has the expected shape, so the payloads are never decoded. With the
 * default partitioning every event has the same bucket and prefix and the batch is one group, so
 * each event is first compared with the text before its predecessor's payload: one string
 * comparison, and no allocation but the line's slice.
 */
function groupByObject(events: readonly BatchEvent<S3QueuedPayload>[]): ObjectGroup[] {
  const groups = new Map<string, ObjectGroup>();
  // The queued text before the payload (bucket and prefix as the caller wrote them) to its group.
  const byHead = new Map<string, ObjectGroup>();
  let lastHead = '';
  let lastGroup: ObjectGroup | undefined;
  const groupFor = (bucket: string, rawPrefix: string): ObjectGroup => {
    const { partition, prefix } = objectTarget(bucket, rawPrefix);
    let group = groups.get(partition);
    if (group === undefined) {
      group = { bucket, prefix, events: [], lines: [] };
      groups.set(partition, group);
    }
    return group;
  };
  for (const event of events) {
    const text = event.payloadJson;
    let group: ObjectGroup;
    let line: string;
    // One comparison with the previous event's head instead of reading bucket and prefix again.
    const sameTarget = lastGroup !== undefined && hasQueuedHead(text, lastHead);
    const start = sameTarget ? lastHead.length : payloadStart(text);
    if (start > 0) {
      if (sameTarget) {
        group = lastGroup!;
      } else {
        const head = text!.slice(0, start);
        let known = byHead.get(head);
        if (known === undefined) {
          const parts = splitQueuedJson(text)!;
          known = groupFor(JSON.parse(parts.bucketJson) as string, JSON.parse(parts.prefixJson) as string);
          byHead.set(head, known);
        }
        group = lastGroup = known;
        lastHead = head;
      }
      line = text!.slice(start, -1);
    } else {
      group = groupFor(event.payload.bucket, event.payload.prefix);
      line = JSON.stringify(event.payload.payload);
    }
    group.events.push(event);
    group.lines.push(line);
  }
  return [...groups.values()];
}

/** One JSON text per line; a string payload becomes a JSON string, so every line parses. */
function encodeLines(lines: readonly string[]): { chunks: Buffer[]; bytes: number } {
  const chunks: Buffer[] = [];
  let current = '';
  let bytes = 0;
  for (const line of lines) {
    current += line + '\n';
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

function credentialSecrets(credentials: unknown): string[] {
  if (typeof credentials !== 'object' || credentials === null) return [];
  const { secretAccessKey, sessionToken } = credentials as { secretAccessKey?: unknown; sessionToken?: unknown };
  return [secretAccessKey, sessionToken].filter((value): value is string => typeof value === 'string');
}
