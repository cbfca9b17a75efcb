/**
 * Every error Egress raises carries a brand (`Symbol.for`) and a static `isInstance()`, because
 * `instanceof` fails when two copies of `@egress/core` are installed side by side.
 */
const egressErrorBrand = Symbol.for('egress.error');

export class EgressError extends Error {
  private readonly [egressErrorBrand] = true;
  override readonly name: string = 'EgressError';

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }

  static isInstance(error: unknown): error is EgressError {
    return hasBrand(error, egressErrorBrand);
  }
}

function hasBrand(error: unknown, brand: symbol): boolean {
  return typeof error === 'object' && error !== null && brand in error;
}

/** One problem found in a `$send` input or a configuration value. */
export interface ValidationIssue {
  /** Dotted path of the offending value, e.g. `auth.password` or `payload.items[2]`; empty for the root. */
  path: string;
  /** What was expected, in words. */
  message: string;
}

const validationBrand = Symbol.for('egress.error.validation');

/** A `$send` call was rejected before anything was enqueued. */
export class EgressValidationError extends EgressError {
  private readonly [validationBrand] = true;
  override readonly name = 'EgressValidationError';

  constructor(
    /** The destination whose input was invalid. */
    readonly destination: string,
    /** Every problem found, each with its field path. */
    readonly issues: readonly ValidationIssue[],
  ) {
    super(`$send.${destination}: ${issues.map(formatIssue).join('; ')}`);
  }

  static override isInstance(error: unknown): error is EgressValidationError {
    return hasBrand(error, validationBrand);
  }
}

function formatIssue(issue: ValidationIssue): string {
  return issue.path ? `${issue.path}: ${issue.message}` : issue.message;
}

const configurationBrand = Symbol.for('egress.error.configuration');

/** An option, a policy or a configuration file is invalid; `path` names the bad value. */
export class EgressConfigurationError extends EgressError {
  private readonly [configurationBrand] = true;
  override readonly name = 'EgressConfigurationError';

  constructor(
    message: string,
    /** Where the bad value sits, e.g. `policies.s3.batch.maxBytes` or `[s3] option "bucket"`. */
    readonly path: string,
    options?: { cause?: unknown },
  ) {
    super(`[egress] ${path ? `${path}: ` : ''}${message}`, options);
  }

  static override isInstance(error: unknown): error is EgressConfigurationError {
    return hasBrand(error, configurationBrand);
  }
}

const retryableBrand = Symbol.for('egress.error.retryable');

/** Thrown (or reported per event) by an adapter when a later attempt may succeed. */
export class RetryableError extends EgressError {
  private readonly [retryableBrand] = true;
  override readonly name = 'RetryableError';
  /** Milliseconds the sink asked us to wait (e.g. HTTP `Retry-After`); wins over the backoff. */
  readonly retryAfter: number | undefined;

  constructor(message: string, options?: { retryAfter?: number; cause?: unknown }) {
    super(message, options);
    this.retryAfter = options?.retryAfter;
  }

  static override isInstance(error: unknown): error is RetryableError {
    return hasBrand(error, retryableBrand);
  }
}

const permanentBrand = Symbol.for('egress.error.permanent');

/** Thrown (or reported per event) by an adapter when retrying cannot help: the event is dead-lettered. */
export class PermanentError extends EgressError {
  private readonly [permanentBrand] = true;
  override readonly name = 'PermanentError';

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }

  static override isInstance(error: unknown): error is PermanentError {
    return hasBrand(error, permanentBrand);
  }
}

const deliveryBrand = Symbol.for('egress.error.delivery');

/**
 * An adapter threw something that is neither `RetryableError` nor `PermanentError`. Core treats it
 * as retryable (an unknown failure is no proof that the event can never be delivered) and keeps the
 * original as `cause`.
 */
export class EgressDeliveryError extends EgressError {
  private readonly [deliveryBrand] = true;
  override readonly name = 'EgressDeliveryError';

  constructor(
    /** The destination whose `deliver` failed. */
    readonly destination: string,
    cause: unknown,
  ) {
    super(`[egress] [${destination}] delivery failed: ${describeCause(cause)}`, { cause });
  }

  static override isInstance(error: unknown): error is EgressDeliveryError {
    return hasBrand(error, deliveryBrand);
  }
}

const capacityBrand = Symbol.for('egress.error.capacity');

/** The store is full and the overflow policy is `'reject'`: nothing was enqueued. */
export class EgressCapacityError extends EgressError {
  private readonly [capacityBrand] = true;
  override readonly name = 'EgressCapacityError';

  constructor(message: string) {
    super(`[egress] ${message}`);
  }

  static override isInstance(error: unknown): error is EgressCapacityError {
    return hasBrand(error, capacityBrand);
  }
}

const storeUnavailableBrand = Symbol.for('egress.error.store-unavailable');

/**
 * The store could not be reached (connection refused, lost, timed out); the same call may succeed
 * later. Stores throw it for connectivity failures only, so that the engine retries those and treats
 * every other store error as final.
 */
export class EgressStoreUnavailableError extends EgressError {
  private readonly [storeUnavailableBrand] = true;
  override readonly name = 'EgressStoreUnavailableError';

  constructor(
    /** The store's kind, e.g. `postgres`. */
    readonly store: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`[egress] [${store}] ${message}`, options);
  }

  static override isInstance(error: unknown): error is EgressStoreUnavailableError {
    return hasBrand(error, storeUnavailableBrand);
  }
}

const storeBrand = Symbol.for('egress.error.store');

/**
 * The store failed in a way that waiting cannot mend here and now: a unit of work whose commit the
 * store refused (its events were not kept), or a store that could not be opened at all. `cause`
 * holds the store's own error.
 */
export class EgressStoreError extends EgressError {
  private readonly [storeBrand] = true;
  override readonly name = 'EgressStoreError';

  constructor(
    /** The store's kind, e.g. `sqlite`. */
    readonly store: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`[egress] [${store}] ${message}${options && 'cause' in options ? `: ${describeCause(options.cause)}` : ''}`, options);
  }

  static override isInstance(error: unknown): error is EgressStoreError {
    return hasBrand(error, storeBrand);
  }
}

const closedBrand = Symbol.for('egress.error.closed');

/** A send after `close()` began. */
export class EgressClosedError extends EgressError {
  private readonly [closedBrand] = true;
  override readonly name = 'EgressClosedError';

  constructor(message = '[egress] closed: no new events are accepted') {
    super(message);
  }

  static override isInstance(error: unknown): error is EgressClosedError {
    return hasBrand(error, closedBrand);
  }
}

const timeoutBrand = Symbol.for('egress.error.timeout');

/** A delivery, a flush or a shutdown took longer than allowed. */
export class EgressTimeoutError extends EgressError {
  private readonly [timeoutBrand] = true;
  override readonly name = 'EgressTimeoutError';

  constructor(message: string) {
    super(`[egress] ${message}`);
  }

  static override isInstance(error: unknown): error is EgressTimeoutError {
    return hasBrand(error, timeoutBrand);
  }
}

export function describeCause(cause: unknown): string {
  if (cause instanceof Error) return cause.message || cause.name;
  if (typeof cause === 'string') return cause;
  try {
    return JSON.stringify(cause) ?? String(cause);
  } catch {
    return String(cause);
  }
}
