import type { Egress } from '@egress/core';

/**
 * Declares the application's Egress instance once, so that `req.egress` (Express), `request.egress`
 * (Fastify) and `ctx.egress` (Koa) are typed from its destinations:
 *
 *     declare module '@egress/middleware' {
 *       interface Register { egress: typeof egress }
 *     }
 *
 * Hono's `c.get('egress')` and the fetch wrapper's `$send` are typed from the instance passed to
 * them and need no declaration.
 */
export interface Register {}

/** The instance declared in `Register`, or an `Egress` whose send functions accept nothing until one is declared. */
export type RegisteredEgress = Register extends { egress: infer Instance } ? Instance : Egress;

/** `$send` of the registered instance: what `req.egress`, `request.egress` and `ctx.egress` hold. */
export type RegisteredSend = SendOf<RegisteredEgress>;

/** The `$send` functions of an Egress instance, typed from its destinations. */
export type SendOf<Instance> = Instance extends { readonly send: infer Send } ? Send : never;
