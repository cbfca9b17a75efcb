import type { ErrorRequestHandler, RequestHandler } from 'express';
import type { Egress } from '@egress/core';
import { checkedOptions, type MiddlewareOptions } from './middleware-options.js';
import type { RegisteredSend } from './register.js';
import { runRequestUnit, type RequestAnswer } from './request-unit.js';

export type { MiddlewareOptions } from './middleware-options.js';

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace -- Express declares its request type in this global namespace
  namespace Express {
    interface Request {
      /** This request's `$send`, from `@egress/middleware/express`; typed by `Register` in `@egress/middleware`. */
      egress: RegisteredSend;
    }
    interface Locals {
      /** This request's `$send`, the same as `req.egress`. */
      egress: RegisteredSend;
    }
  }
}

/** What the error handler tells the middleware about a request. */
interface RequestState {
  failure: { error: unknown } | undefined;
}

const states = new WeakMap<object, RequestState>();

/**
 * Express middleware: one unit of work per request, `$send` as `req.egress` and `res.locals.egress`.
 *
 * The unit ends when the handler finishes its answer (`res.end`, which `res.send`, `res.json` and a
 * piped stream call). The end of the answer is held back until the events are committed, so a client
 * that received a whole answer knows they were taken. When the store refuses them, an answer whose
 * headers were not sent yet becomes a bare 500; one already streaming is cut off (the client sees an
 * incomplete answer, never a complete one). When the connection closes before any answer, the events
 * are discarded.
 *
 * Express hands a thrown error to its error handlers, out of this middleware's sight: the unit
 * follows the status they answer (5xx discards). Mount `egressErrorHandler()` after the routes for a
 * thrown error to discard the events whatever status its answer has.
 */
export function egressMiddleware(egress: Egress, options?: MiddlewareOptions): RequestHandler {
  const { commitOn } = checkedOptions(egress, options, 'express');
  return (request, response, next) => {
    const state: RequestState = { failure: undefined };
    let answer!: (answer: RequestAnswer) => void;
    const answered = new Promise<RequestAnswer>((resolve) => (answer = resolve));
    let endArguments: unknown[] | undefined;
    const end = response.end;
    const release = () => {
      response.end = end;
      if (endArguments) end.apply(response, endArguments as Parameters<typeof end>);
    };
    response.end = function heldEnd(this: typeof response, ...given: unknown[]) {
      if (endArguments === undefined) {
        endArguments = given;
        answer(state.failure ?? { status: response.statusCode });
      }
      return this;
    } as typeof response.end;
    response.once('close', () => answer({ noAnswer: true }));
    let entered = false;
    runRequestUnit<RegisteredSend>(egress, commitOn, (unit) => {
      entered = true;
      request.egress = unit.send;
      response.locals.egress = unit.send;
      states.set(request, state);
      next();
      return answered;
    }).then(release, (error: unknown) => {
      // The unit could not be opened (a closed Egress): the request goes on to Express's error handling.
      if (!entered) {
        response.end = end;
        return next(error);
      }
      // The handler's own error: its answer goes out as the error handler wrote it.
      if (state.failure !== undefined && state.failure.error === error) return release();
      refuse(response, end, error);
    });
  };
}

/**
 * Marks a request whose handler threw, so that its events are discarded whatever status the answer
 * has, and passes the error on. Mount it after the routes and before your own error handlers.
 */
export function egressErrorHandler(): ErrorRequestHandler {
  return (error, request, _response, next) => {
    const state = states.get(request);
    if (state) state.failure = { error };
    next(error);
  };
}

/** The store refused the events: the answer must not claim success. */
function refuse(response: Parameters<RequestHandler>[1], end: Parameters<RequestHandler>[1]['end'], error: unknown): void {
  response.end = end;
  if (response.headersSent) {
    response.destroy(error instanceof Error ? error : undefined);
    return;
  }
  for (const name of response.getHeaderNames()) response.removeHeader(name);
  response.statusCode = 500;
  response.setHeader('content-type', 'text/plain; charset=utf-8');
  (end as (chunk: string) => unknown).call(response, 'Internal Server Error');
}
