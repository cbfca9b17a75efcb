import type { Egress } from '@egress/core';
import type { MiddlewareHandler } from 'hono';
import { checkedOptions, type MiddlewareOptions } from './middleware-options.js';
import type { SendOf } from './register.js';
import { runRequestUnit } from './request-unit.js';

export type { MiddlewareOptions } from './middleware-options.js';

/** The Hono environment the middleware adds: `c.get('egress')` and `c.var.egress`, typed from the instance. */
export interface EgressVariables<Instance> {
  Variables: { egress: SendOf<Instance> };
}

/**
 * Hono middleware: one unit of work per request, `$send` as `c.get('egress')`. The handler's answer
 * is returned to the server after the middleware resolves, so the events are committed before the
 * answer leaves; when the store refuses them, the error goes to Hono's `onError` (500 by default).
 * A handler's error that Hono turned into an answer (`c.error`) discards the events like a throw.
 */
export function egressMiddleware<Instance extends Egress>(egress: Instance, options?: MiddlewareOptions): MiddlewareHandler<EgressVariables<Instance>> {
  const { commitOn } = checkedOptions(egress, options, 'hono');
  return async (c, next) => {
    await runRequestUnit<SendOf<Instance>>(egress, commitOn, async (unit) => {
      c.set('egress', unit.send);
      try {
        await next();
      } catch (error) {
        return { error };
      }
      if (c.error !== undefined) return { error: c.error };
      return { status: c.res.status };
    });
  };
}
