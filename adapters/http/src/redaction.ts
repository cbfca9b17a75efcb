import type { HttpPayload } from './http-input-schema.js';

/** What replaces a secret wherever a payload or a message could be printed or stored. */
export const redactedMark = '[redacted]';

// Header, query and field names that usually carry credentials.
const sensitiveName = /auth|token|secret|passw|pwd|api[-_]?key|access[-_]?key|private[-_]?key|signature|session|cookie|credential|jwt/i;

/** Whether a header or query parameter of this name is treated as a secret. */
export function isSensitiveName(name: string, idempotencyHeader: string): boolean {
  return name.toLowerCase() !== idempotencyHeader && sensitiveName.test(name);
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

/** Replaces every known secret in a text (a response excerpt, an error message) with the mark. */
export function scrubSecrets(text: string, secrets: readonly string[]): string {
  let result = text;
  for (const secret of secrets) {
    // Very short values would mask ordinary words; such values are no real secret either.
    if (secret.length >= 4) result = result.split(secret).join(redactedMark);
  }
  return result;
}
