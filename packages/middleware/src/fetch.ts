import { EgressConfigurationError, type Egress } from '@egress/core';
import { checkedOptions, type MiddlewareOptions } from './middleware-options.js';
import type { SendOf } from './register.js';
import { runRequestUnit } from './request-unit.js';

export type { MiddlewareOptions } from './middleware-options.js';

/** A fetch-style handler that receives the request's `$send` after the request (and before anything else its host passes). */
export type HandlerWithEgress<Instance, Rest extends unknown[]> = (request: Request, $send: SendOf<Instance>, ...rest: Rest) => Response | Promise<Response>;

/**
 * Wraps a fetch-style handler (Request → Response: Next.js route handlers, Bun, Deno, Cloudflare
 * Workers-style servers) in one unit of work per request. The events are committed before the
 * `Response` is returned to the host; a thrown error or a refused commit is thrown to the host,
 * which answers 500. A body streamed after the `Response` is returned is outside the unit: sends
 * made while it streams are enqueued on their own, as sends outside any unit are.
 */
export function withEgress<Instance extends Egress, Rest extends unknown[]>(
  egress: Instance,
  handler: HandlerWithEgress<Instance, Rest>,
  options?: MiddlewareOptions,
): (request: Request, ...rest: Rest) => Promise<Response> {
  const { commitOn } = checkedOptions(egress, options, 'fetch');
  if (typeof handler !== 'function') throw new EgressConfigurationError(`expected a function (request, $send) => Response, got ${typeof handler}`, '[fetch] handler');
  return async (request, ...rest) => {
    let response!: Response;
    await runRequestUnit<SendOf<Instance>>(egress, commitOn, async (unit) => {
      try {
        response = await handler(request, unit.send, ...rest);
      } catch (error) {
        return { error };
      }
      // Without a status there is nothing to judge the answer by: treated as the handler's error.
      if (typeof (response as Partial<Response> | undefined)?.status !== 'number') return { error: new TypeError(`[egress] [fetch] the handler returned ${String(response)} instead of a Response`) };
      return { status: response.status };
    });
    return response;
  };
}
