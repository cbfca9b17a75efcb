import type { StandardSchemaV1 } from '@standard-schema/spec';
import { EgressConfigurationError } from './errors.js';
import type { Logger } from './logger.js';
import type { PolicyOptions } from './policy-options.js';

/** The contract version adapters written today declare. */
export const DESTINATION_SPECIFICATION_VERSION = 'v1';

/** Contract versions this core accepts: the current one and, once there is one, the one before. */
export const SUPPORTED_SPECIFICATION_VERSIONS: readonly string[] = ['v1'];

/**
 * A destination: where events go, how one `$send` input is checked, and how a batch is delivered.
 * Adapters build one with `defineDestination`; core owns batching, retries and dead letters.
 */
export interface Destination<Name extends string = string, Input = unknown, Payload = Input> {
  /** Version of this contract the adapter was written against. */
  readonly specificationVersion: 'v1';
  /** The `$send.<name>` this destination answers to: letters, digits and underscore. */
  readonly name: Name;
  /** Checks each `$send` input synchronously; its output is the payload that is queued. Any Standard Schema. */
  readonly input: StandardSchemaV1<Input, Payload>;
  /** Policy used where the user sets none (e.g. S3 batches for 60 s). */
  readonly defaults?: PolicyOptions;
  /** The most the sink accepts in one delivery; core never forms a larger batch. */
  readonly limits?: DestinationLimits;
  /** Events of different partitions never share a batch (S3: bucket and prefix; SQL: table). */
  partition?(payload: Payload): string;
  /**
   * Bytes this event adds to a batch as the adapter will send it; by default its JSON length.
   * `payloadJson` is the JSON text the payload is queued as, for adapters that send JSON anyway.
   */
  measure?(payload: Payload, payloadJson?: string): number;
  /** A copy of the payload fit to print or store in a dead letter, with secrets masked. */
  redact?(payload: Payload): unknown;
  /**
   * Secrets the adapter holds (passwords, tokens, signing secrets, credential headers): core masks
   * them, plain, URL-encoded and base64, in every error, event, log and health message.
   */
  secrets?(): readonly string[];
  /** Secrets one queued payload carries (its auth, credential headers and query parameters), masked the same way in what its delivery reports. */
  payloadSecrets?(payload: Payload): readonly string[];
  /** Delivers one batch. Resolving means every event arrived, unless the report lists failures. */
  deliver(batch: Batch<Payload>, context: DeliveryContext): Promise<DeliveryReport | void>;
  /** Called once before the first delivery (open pools, start servers). */
  start?(context: LifecycleContext): Promise<void> | void;
  /** Called once at `close()`, after the last delivery. */
  stop?(): Promise<void> | void;
  /** Whether the sink is reachable now; used by `egress.health()` and the CLI. */
  health?(): Promise<HealthReport>;
}

/** Hard limits a sink imposes on one delivery. */
export interface DestinationLimits {
  /** Largest number of events in one batch. */
  maxEvents?: number;
  /** Largest batch in encoded bytes, as measured by `measure`. */
  maxBytes?: number;
  /** Deepest nesting of objects and arrays in one `$send` input; 64 when not given. */
  maxDepth?: number;
  /** Largest `$send` input in bytes of JSON; 16 MiB when not given. */
  maxInputBytes?: number;
}

/** Events handed to `deliver` together; the same events keep the same id on every retry. */
export interface Batch<Payload = unknown> {
  /** 64 hexadecimal characters derived from the destination and the event ids. */
  readonly id: string;
  /** The destination's name. */
  readonly destination: string;
  /** The partition every event in the batch belongs to. */
  readonly partition: string;
  /** 1 on the first attempt, 2 on the first retry... (the highest attempt among the events). */
  readonly attempt: number;
  /** The events, oldest first. */
  readonly events: readonly BatchEvent<Payload>[];
}

export interface BatchEvent<Payload = unknown> {
  /** Time-ordered event id (a UUIDv7), the same on every retry: use it to deduplicate at the sink. */
  readonly id: string;
  /**
   * The validated payload. On events the engine hands to `deliver` it is decoded from
   * `payloadJson` when first read, through a getter on the event's prototype: a spread copy of the
   * event (`{ ...event }`) does not carry it, so copy it by name (`{ ...event, payload: event.payload }`).
   */
  readonly payload: Payload;
  /**
   * The payload as the JSON text it was queued as. Set on every batch the engine delivers; an
   * adapter that writes JSON can reuse it instead of encoding `payload` again.
   */
  readonly payloadJson?: string;
  /** 1 on this event's first attempt. */
  readonly attempt: number;
  /** When `$send` accepted the event, or when its dead letter was put back in the queue, in Unix milliseconds. */
  readonly sentAt: number;
  /** Trace context of the event's `send`, when tracing is on (see `Tracing`). */
  readonly trace?: string;
}

