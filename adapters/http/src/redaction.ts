import { isSecretName, redactedMark, SecretRedactor } from '@egress/core';
import type { HttpPayload } from './http-input-schema.js';

export { redactedMark };

/** Whether a header or query parameter of this name is treated as a secret (core's rule, the idempotency header aside). */
export function isSensitiveName(name: string, idempotencyHeader: string): boolean {
  return name.toLowerCase() !== idempotencyHeader && isSecretName(name);
}

/**
 * What to scrub for a header: nothing for an ordinary one; for a credential, its value and the value
 * without a scheme word (`Bearer abc` also as `abc`), since a receiver may echo either.
 */
export function headerSecrets(name: string, value: string, idempotencyHeader: string): string[] {
  return isSensitiveName(name, idempotencyHeader) ? [value, value.replace(/^\S+\s+/, '')] : [];
}

function redactQuery(url: string, idempotencyHeader: string): string {
  const queryStart = url.indexOf('?');
  if (queryStart < 0) return url;
  const hashStart = url.indexOf('#', queryStart);
  const query = url.slice(queryStart + 1, hashStart < 0 ? undefined : hashStart);
  const redacted = query
    .split('&')
    .map((pair) => {
      const equals = pair.indexOf('=');
      const rawName = equals < 0 ? pair : pair.slice(0, equals);
      let name = rawName;
      try {
        name = decodeURIComponent(rawName.replace(/\+/g, ' '));
      } catch {
        // A malformed escape is judged on its raw text.
      }
      return equals >= 0 && isSensitiveName(name, idempotencyHeader) ? `${rawName}=${redactedMark}` : pair;
    })
    .join('&');
  return `${url.slice(0, queryStart + 1)}${redacted}`;
}

/**
 * A copy of the payload fit for logs, events and dead letters: `auth` is masked whole (some APIs
 * take the key as the basic-auth username), and so are
 * headers and query parameters whose names suggest a credential (`authorization`, `x-api-key`,
 * `?access_token=`...). The body is the user's event and is kept as it is.
 */
export function redactHttpPayload(payload: HttpPayload, idempotencyHeader: string): HttpPayload {
  const copy: Record<string, unknown> = { ...payload, url: redactQuery(payload.url, idempotencyHeader) };
  if (payload.auth !== undefined) {
    copy.auth = 'bearer' in payload.auth ? { bearer: redactedMark } : { username: redactedMark, password: redactedMark };
  }
  if (payload.headers !== undefined) {
    copy.headers = Object.fromEntries(Object.entries(payload.headers).map(([name, value]) => [name, isSensitiveName(name, idempotencyHeader) ? redactedMark : value]));
  }
  if (payload.params !== undefined) {
    copy.params = Object.fromEntries(Object.entries(payload.params).map(([name, value]) => [name, isSensitiveName(name, idempotencyHeader) ? redactedMark : value]));
  }
  return copy as HttpPayload;
}

/** Replaces every known secret in a text (a response excerpt, an error message) with the mark, through core's redaction step. */
export function scrubSecrets(text: string, secrets: readonly string[]): string {
  return new SecretRedactor(secrets).redact(text);
}

/**
 * The secrets one queued call carries, for core's redaction step: its auth (the password, the
 * token and the basic-auth blob they make), its credential headers, and the values of
 * credential-like query parameters, in `params` and in the URL itself.
 */
export function httpPayloadSecrets(payload: HttpPayload, idempotencyHeader: string): string[] {
  const secrets: string[] = [];
  if (payload.auth !== undefined) {
    if ('bearer' in payload.auth) secrets.push(payload.auth.bearer);
    else secrets.push(payload.auth.password, payload.auth.username, Buffer.from(`${payload.auth.username}:${payload.auth.password}`).toString('base64'));
  }
  for (const [name, value] of Object.entries(payload.headers ?? {})) secrets.push(...headerSecrets(name, value, idempotencyHeader));
  for (const [name, value] of Object.entries(payload.params ?? {})) {
    if (isSensitiveName(name, idempotencyHeader)) for (const item of Array.isArray(value) ? value : [value]) secrets.push(String(item));
  }
  const queryStart = payload.url.indexOf('?');
  if (queryStart >= 0) {
    for (const [name, value] of new URLSearchParams(payload.url.slice(queryStart + 1).split('#')[0])) {
      if (isSensitiveName(name, idempotencyHeader)) secrets.push(value);
    }
  }
  return secrets;
}
