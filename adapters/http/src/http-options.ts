import { EgressConfigurationError, parseDuration, type Duration } from '@egress/core';
import { parseAllowList, type AllowList } from './address-guard.js';
import { headerSecrets } from './redaction.js';
import { parseSigningSecret } from './webhook-signature.js';

/** Options of the `http()` destination. Every one is optional. */
export interface HttpOptions {
  /** Time allowed per request, from connect to the last byte of the response; a call's own `timeout` wins. Default `'5s'`. */
  timeout?: Duration;
  /** Most keep-alive connections kept open to one origin (scheme, host and port). Default 32. */
  connectionsPerOrigin?: number;
  /** How long an idle keep-alive connection stays open. Default `'4s'`. */
  keepAliveTimeout?: Duration;
  /** Headers sent with every request (a call's own headers win), e.g. `{ 'user-agent': 'acme/1.0' }`. */
  headers?: Record<string, string>;
  /** Header that carries the event id (the batch id in batch mode), the same on every retry. Default `'idempotency-key'`. */
  idempotencyHeader?: string;
  /**
   * Follow redirects: `true` for up to 5, the most to follow, or `{ max, crossOriginHeaders }`. A redirect
   * to another origin carries only the body's content-* headers and those named in `crossOriginHeaders`:
   * credentials and every other header of the adapter or the call stay behind. Default `false`: a 3xx
   * answer is a permanent failure.
   */
  followRedirects?: boolean | number | { max?: number; crossOriginHeaders?: readonly string[] };
  /** Sign each request in the Standard Webhooks scheme with these `whsec_` secrets (several while rotating). Default: unsigned. */
  signing?: { secrets: string | readonly string[] };
  /** Refuse loopback, private, link-local and metadata addresses (checked after DNS): `true`, or `{ allow }` with host names, `*.suffix` wildcards, addresses or CIDR ranges to let through. Default `false`. */
  guard?: boolean | { allow?: readonly string[] };
  /** Send many events to one URL in one request: `true` for a JSON array, or `{ format: 'json' | 'ndjson' }`. Default `false`: one request per event. */
  batch?: boolean | { format?: 'json' | 'ndjson' };
}

/** The options after checking, in milliseconds and parsed secrets. */
export interface ResolvedHttpOptions {
  timeout: number;
  connectionsPerOrigin: number;
  keepAliveTimeout: number;
  headers: Record<string, string>;
  /** Values of the adapter's own headers that carry credentials, found once rather than per request. */
  headerSecrets: readonly string[];
  idempotencyHeader: string;
  maxRedirections: number;
  /** Headers (lower case) a redirect to another origin may carry besides content-*. */
  crossOriginHeaders: readonly string[];
  signingKeys: readonly Buffer[];
  /** The `whsec_` secrets as given, for the redaction step. */
  signingSecrets: readonly string[];
  guard: AllowList | undefined;
  batchFormat: 'json' | 'ndjson' | undefined;
}

const knownOptions = ['timeout', 'connectionsPerOrigin', 'keepAliveTimeout', 'headers', 'idempotencyHeader', 'followRedirects', 'signing', 'guard', 'batch'];
const headerNamePattern = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

function fail(option: string, message: string): never {
  throw new EgressConfigurationError(message, `[http] option "${option}"`);
}

function duration(option: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  const parsed = parseDuration(value);
  if (typeof parsed !== 'number') fail(option, `expected ${parsed.error}`);
  if (parsed <= 0) fail(option, 'expected a duration above zero');
  return parsed;
}

