import { defineDestination, type Batch, type Destination, type BatchEvent, type DeliveryContext, type DeliveryReport } from '@egress/core';
import { batchContentTypes, batchFailures, batchPartition, encodeBatchBody, measureBatchElement } from './batch-mode.js';
import { HttpClient } from './http-client.js';
import type { BodyLimits, ReceivedResponse } from './http-exchange.js';
import { httpInputCheck, type HttpInput, type HttpPayload } from './http-input-schema.js';
import { resolveHttpOptions, type HttpOptions, type ResolvedHttpOptions } from './http-options.js';
import { readQueuedRequest } from './queued-request.js';
import { httpPayloadSecrets, redactHttpPayload } from './redaction.js';
import { bodyLength, buildHeaders, buildTarget, encodeData, prepareRequest, parseTarget, requestTimeout, type PreparedRequest } from './request-builder.js';
import { cleanExcerpt, statusError } from './response-outcome.js';
import { addTraceHeaders } from './trace-headers.js';
import { signatureHeaders } from './webhook-signature.js';

// Enough of an error body to diagnose it; a success needs none of its body, except in batch mode,
// where it can list per-event results.
const excerptBytes = 2048;
const singleEventLimits: BodyLimits = { success: 0, failure: excerptBytes };
const batchLimits: BodyLimits = { success: 1024 * 1024, failure: excerptBytes };

/**
 * Webhooks and HTTP requests: `$send.http({ method, url, data, headers, params, auth, timeout })`.
 * One request per event by default, or many events per request with the `batch` option.
 */
export function http(options: HttpOptions = {}): Destination<'http', HttpInput, HttpPayload> {
  const resolved = resolveHttpOptions(options);
  const client = new HttpClient(resolved);
  const batchFormat = resolved.batchFormat;

  return defineDestination<'http', HttpInput, HttpPayload>({
    name: 'http',
    input: httpInputCheck,
    defaults: {
      batch: batchFormat ? { maxEvents: 100, maxBytes: '1MiB', maxDelay: '1s' } : { maxEvents: 1 },
      concurrency: 16,
      // The whole delivery must outlast the request's own deadline, or core would abort first.
      timeout: Math.max(30_000, resolved.timeout + 5_000),
    },
    limits: { maxEvents: 1000, maxBytes: 5 * 1024 * 1024 },
    partition: batchFormat ? batchPartition : (payload) => parseTarget(payload.url).origin,
    // A bodiless request still costs something to send; a size of zero would read as "free".
    measure: batchFormat ? measureBatchElement : (payload, payloadJson) => Math.max(1, bodyLength(readQueuedRequest(payloadJson)?.body ?? encodeData(payload.data).body)),
    redact: (payload) => redactHttpPayload(payload, resolved.idempotencyHeader),
    secrets: () => [...resolved.headerSecrets, ...resolved.signingSecrets],
    payloadSecrets: (payload) => httpPayloadSecrets(payload, resolved.idempotencyHeader),
    deliver(batch, context) {
      if (batchFormat) return deliverBatched(batch, context, client, resolved, batchFormat);
      if (batch.events.length === 1) return sendEvent(batch.events[0]!, context, client, resolved);
      return deliverEach(batch, context, client, resolved);
    },
    async stop() {
      await client.close();
    },
    async health() {
      return { ok: true, message: 'requests go to each event\'s own URL; nothing to check ahead' };
    },
  });
}

/** Signs per attempt: a receiver rejects timestamps more than a few minutes old. */
function withSignature(request: PreparedRequest, id: string, options: ResolvedHttpOptions): PreparedRequest {
  if (options.signingKeys.length === 0) return request;
  const headers = { ...request.headers, ...signatureHeaders(id, Math.floor(Date.now() / 1000), request.body, options.signingKeys) };
  return { ...request, headers };
}

function isSuccess(response: ReceivedResponse): boolean {
  return response.status >= 200 && response.status < 300;
}

/** The failure an answer other than 2xx means, with the start of its body for diagnosis. */
function statusFailure(response: ReceivedResponse, request: PreparedRequest): Error {
  return statusError(request, response.status, response.headers, cleanExcerpt(response.bodyStart, request.secrets));
}

