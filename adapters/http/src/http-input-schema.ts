import { parseDuration } from '@egress/core';
import type { StandardSchemaV1 } from '@standard-schema/spec';
import { z } from 'zod';
import { util } from 'zod/v4/core';
import { parseTarget, type RequestTarget } from './request-builder.js';

/** The methods `$send.http` accepts, upper case as on the wire. */
export const httpMethods = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'] as const;

export type HttpMethod = (typeof httpMethods)[number];

const methods = new Set<string>(httpMethods);

/** Whether a value is one of `httpMethods`. */
export function isHttpMethod(value: unknown): value is HttpMethod {
  return typeof value === 'string' && methods.has(value);
}

// RFC 9110 token characters; a header value holds tabs, visible ASCII and Latin-1 only, as
// undici sends it: no line breaks, NUL or other controls.
const headerNamePattern = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const headerValuePattern = /^[\t\u0020-\u007e\u0080-\u00ff]*$/;

const headerNameMessage = 'expected a header name made of letters, digits and !#$%&\'*+-.^_`|~';
const headers = z.record(
  z.string().regex(headerNamePattern, { error: headerNameMessage }),
  z.string({ error: 'expected a header value as a string' }).regex(headerValuePattern, { error: 'a header value may not contain line breaks, control characters or characters beyond Latin-1' }),
  { error: (issue) => (issue.code === 'invalid_key' ? headerNameMessage : undefined) },
);

const queryValue = z.union([z.string(), z.number(), z.boolean()]);
const queryParameter = z.union([queryValue, z.array(queryValue)], { error: 'expected a string, number or boolean, or an array of them' });

const basicAuth = z.strictObject({
  username: z.string({ error: 'basic auth needs "username" as a string' }),
  password: z.string({ error: 'basic auth needs "password" as a string' }),
});

const bearerAuth = z.strictObject({
  bearer: z.string({ error: 'expected the bearer token as a string' }).min(1, { error: 'the bearer token is empty' }),
});

const auth = z.union([basicAuth, bearerAuth], {
  error: (issue) => {
    const given = issue.input;
    if (typeof given === 'object' && given !== null) {
      const keys = Object.keys(given);
      if (keys.includes('bearer') && (keys.includes('username') || keys.includes('password'))) {
        return 'give either { username, password } or { bearer }, not both';
      }
      if (keys.includes('username') !== keys.includes('password')) {
        return 'basic auth needs both "username" and "password" as strings';
      }
    }
    return 'expected { username, password } for basic auth or { bearer } for a bearer token';
  },
});

/** What `data` may be. */
export type HttpData = string | Uint8Array | unknown[] | Record<string, unknown> | number | boolean | null;

/**
 * Checked in one pass over the top level, without copying: as a union of zod schemas, an object
 * was rebuilt key by key, which cost more than the rest of the call's validation. Objects are
 * judged as zod judges a record (plain objects only, not a Date or a class instance); what lies
 * inside is sent as JSON.stringify sends it.
 */
function isSendableData(value: unknown): value is HttpData {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(value);
    case 'object':
      return value === null || value instanceof Uint8Array || Array.isArray(value) || util.isPlainObject(value);
    default:
      return false;
  }
}

const data = z.custom<HttpData>(isSendableData, { error: 'expected an object or array (sent as JSON), a string, or bytes (Uint8Array)' });

const timeout = z.union([z.number(), z.string()]).check((context) => {
  const parsed = parseDuration(context.value);
  if (typeof parsed !== 'number') {
    context.issues.push({ code: 'custom', input: context.value, message: parsed.error });
  } else if (parsed <= 0) {
    context.issues.push({ code: 'custom', input: context.value, message: 'expected a timeout above zero' });
  }
});

const urlMessage = 'expected an absolute http:// or https:// URL';

/**
 * What is wrong with a URL, if anything. Checked with the adapter's own parse, which is kept per
 * distinct URL: `$send` to the same endpoint again and again then costs a map lookup rather than
 * a URL parse.
 */
