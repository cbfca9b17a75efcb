import { createHash } from 'node:crypto';
import { PermanentError, RetryableError, type BatchEvent, type DeliveryReport } from '@egress/core';
import type { HttpPayload } from './http-input-schema.js';
import { isRetryableStatus, cleanExcerpt } from './response-outcome.js';

/**
 * Events share one batched request only when everything but the body is the same: method, URL with
 * its query, headers, auth and timeout. The key shows method, origin and path; the rest (which can
 * hold secrets) enters only as a hash.
 */
export function batchPartition(payload: HttpPayload): string {
  const url = new URL(payload.url);
  const headers = Object.entries(payload.headers ?? {})
    .map(([name, value]) => [name.toLowerCase(), value])
    .sort(([a], [b]) => (a! < b! ? -1 : a! > b! ? 1 : 0));
  const params = Object.entries(payload.params ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const hash = createHash('sha256')
    .update(JSON.stringify([url.search, params, headers, payload.auth ?? null, payload.timeout ?? null]))
    .digest('hex')
    .slice(0, 16);
  return `${payload.method ?? 'POST'} ${url.origin}${url.pathname} ${hash}`;
}

/**
 * One event inside a batched body: `{"id": "<event id>", "data": ...}`. Bytes, which JSON cannot
 * carry, are sent as base64 with `"encoding": "base64"`.
 */
export function encodeBatchElement(id: string, data: HttpPayload['data']): string {
  if (data instanceof Uint8Array) {
    return JSON.stringify({ id, data: Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64'), encoding: 'base64' });
  }
  return JSON.stringify(data === undefined ? { id } : { id, data });
}

// Event ids are UUIDs: measuring with a stand-in of the same length gives the exact size.
const idStandIn = '00000000-0000-0000-0000-000000000000';

/** Bytes one event adds to a batched body: its element and one separator. */
export function measureBatchElement(payload: HttpPayload): number {
  return Buffer.byteLength(encodeBatchElement(idStandIn, payload.data)) + 1;
}

export function encodeBatchBody(events: readonly BatchEvent<HttpPayload>[], format: 'json' | 'ndjson'): string {
  const elements = events.map((event) => encodeBatchElement(event.id, event.payload.data));
  return format === 'json' ? `[${elements.join(',')}]` : `${elements.join('\n')}\n`;
}

export const batchContentTypes = { json: 'application/json', ndjson: 'application/x-ndjson' } as const;

interface ReportedResult {
  id?: unknown;
  status?: unknown;
  error?: unknown;
  retryAfter?: unknown;
}

/**
 * Reads per-event outcomes from a 2xx answer shaped `{ "results": [{ "id", "status", "error"?,
 * "retryAfter"? }] }`, where `status` follows HTTP (2xx delivered; 408, 429, 5xx retried, with
 * `retryAfter` in seconds; anything else dead-lettered). Events the receiver does not list were
 * delivered. Any other answer means the whole batch was delivered.
 */
export function batchFailures(events: readonly BatchEvent<HttpPayload>[], responseText: string, secrets: readonly string[], where: string): DeliveryReport['failures'] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(responseText);
  } catch {
    return [];
  }
  const results = (parsed as { results?: unknown } | null)?.results;
  if (!Array.isArray(results)) return [];
  const known = new Set(events.map((event) => event.id));
  const failures: { eventId: string; error: unknown }[] = [];
  for (const result of results as ReportedResult[]) {
    if (typeof result !== 'object' || result === null || typeof result.id !== 'string' || !known.has(result.id)) continue;
    const status = Number(result.status);
    if (!Number.isInteger(status) || (status >= 200 && status < 300)) continue;
    const detail = typeof result.error === 'string' && result.error ? `: ${cleanExcerpt(result.error, secrets)}` : '';
    const message = `[http] ${where} reported status ${status} for this event${detail}`;
    if (isRetryableStatus(status)) {
      const seconds = Number(result.retryAfter);
      failures.push({ eventId: result.id, error: new RetryableError(message, Number.isFinite(seconds) && seconds >= 0 ? { retryAfter: seconds * 1000 } : undefined) });
    } else {
      failures.push({ eventId: result.id, error: new PermanentError(message) });
    }
    known.delete(result.id);
  }
  return failures;
}
