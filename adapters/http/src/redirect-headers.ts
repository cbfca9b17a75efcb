import type { Dispatcher } from 'undici';

/** Headers that describe the body rather than the caller; they follow a redirect to any origin. */
const bodyHeaders = ['content-type', 'content-length', 'content-encoding', 'content-language'];

/**
 * An undici interceptor, placed under the redirect interceptor, that strips every header but the
 * body's own (and those the user allow-listed) from a request a redirect sends to an origin other
 * than the first one. undici itself drops only authorization, cookie and proxy-authorization, so
 * an `x-api-key` of the adapter or an `x-auth-token` of the call would reach the new origin.
 * Each request's first dispatch tells its origin; the redirect handler dispatches every later hop
 * with the same handler object, which is how the hops are recognised.
 */
export function crossOriginHeaderFilter(keep: readonly string[]): Dispatcher.DispatcherComposeInterceptor {
  const kept = new Set([...bodyHeaders, ...keep.map((name) => name.toLowerCase())]);
  const firstOrigins = new WeakMap<object, string>();
  return (dispatch) => (options, handler) => {
    const origin = originOf(options.origin);
    const first = firstOrigins.get(handler);
    if (first === undefined) {
      firstOrigins.set(handler, origin);
      return dispatch(options, handler);
    }
    if (first === origin) return dispatch(options, handler);
    return dispatch({ ...options, headers: keepOnly(options.headers, kept) }, handler);
  };
}

function originOf(origin: string | URL | undefined): string {
  if (origin === undefined) return '';
  try {
    return new URL(String(origin)).origin;
  } catch {
    return String(origin);
  }
}

function keepOnly(headers: Dispatcher.DispatchOptions['headers'], kept: ReadonlySet<string>): Record<string, string | string[]> {
  const result: Record<string, string | string[]> = {};
  const add = (name: unknown, value: unknown) => {
    const lower = String(name).toLowerCase();
    if (kept.has(lower) && value !== undefined && value !== null) result[lower] = Array.isArray(value) ? value.map(String) : String(value);
  };
  if (Array.isArray(headers)) {
    if (headers.length > 0 && Array.isArray(headers[0])) for (const [name, value] of headers as unknown as [unknown, unknown][]) add(name, value);
    else for (let index = 0; index + 1 < headers.length; index += 2) add(headers[index], headers[index + 1]);
  } else if (headers && typeof headers === 'object') {
    for (const [name, value] of Object.entries(headers as Record<string, unknown>)) add(name, value);
  }
  return result;
}
