import { createBatchId, createEventId, silentLogger, type Batch, type DeliveryContext } from '@egress/core';
import type { EmailDestination, EmailInput, EmailPayload } from '../src/index.js';

/** Runs a `$send.email` input through the destination's schema as core does; throws on issues. */
export function accept(destination: EmailDestination, input: EmailInput): EmailPayload {
  const result = destination.input['~standard'].validate(input);
  if (result instanceof Promise) throw new Error('the schema must validate synchronously');
  if (result.issues) throw new Error(result.issues.map((issue) => issue.message).join('; '));
  return result.value;
}

/** The issues a `$send.email` input raises, each as `path: message`. */
export function issuesOf(destination: EmailDestination, input: unknown): string[] {
  const result = destination.input['~standard'].validate(input);
  if (result instanceof Promise) throw new Error('the schema must validate synchronously');
  return (result.issues ?? []).map((issue) => `${(issue.path ?? []).map((segment) => (typeof segment === 'object' ? String(segment.key) : String(segment))).join('.')}: ${issue.message}`);
}

/** A batch as core hands it to `deliver`, built from accepted inputs. */
export function batchOf(destination: EmailDestination, inputs: readonly EmailInput[], attempt = 1): Batch<EmailPayload> {
  const events = inputs.map((input) => ({ id: createEventId(), payload: accept(destination, input), attempt, sentAt: Date.now() }));
  return {
    id: createBatchId('email', events.map((event) => event.id)),
    destination: 'email',
    partition: destination.partition?.(events[0]!.payload) ?? '',
    attempt,
    events,
  };
}

export function deliveryContext(): DeliveryContext {
  return { signal: new AbortController().signal, logger: silentLogger };
}