/** A 2xx answer delivered the event; anything else is the failure it means. */
function eventOutcome(response: ReceivedResponse, request: PreparedRequest): void {
  if (!isSuccess(response)) throw statusFailure(response, request);
}

/**
 * One event's request. It is not an async function: on the hot path of one event per delivery, the
 * extra promise and the turns it takes to settle cost more than the rest of the adapter's own work.
 */
function sendEvent(event: BatchEvent<HttpPayload>, context: DeliveryContext, client: HttpClient, options: ResolvedHttpOptions): Promise<void> {
  let request: PreparedRequest;
  try {
    const queued = readQueuedRequest(event.payloadJson);
    const prepared = queued
      ? prepareRequest({ method: queued.method, url: queued.url }, event.id, options, { body: queued.body, contentType: queued.body === undefined ? undefined : 'application/json' })
      : prepareRequest(event.payload, event.id, options);
    request = withSignature(prepared, event.id, options);
    addTraceHeaders(request.headers, context);
  } catch (error) {
    return Promise.reject(error);
  }
  return client.exchange(request, context, singleEventLimits, eventOutcome);
}

/** Several events, one request each, each with its own outcome. */
async function deliverEach(batch: Batch<HttpPayload>, context: DeliveryContext, client: HttpClient, options: ResolvedHttpOptions): Promise<DeliveryReport | void> {
  const settled = await Promise.allSettled(batch.events.map((event) => sendEvent(event, context, client, options)));
  const failures = settled.flatMap((result, index) => (result.status === 'rejected' ? [{ eventId: batch.events[index]!.id, error: result.reason as unknown }] : []));
  return failures.length > 0 ? { failures } : undefined;
}

/**
 * Many events per request. Events are grouped by the batch partition again, because a user's
 * `partitionBy` may put events for different URLs into one batch.
 */
async function deliverBatched(batch: Batch<HttpPayload>, context: DeliveryContext, client: HttpClient, options: ResolvedHttpOptions, format: 'json' | 'ndjson'): Promise<DeliveryReport | void> {
  const groups = new Map<string, BatchEvent<HttpPayload>[]>();
  for (const event of batch.events) {
    const key = batchPartition(event.payload);
    const group = groups.get(key);
    if (group) group.push(event);
    else groups.set(key, [event]);
  }
  // With one group the batch id is the idempotency key; a sub-group gets its own stable id.
  const sendGroup = (events: BatchEvent<HttpPayload>[], id: string) => sendBatchRequest(events, id, context, client, options, format);
  if (groups.size === 1) {
    const failures = await sendGroup(batch.events as BatchEvent<HttpPayload>[], batch.id);
    return failures.length > 0 ? { failures } : undefined;
  }
  const results = await Promise.allSettled([...groups.values()].map((events) => sendGroup(events, `${batch.id}-${events[0]!.id}`)));
  const failures: { eventId: string; error: unknown }[] = [];
  [...groups.values()].forEach((events, index) => {
    const result = results[index]!;
    if (result.status === 'fulfilled') failures.push(...result.value);
    else for (const event of events) failures.push({ eventId: event.id, error: result.reason as unknown });
  });
  return failures.length > 0 ? { failures } : undefined;
}

async function sendBatchRequest(events: readonly BatchEvent<HttpPayload>[], id: string, context: DeliveryContext, client: HttpClient, options: ResolvedHttpOptions, format: 'json' | 'ndjson'): Promise<DeliveryReport['failures']> {
  const first = events[0]!.payload;
  const body = encodeBatchBody(events, format);
  const { headers, secrets } = buildHeaders(first, options, undefined, id);
  headers['content-type'] = batchContentTypes[format];
  addTraceHeaders(headers, context);
  const request = withSignature({ method: first.method ?? 'POST', target: buildTarget(first), headers, body, timeout: requestTimeout(first, options), secrets }, id, options);
  return client.exchange(request, context, batchLimits, (response) => {
    if (!isSuccess(response)) throw statusFailure(response, request);
    return batchFailures(events, response.bodyStart, secrets, `${request.method} ${request.target.origin}`);
  });
}
