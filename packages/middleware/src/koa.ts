import type { Egress } from '@egress/core';
import type { Middleware } from 'koa';
import { checkedOptions, type MiddlewareOptions } from './middleware-options.js';
import type { RegisteredSend, SendOf } from './register.js';
import { runRequestUnit } from './request-unit.js';

export type { MiddlewareOptions } from './middleware-options.js';

declare module 'koa' {
  interface DefaultContext {
    /** This request's `$send`, from `@egress/middleware/koa`; typed by `Register` in `@egress/middleware`. */
    egress: RegisteredSend;
  }
}

/**
 * Koa middleware: one unit of work per request, `$send` as `ctx.egress`. Koa writes the answer after
 * the middleware chain returns, so the events are committed before any byte of the answer leaves;
 * when the store refuses them, the error is thrown and Koa answers 500 instead.
 */
export function egressMiddleware<Instance extends Egress>(egress: Instance, options?: MiddlewareOptions): Middleware<object, { egress: SendOf<Instance> }> {
  const { commitOn } = checkedOptions(egress, options, 'koa');
  return async (ctx, next) => {
    await runRequestUnit<SendOf<Instance>>(egress, commitOn, async (unit) => {
      ctx.egress = unit.send;
      try {
        await next();
      } catch (error) {
        return { error };
      }
      return { status: ctx.status };
    });
  };
}