function urlProblem(value: string): string | undefined {
  let target: RequestTarget;
  try {
    target = parseTarget(value);
  } catch {
    return urlMessage;
  }
  if (target.hasControlCharacters) return 'the URL holds a control character, a line break or leading or trailing space; it would be rewritten, not sent as written';
  if (target.protocol !== 'http:' && target.protocol !== 'https:') return urlMessage;
  if (target.hasCredentials) return 'credentials in the URL would be logged and stored in clear: put them in "auth" instead';
  return undefined;
}

const url = z.string({ error: urlMessage }).check((context) => {
  const problem = urlProblem(context.value);
  if (problem !== undefined) context.issues.push({ code: 'custom', input: context.value, message: problem });
});

/**
 * One `$send.http` call, in Pipedream's shape. Unknown fields are refused rather than ignored,
 * because a misspelt field (`body` for `data`) would otherwise send a request without its body.
 */
export const httpInputSchema = z
  .strictObject(
    {
      /** HTTP method, upper case; POST when not given. */
      method: z.enum(httpMethods, { error: `expected one of ${httpMethods.join(', ')} (upper case)` }).optional(),
      /** Absolute http:// or https:// URL. */
      url,
      /** Request body: an object or array is sent as JSON, a string or bytes as given. */
      data: data.optional(),
      /** Request headers. */
      headers: headers.optional(),
      /** Query-string parameters, appended to the URL's own; an array repeats the key. */
      params: z.record(z.string(), queryParameter).optional(),
      /** Basic `{ username, password }` or `{ bearer }` authentication. */
      auth: auth.optional(),
      /** Time allowed from connect to the last byte of the response for this call, e.g. `'10s'`. */
      timeout: timeout.optional(),
    },
    {
      error: (issue) => {
        if (issue.code !== 'unrecognized_keys') return undefined;
        const names = issue.keys.map((key) => `"${key}"`).join(', ');
        const hint = issue.keys.includes('body') ? ': the request body goes in "data"' : '';
        return `unknown field${issue.keys.length > 1 ? 's' : ''} ${names}${hint} (known: method, url, data, headers, params, auth, timeout)`;
      },
    },
  );

/** What `$send.http` takes. */
export type HttpInput = z.input<typeof httpInputSchema>;

/** An HTTP event as it is queued. */
export type HttpPayload = z.output<typeof httpInputSchema>;

/**
 * The call most events are, `{ method?, url, data? }` with valid values, checked by hand; the
 * result is what zod makes of it (a new object, keys in the schema's order). It runs for every
 * `$send`, and zod's object parse costs more than the rest of accepting such an event.
 */
function commonCall(input: unknown): HttpPayload | undefined {
  if (typeof input !== 'object' || input === null || Object.getPrototypeOf(input) !== Object.prototype) return undefined;
  for (const key in input) if (key !== 'method' && key !== 'url' && key !== 'data') return undefined;
  const { method, url, data } = input as Record<string, unknown>;
  if (typeof url !== 'string' || urlProblem(url) !== undefined) return undefined;
  if (method !== undefined && !isHttpMethod(method)) return undefined;
  if (data !== undefined && !isSendableData(data)) return undefined;
  const call: HttpPayload = method === undefined ? { url } : { method, url };
  if ('data' in input) call.data = data as HttpData | undefined;
  return call;
}

/**
 * What the destination checks `$send.http` input with: the common call by hand, anything else,
 * and every mistake, through `httpInputSchema`, which gives the errors. Both accept and return
 * the same values.
 */
export const httpInputCheck: StandardSchemaV1<HttpInput, HttpPayload> = {
  '~standard': {
    version: 1,
    vendor: '@egress/http',
    validate(input: unknown) {
      const call = commonCall(input);
      return call === undefined ? httpInputSchema['~standard'].validate(input) : { value: call };
    },
  },
};