export function resolveHttpOptions(options: HttpOptions): ResolvedHttpOptions {
  if (typeof options !== 'object' || options === null) fail('options', 'expected an object');
  for (const key of Object.keys(options)) {
    if (!knownOptions.includes(key)) fail(key, `unknown option (known: ${knownOptions.join(', ')})`);
  }

  const connectionsPerOrigin = options.connectionsPerOrigin ?? 32;
  if (!Number.isInteger(connectionsPerOrigin) || connectionsPerOrigin < 1) fail('connectionsPerOrigin', 'expected a positive integer');

  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(options.headers ?? {})) {
    if (!headerNamePattern.test(name)) fail('headers', `"${name}" is not a valid header name`);
    if (typeof value !== 'string' || /[\r\n\0]/.test(value)) fail('headers', `the value of "${name}" must be a string without line breaks`);
    headers[name.toLowerCase()] = value;
  }

  const idempotencyHeader = options.idempotencyHeader ?? 'idempotency-key';
  if (typeof idempotencyHeader !== 'string' || !headerNamePattern.test(idempotencyHeader)) fail('idempotencyHeader', 'expected a header name');

  const follow = options.followRedirects ?? false;
  let maxRedirections: number;
  let crossOriginHeaders: string[] = [];
  if (typeof follow === 'object' && follow !== null) {
    for (const key of Object.keys(follow)) if (key !== 'max' && key !== 'crossOriginHeaders') fail('followRedirects', `unknown key "${key}" (known: max, crossOriginHeaders)`);
    maxRedirections = follow.max ?? 5;
    const names = follow.crossOriginHeaders ?? [];
    if (!Array.isArray(names) || names.some((name) => typeof name !== 'string' || !headerNamePattern.test(name))) fail('followRedirects', 'crossOriginHeaders must be a list of header names');
    crossOriginHeaders = names.map((name) => name.toLowerCase());
  } else {
    maxRedirections = follow === true ? 5 : follow === false ? 0 : follow;
  }
  if (!Number.isInteger(maxRedirections) || maxRedirections < 0) fail('followRedirects', 'expected true, false, a number of redirects or { max, crossOriginHeaders }');

  let signingKeys: Buffer[] = [];
  let signingSecrets: string[] = [];
  if (options.signing !== undefined) {
    const secrets = options.signing?.secrets;
    const list = typeof secrets === 'string' ? [secrets] : secrets;
    if (!Array.isArray(list) || list.length === 0) fail('signing', 'expected { secrets } with one or more "whsec_..." secrets');
    signingSecrets = list.flatMap((secret) => (typeof secret === 'string' ? [secret, secret.replace(/^whsec_/, '')] : []));
    signingKeys = list.map((secret, index) => {
      const key = parseSigningSecret(secret);
      // The message names the position only: the secret itself must never be printed.
      if (!key) fail('signing', `secret #${index + 1} is not a "whsec_" secret followed by base64 key bytes`);
      return key;
    });
  }

  let guard: AllowList | undefined;
  if (options.guard !== undefined && options.guard !== false) {
    const allow = options.guard === true ? [] : options.guard.allow ?? [];
    if (!Array.isArray(allow)) fail('guard', 'expected true or { allow: [...] }');
    const parsed = parseAllowList(allow);
    if ('invalid' in parsed) fail('guard', `allow entry ${JSON.stringify(parsed.invalid)} is not a host name, *.suffix, address or CIDR range`);
    guard = parsed;
  }

  let batchFormat: 'json' | 'ndjson' | undefined;
  if (options.batch === true) batchFormat = 'json';
  else if (typeof options.batch === 'object' && options.batch !== null) {
    batchFormat = options.batch.format ?? 'json';
    if (batchFormat !== 'json' && batchFormat !== 'ndjson') fail('batch', 'format must be "json" or "ndjson"');
  } else if (options.batch !== undefined && options.batch !== false) fail('batch', 'expected true, false or { format }');

  const idempotencyHeaderName = idempotencyHeader.toLowerCase();
  return {
    timeout: duration('timeout', options.timeout, 5_000),
    connectionsPerOrigin,
    keepAliveTimeout: duration('keepAliveTimeout', options.keepAliveTimeout, 4_000),
    headers,
    headerSecrets: Object.entries(headers).flatMap(([name, value]) => headerSecrets(name, value, idempotencyHeaderName)),
    idempotencyHeader: idempotencyHeaderName,
    maxRedirections,
    crossOriginHeaders,
    signingKeys,
    signingSecrets,
    guard,
    batchFormat,
  };
}
