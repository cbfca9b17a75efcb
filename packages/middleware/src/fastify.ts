import type { FastifyPluginCallback, FastifyRequest } from 'fastify';
import type { Egress } from '@egress/core';
import { checkedOptions, type MiddlewareOptions } from './middleware-options.js';
import type { RegisteredSend } from './register.js';
import { runRequestUnit, type RequestAnswer, type RequestUnit } from './request-unit.js';

export type { MiddlewareOptions } from './middleware-options.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** This request's `$send`, from `@egress/middleware/fastify`; typed by `Register` in `@egress/middleware`. */
    egress: RegisteredSend;
  }
}

interface RequestState {
  readonly unit: RequestUnit<RegisteredSend>;
  answer(answer: RequestAnswer): void;
  decided: Promise<'committed' | 'discarded'> | undefined;
  failure: { error: unknown } | undefined;
  /** The refused commit was thrown once already; the error answer that follows goes out as it is. */
  refusalReported: boolean;
}

/**
 * Fastify plugin: one unit of work per request, `$send` as `request.egress`. Register it on the root
 * instance (it is not encapsulated, so every route gets it).
 *
 * The events are decided in the `onSend` hook, before the answer is written: committed when the
 * handler answered and `commitOn(status)` holds, discarded when it threw (the `onError` hook) or the
 * rule refuses the status. When the store refuses them, the hook throws and Fastify answers 500 in
 * place of the handler's answer. A hijacked reply (`reply.hijack()`) has no `onSend`: its events are
 * discarded when its connection closes.
 */
export function egressPlugin(egress: Egress, options?: MiddlewareOptions): FastifyPluginCallback {
  const { commitOn } = checkedOptions(egress, options, 'fastify');
  const states = new WeakMap<FastifyRequest, RequestState>();
  const plugin: FastifyPluginCallback = (fastify, _pluginOptions, done) => {
    fastify.decorateRequest('egress', null as unknown as RegisteredSend);
    fastify.addHook('onRequest', (request, reply, hookDone) => {
      let answer!: (answer: RequestAnswer) => void;
      const answered = new Promise<RequestAnswer>((resolve) => (answer = resolve));
      // Set synchronously, inside `egress.run`, before `runRequestUnit` returns its promise.
      const opened: { state?: RequestState } = {};
      const decided = runRequestUnit<RegisteredSend>(egress, commitOn, (unit) => {
        opened.state = { unit, answer, decided: undefined, failure: undefined, refusalReported: false };
        states.set(request, opened.state);
        request.egress = unit.send;
        reply.raw.once('close', () => answer({ noAnswer: true }));
        hookDone();
        return answered;
      });
      if (opened.state) opened.state.decided = decided;
      decided.catch((error: unknown) => {
        // The unit could not be opened (a closed Egress): Fastify answers with the error.
        if (!opened.state) hookDone(error instanceof Error ? error : new Error(String(error)));
      });
    });
    // A content-type parser may finish in a callback that runs outside the unit's async context: the
    // steps after parsing are put back inside, so that `egress.send` in the handler joins the unit.
    const reenter = (request: FastifyRequest, _reply: unknown, hookDone: () => void) => {
      const state = states.get(request);
      if (state) state.unit.enter(hookDone);
      else hookDone();
    };
    fastify.addHook('preValidation', reenter);
    fastify.addHook('preHandler', reenter);
    fastify.addHook('onError', (request, _reply, error, hookDone) => {
      const state = states.get(request);
      if (state) state.failure = { error };
      hookDone();
    });
    fastify.addHook('onSend', async (request, reply, payload) => {
      const state = states.get(request);
      if (!state) return payload;
      state.answer(state.failure ?? { status: reply.statusCode });
      try {
        await state.decided;
      } catch (error) {
        const ownError = state.failure !== undefined && state.failure.error === error;
        if (!ownError && !state.refusalReported) {
          state.refusalReported = true;
          throw error;
        }
      }
      return payload;
    });
    done();
  };
  // Not encapsulated, as fastify-plugin would mark it: the hooks apply to the whole instance.
  Object.assign(plugin, { [Symbol.for('skip-override')]: true, [Symbol.for('fastify.display-name')]: '@egress/middleware' });
  return plugin;
}
