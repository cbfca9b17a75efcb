import type { AnyDestination } from './destination.js';
import { redactedPayload } from './destination-secrets.js';
import { EgressConfigurationError, EgressValidationError, describeCause } from './errors.js';
import type { Logger } from './logger.js';
import type { DeadLetterRoutingOptions, RoutedDeadLetter } from './policy-options.js';
import type { Receipt } from './receipt.js';
import type { SecretRedactor } from './secret-redaction.js';
import type { ClaimedBatch, ErrorRecord } from './store.js';
import { validateInput } from './validation.js';

/** A destination's dead-letter routing, checked. */
export interface ResolvedDeadLetterRouting {
  routeTo: string;
  /** Builds the target's input from a routed dead letter. */
  input: (deadLetter: RoutedDeadLetter) => unknown;
  /** Whether `input` is the user's own function (which only a real dead letter can try). */
  custom: boolean;
}

const routingKeys = ['routeTo', 'input', 'fields', 'recordField'];

/** A policy's `deadLetters`; whether `routeTo` names a usable destination is checked once all are registered. */
export function resolveDeadLetterRouting(value: unknown, at: string): ResolvedDeadLetterRouting | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new EgressConfigurationError(`expected { routeTo }, got ${JSON.stringify(value)}`, at);
  for (const key of Object.keys(value)) {
    if (!routingKeys.includes(key)) throw new EgressConfigurationError(`unknown key "${key}" (expected one of ${routingKeys.join(', ')})`, `${at}.${key}`);
  }
  const { routeTo, input, fields, recordField } = value as DeadLetterRoutingOptions;
  if (typeof routeTo !== 'string' || routeTo.length === 0) throw new EgressConfigurationError(`expected the name of a destination, got ${JSON.stringify(routeTo)}`, `${at}.routeTo`);
  if (input !== undefined && typeof input !== 'function') throw new EgressConfigurationError(`expected a function, got ${JSON.stringify(input)}`, `${at}.input`);
  if (input !== undefined && (fields !== undefined || recordField !== undefined)) {
    throw new EgressConfigurationError('give either "input" or "fields"/"recordField", not both', `${at}.input`);
  }
  if (fields !== undefined && (typeof fields !== 'object' || fields === null || Array.isArray(fields))) {
    throw new EgressConfigurationError(`expected an object, got ${JSON.stringify(fields)}`, `${at}.fields`);
  }
  if (recordField !== undefined && (typeof recordField !== 'string' || recordField.length === 0)) {
    throw new EgressConfigurationError(`expected a field name, got ${JSON.stringify(recordField)}`, `${at}.recordField`);
  }
  if (input) return { routeTo, input, custom: true };
  if (fields === undefined && recordField === undefined) return { routeTo, input: (deadLetter) => deadLetter, custom: false };
  const field = recordField ?? 'deadLetter';
  return { routeTo, input: (deadLetter) => ({ ...fields, [field]: deadLetter }), custom: false };
}

/**
 * Checks every route once all destinations are registered: the target exists, is not the routing
 * destination itself, and routes no dead letters of its own, so a dead letter of a routed record
 * is never routed again (no loop, however the routes are drawn). A fixed input shape is tried
 * against the target's input schema here, so a route that could never be sent fails at start.
 */
export function checkDeadLetterRoutes(routes: ReadonlyMap<string, { destination: AnyDestination; routing: ResolvedDeadLetterRouting | undefined }>): void {
  const names = [...routes.keys()];
  for (const [name, { routing }] of routes) {
    if (!routing) continue;
    const at = `policies.${name}.deadLetters.routeTo`;
    const target = routes.get(routing.routeTo);
    if (!target) throw new EgressConfigurationError(`no destination is named "${routing.routeTo}" (registered: ${names.join(', ')})`, at);
    if (routing.routeTo === name) throw new EgressConfigurationError(`"${name}" cannot receive its own dead letters`, at);
    if (target.routing) {
      throw new EgressConfigurationError(`"${routing.routeTo}" routes its own dead letters to "${target.routing.routeTo}"; a routing target may not, so that dead letters never go round`, at);
    }
    if (routing.custom) continue;
    try {
      validateInput(routing.routeTo, target.destination.input, routing.input(sampleDeadLetter(name)));
    } catch (error) {
      const reason = EgressValidationError.isInstance(error) ? error.issues.map((issue) => (issue.path ? `${issue.path}: ${issue.message}` : issue.message)).join('; ') : describeCause(error);
      throw new EgressConfigurationError(`a dead letter does not fit the input of "${routing.routeTo}" (${reason}); set "fields" and "recordField", or "input"`, `policies.${name}.deadLetters`);
    }
  }
}

function sampleDeadLetter(destination: string): RoutedDeadLetter {
  return { destination, partition: '', eventId: '', attempts: 1, error: { name: 'Error', message: '' }, payload: {}, sentAt: 0, deadAt: 0 };
}

/**
 * Sends dead letters on to their route's destination through the normal queue, so they are as
 * durable as any event and retried by the target's own policy. The worker that dead-letters does it,
 * before it records the settlement: a crash in between sends the record twice, never not at all.
 */
export class DeadLetterRouter {
  /** Records committed for routing so far in this process, so that `flush` can wait for them too. */
  routed = 0;

  constructor(
    private readonly logger: Logger,
    /** Queues one input for a destination, as `$send` does. */
    private readonly enqueue: (destination: string, input: unknown) => Receipt,
  ) {}

  async route(
    destination: AnyDestination,
    routing: ResolvedDeadLetterRouting,
    claimed: ClaimedBatch,
    dead: readonly { eventId: string; error: ErrorRecord }[],
    redactor: SecretRedactor,
    now: number,
  ): Promise<void> {
    const events = new Map(claimed.events.map((event) => [event.id, event]));
    const receipts: { eventId: string; receipt: Receipt }[] = [];
    for (const { eventId, error } of dead) {
      const event = events.get(eventId);
      if (!event) continue;
      const deadLetter: RoutedDeadLetter = {
        destination: destination.name,
        partition: claimed.partition,
        eventId,
        attempts: event.attempts,
        error: { name: error.name, message: redactor.redact(error.message) },
        payload: redactedPayload(destination, event.payload, redactor),
        sentAt: event.sentAt,
        deadAt: now,
      };
      try {
        receipts.push({ eventId, receipt: this.enqueue(routing.routeTo, routing.input(deadLetter)) });
      } catch (failure) {
        this.failed(destination.name, routing.routeTo, eventId, failure);
      }
    }
    await Promise.all(
      receipts.map(({ eventId, receipt }) =>
        receipt.committed().then(
          () => void (this.routed += 1),
          (failure: unknown) => this.failed(destination.name, routing.routeTo, eventId, failure),
        ),
      ),
    );
  }

  private failed(from: string, to: string, eventId: string, error: unknown): void {
    this.logger.error({ destination: from, routeTo: to, eventId, error }, `a dead letter of ${from} could not be routed to ${to}; it stays in the dead-letter queue`);
  }
}