export interface DeliveryContext {
  /** Aborted when the delivery times out or shutdown gives up waiting; pass it to the client. */
  readonly signal: AbortSignal;
  /** Core's logger. */
  readonly logger: Logger;
  /**
   * Trace propagation headers of this attempt (W3C `traceparent` and `tracestate`) when tracing is
   * on: an adapter puts them on what it sends, where the sink has a place for them.
   */
  readonly traceHeaders?: Readonly<Record<string, string>>;
}

export interface LifecycleContext {
  /** Core's logger. */
  readonly logger: Logger;
}

/**
 * What a partly successful batch reports. Events not listed were delivered. Each error is
 * classified like a throw: `PermanentError` dead-letters, `RetryableError` or anything else retries.
 */
export interface DeliveryReport {
  /** The events that failed, each with its own error. */
  readonly failures: readonly { readonly eventId: string; readonly error: unknown }[];
}

export interface HealthReport {
  /** The sink answered as expected. */
  readonly ok: boolean;
  /** What went wrong, or a note about the sink. */
  readonly message?: string;
}

/** Any destination, whatever its input and payload types. */
// The function members are declared as methods, so a concrete destination is assignable here.
export type AnyDestination = Destination<string, unknown, unknown>;

/** The `$send` input type of a destination. */
export type DestinationInput<D> = D extends Destination<string, infer Input, unknown> ? Input : never;

const namePattern = /^[A-Za-z][A-Za-z0-9_]*$/;

/**
 * Declares a destination. Checks the definition at once, so a broken adapter fails when it is
 * constructed rather than when the first event is delivered.
 */
export function defineDestination<const Name extends string, Input, Payload>(
  definition: Omit<Destination<Name, Input, Payload>, 'specificationVersion'> & { specificationVersion?: 'v1' },
): Destination<Name, Input, Payload> {
  const destination = { ...definition, specificationVersion: definition.specificationVersion ?? DESTINATION_SPECIFICATION_VERSION } as Destination<Name, Input, Payload>;
  assertDestination(destination);
  return destination;
}

/** Checks that a value honours the contract; the message names the destination and the member. */
export function assertDestination(value: unknown): asserts value is AnyDestination {
  if (typeof value !== 'object' || value === null) {
    throw new EgressConfigurationError('expected a destination object (see defineDestination)', 'destinations');
  }
  const candidate = value as Partial<AnyDestination>;
  const label = typeof candidate.name === 'string' ? `[${candidate.name}]` : 'destination';
  if (typeof candidate.name !== 'string' || !namePattern.test(candidate.name)) {
    throw new EgressConfigurationError(`"name" must start with a letter and hold only letters, digits and underscore, got ${JSON.stringify(candidate.name)}`, label);
  }
  if (!SUPPORTED_SPECIFICATION_VERSIONS.includes(candidate.specificationVersion as string)) {
    throw new EgressConfigurationError(
      `specificationVersion ${JSON.stringify(candidate.specificationVersion)} is not supported by this @egress/core (supports ${SUPPORTED_SPECIFICATION_VERSIONS.join(', ')})`,
      label,
    );
  }
  const schema = candidate.input as Partial<StandardSchemaV1> | undefined;
  if (typeof schema !== 'object' || schema === null || typeof schema['~standard']?.validate !== 'function') {
    throw new EgressConfigurationError('"input" must be a Standard Schema (zod, valibot, arktype...)', label);
  }
  if (typeof candidate.deliver !== 'function') {
    throw new EgressConfigurationError('"deliver" must be a function', label);
  }
  for (const hook of ['partition', 'measure', 'redact', 'secrets', 'payloadSecrets', 'start', 'stop', 'health'] as const) {
    if (candidate[hook] !== undefined && typeof candidate[hook] !== 'function') {
      throw new EgressConfigurationError(`"${hook}" must be a function when given`, label);
    }
  }
  for (const limit of ['maxEvents', 'maxBytes', 'maxDepth', 'maxInputBytes'] as const) {
    const given = candidate.limits?.[limit];
    if (given !== undefined && !(Number.isInteger(given) && given > 0)) {
      throw new EgressConfigurationError(`limits.${limit} must be a positive integer, got ${JSON.stringify(given)}`, label);
    }
  }
}
