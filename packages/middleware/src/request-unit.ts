import { AsyncResource } from 'node:async_hooks';
import type { Egress } from '@egress/core';

/** One request's unit of work, as an integration hands it to the framework. */
export interface RequestUnit<Send> {
  /**
   * The unit's send functions. They join this unit from any async context, including callbacks the
   * framework runs outside it (a body parser's stream events), so `req.egress` never escapes it.
   */
  readonly send: Send;
  /** Runs `fn` in the unit's async context, for frameworks that lose it between steps. */
  enter<T>(fn: () => T): T;
}

/** What the request's answer turned out to be. */
export type RequestAnswer = { status: number } | { error: unknown } | { noAnswer: true };

/** Thrown inside `run` to discard the unit's events without an error of the application's own. */
class Discarded extends Error {}

/**
 * Runs one request as a unit of work. `handle` is called synchronously inside `egress.run`, so the
 * framework's next step starts in the unit's async context and helpers deep in the handler reach
 * the same `$send` through `egress.send`. `handle` resolves with the answer; the unit commits when
 * `commitOn(status)` holds and is discarded otherwise, or when the handler threw or never answered.
 *
 * Resolves once the decision is carried out: `'committed'` after the store took the events,
 * `'discarded'` for an answer the rule refuses and for no answer. Rejects with the handler's error
 * (events discarded), or with the store's error when the commit was refused.
 */
export async function runRequestUnit<Send>(
  egress: Pick<Egress, 'run'>,
  commitOn: (status: number) => boolean,
  handle: (unit: RequestUnit<Send>) => Promise<RequestAnswer>,
): Promise<'committed' | 'discarded'> {
  try {
    await egress.run(async (send) => {
      const resource = new AsyncResource('egress.request');
      const unit: RequestUnit<Send> = { send: bindSend(send, resource) as Send, enter: (fn) => resource.runInAsyncScope(fn) };
      const answer = await handle(unit);
      if ('error' in answer) throw answer.error;
      if ('noAnswer' in answer || !commitOn(answer.status)) throw new Discarded();
    });
    return 'committed';
  } catch (error) {
    if (error instanceof Discarded) return 'discarded';
    throw error;
  }
}

/** The same send functions, each run in the unit's async context wherever it is called from. */
function bindSend(send: object, resource: AsyncResource): object {
  // The prototype keeps core's answer for a name no destination is registered under.
  const bound = Object.create(Object.getPrototypeOf(send) as object) as Record<string, (input: unknown) => unknown>;
  for (const [name, sendOne] of Object.entries(send as Record<string, (input: unknown) => unknown>)) {
    bound[name] = (input: unknown) => resource.runInAsyncScope(sendOne, undefined, input);
  }
  return Object.freeze(bound);
}
