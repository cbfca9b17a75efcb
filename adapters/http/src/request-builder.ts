import type { HttpMethod, HttpPayload } from './http-input-schema.js';
import type { ResolvedHttpOptions } from './http-options.js';
import { parseDuration } from '@egress/core';
import { headerSecrets } from './redaction.js';

/** One request ready for the wire, with the secrets that must never be printed alongside it. */
export interface PreparedRequest {
  readonly method: HttpMethod;
  readonly target: RequestTarget;
  readonly headers: Record<string, string>;
  readonly body: string | Uint8Array | undefined;
  /** Milliseconds from connect to the last byte. */
  readonly timeout: number;
  /** Passwords, tokens and sensitive header values of this request, to scrub from any message. */
  readonly secrets: readonly string[];
}

/** The body of one event and the content type it implies. */
export interface EncodedData {
  readonly body: string | Uint8Array | undefined;
  readonly contentType: string | undefined;
}

/** An object or array goes out as JSON; a string or bytes as given. */
export function encodeData(data: HttpPayload['data']): EncodedData {
  if (data === undefined) return { body: undefined, contentType: undefined };
  if (typeof data === 'string') return { body: data, contentType: 'text/plain; charset=utf-8' };
  if (data instanceof Uint8Array) return { body: data, contentType: 'application/octet-stream' };
  return { body: JSON.stringify(data), contentType: 'application/json' };
}

/** Encoded length of a body in bytes. */
export function bodyLength(body: string | Uint8Array | undefined): number {
  if (body === undefined) return 0;
  return typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength;
}

/** Where a request goes: `https://host:port` and the path with its query. */
export interface RequestTarget {
  readonly origin: string;
  readonly path: string;
  /** `http:` or `https:` for a URL the adapter can send to; anything else is refused at `$send`. */
  readonly protocol: string;
  /** Whether the URL carries `user:password@`. */
  readonly hasCredentials: boolean;
  /**
   * Whether the URL as written holds a control character or leading or trailing spaces, which the
   * URL parser would silently drop or rewrite: such a URL is refused rather than sent elsewhere.
   */
  readonly hasControlCharacters: boolean;
}

// C0 controls (tab, CR, LF included), DEL and C1 controls, and the Unicode line separators.
// eslint-disable-next-line no-control-regex
const controlCharacters = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]|^\s|\s$/;

// Webhook traffic goes to few distinct URLs, and parsing one costs more than the rest of a
// request's preparation; parsed targets are kept, up to a bound.
const parsedTargets = new Map<string, RequestTarget>();
const parsedTargetsLimit = 1024;

/** The origin and path of a URL (the fragment dropped), parsed once per distinct URL; throws on an invalid URL. */
export function parseTarget(url: string): RequestTarget {
  let target = parsedTargets.get(url);
  if (target === undefined) {
    const parsed = new URL(url);
    target = {
      origin: parsed.origin,
      path: `${parsed.pathname}${parsed.search}`,
      protocol: parsed.protocol,
      hasCredentials: parsed.username !== '' || parsed.password !== '',
      hasControlCharacters: controlCharacters.test(url),
    };
    if (parsedTargets.size >= parsedTargetsLimit) parsedTargets.clear();
    parsedTargets.set(url, target);
  }
  return target;
}

/**
 * Appends `params` to the URL's own query. The existing query is left byte for byte as written
 * (re-serialising it would re-encode characters and could break a pre-signed URL).
 */
export function buildTarget(payload: HttpPayload): RequestTarget {
  const target = parseTarget(payload.url);
  const params = payload.params;
  if (params === undefined) return target;
  const pairs = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    for (const item of Array.isArray(value) ? value : [value]) pairs.append(name, String(item));
  }
  const extra = pairs.toString();
  if (!extra) return target;
  return { ...target, path: `${target.path}${target.path.includes('?') ? '&' : '?'}${extra}` };
}

/** The per-call timeout when the call gives one, the adapter's otherwise. */
export function requestTimeout(payload: HttpPayload, options: ResolvedHttpOptions): number {
  if (payload.timeout === undefined) return options.timeout;
  const parsed = parseDuration(payload.timeout);
  return typeof parsed === 'number' ? parsed : options.timeout;
}

/**
 * Headers in lower case, in increasing precedence: the adapter's, the call's, then what the
 * adapter derives (authorization from `auth`). The content type applies only when nobody set one,
 * and the idempotency header only when the call did not carry its own.
 */
export function buildHeaders(payload: HttpPayload, options: ResolvedHttpOptions, contentType: string | undefined, idempotencyKey: string): { headers: Record<string, string>; secrets: readonly string[] } {
  const headers: Record<string, string> = { ...options.headers };
  // The adapter's own credentials were found when it was made; only the call can add more.
  let callSecrets: string[] | undefined;
  if (payload.headers !== undefined) {
    for (const [name, value] of Object.entries(payload.headers)) {
      const lower = name.toLowerCase();
      headers[lower] = value;
      const found = headerSecrets(lower, value, options.idempotencyHeader);
      if (found.length > 0) (callSecrets ??= []).push(...found);
    }
  }
  if (contentType !== undefined && headers['content-type'] === undefined) headers['content-type'] = contentType;
  if (payload.auth !== undefined) {
    callSecrets ??= [];
    if ('bearer' in payload.auth) {
      headers.authorization = `Bearer ${payload.auth.bearer}`;
      callSecrets.push(payload.auth.bearer, headers.authorization);
    } else {
      const token = Buffer.from(`${payload.auth.username}:${payload.auth.password}`).toString('base64');
      headers.authorization = `Basic ${token}`;
      callSecrets.push(token, payload.auth.password, payload.auth.username, headers.authorization);
    }
  }
  if (headers[options.idempotencyHeader] === undefined) headers[options.idempotencyHeader] = idempotencyKey;
  return { headers, secrets: callSecrets === undefined ? options.headerSecrets : [...options.headerSecrets, ...callSecrets] };
}

/** Everything one event's request needs, the signature aside (it is made per attempt). */
export function prepareRequest(payload: HttpPayload, idempotencyKey: string, options: ResolvedHttpOptions, encoded: EncodedData = encodeData(payload.data)): PreparedRequest {
  const { headers, secrets } = buildHeaders(payload, options, encoded.contentType, idempotencyKey);
  return {
    method: payload.method ?? 'POST',
    target: buildTarget(payload),
    headers,
    body: encoded.body,
    timeout: requestTimeout(payload, options),
    secrets,
  };
}
