import { createBatchId, createEventId, silentLogger, type Batch, type DeliveryContext } from '@egress/core';
import type { S3QueuedPayload } from '../../src/index.js';

/** A batch as core would hand it to `deliver`, for tests that drive the adapter directly. */
export function makeBatch(payloads: readonly S3QueuedPayload[], options: { sentAt?: number; attempt?: number } = {}): Batch<S3QueuedPayload> {
  const sentAt = options.sentAt ?? Date.UTC(2019, 4, 25, 16, 14, 58, 123);
  const events = payloads.map((payload, index) => ({ id: createEventId(), payload, attempt: options.attempt ?? 1, sentAt: sentAt + index }));
  const first = payloads[0]!;
  return {
    id: createBatchId('s3', events.map((event) => event.id)),
    destination: 's3',
    partition: `${first.bucket}/${first.prefix}`,
    attempt: options.attempt ?? 1,
    events,
  };
}

export function deliveryContext(signal: AbortSignal = new AbortController().signal): DeliveryContext {
  return { signal, logger: silentLogger };
}
