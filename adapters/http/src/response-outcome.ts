import { STATUS_CODES } from 'node:http';
import { PermanentError, RetryableError } from '@egress/core';
import { scrubSecrets } from './redaction.js';

/** Longest response excerpt kept in an error message, in characters. */
export const excerptLength = 512;

/** The part of a response an error keeps: status and the start of the body, secrets scrubbed. */
export class HttpStatusError extends Error {
  override readonly name = 'HttpStatusError';

  constructor(
    message: string,
    /** The HTTP status the receiver answered with. */
    readonly status: number,
    /** The first characters of the response body, for diagnosis. */
    readonly excerpt: string,
  ) {
    super(message);
  }
}

/**
 * `Retry-After` is either delay-seconds or an HTTP date (RFC 9110 §10.2.3). Returns milliseconds
 * from `now`, or undefined when the header is absent or unreadable (the backoff then decides).
 */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const text = (Array.isArray(value) ? value[0] : value)?.trim();
  if (!text) return undefined;
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

/**
 * The answer a receiver gives to stop the retries of one message (Svix's convention): a response
 * other than 2xx with this header and value dead-letters the message at once.
 */
export const abortHeader = { name: 'webhook-delivery', value: 'abort-message' } as const;

/** Whether the receiver asked, with `webhook-delivery: abort-message`, not to be sent this message again. */
export function asksToAbort(headers: Record<string, string | string[] | undefined>): boolean {
  const given = headers[abortHeader.name];
  const values = Array.isArray(given) ? given : given === undefined ? [] : [given];
  return values.some((value) => value.split(',').some((part) => part.trim().toLowerCase() === abortHeader.value));
}

/** Whether a status is worth retrying: the receiver timed out, throttled us or failed on its side. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** Makes response text printable on one line, without secrets, within `excerptLength`. */
export function cleanExcerpt(text: string, secrets: readonly string[]): string {
  const flat = scrubSecrets(text, secrets).replace(/[\u0000-\u001f\u007f]+/g, ' ').replace(/\s+/g, ' ').trim();
  return flat.length > excerptLength ? `${flat.slice(0, excerptLength)}…` : flat;
}

/**
 * The error for a response that is not a success. The message names the method, the origin (the
 * path and query can hold secrets, such as a chat webhook's token) and the status.
 */
export function statusError(request: { method: string; target: { origin: string } }, status: number, headers: Record<string, string | string[] | undefined>, excerpt: string): RetryableError | PermanentError {
  const reason = STATUS_CODES[status] ?? 'Unknown Status';
  const where = `${request.method} ${request.target.origin}`;
  let message = `[http] ${where} answered ${status} ${reason}`;
  if (status >= 300 && status < 400) {
    message += '; redirects are not followed unless the followRedirects option allows them';
  }
  if (excerpt) message += `: ${excerpt}`;
  const cause = new HttpStatusError(message, status, excerpt);
  if (asksToAbort(headers)) {
    return new PermanentError(`${message} (the receiver answered ${abortHeader.name}: ${abortHeader.value}, so the message is not retried)`, { cause });
  }
  if (isRetryableStatus(status)) {
    const retryAfter = parseRetryAfter(headers['retry-after']);
    return new RetryableError(message, retryAfter === undefined ? { cause } : { retryAfter, cause });
  }
  return new PermanentError(message, { cause });
}
