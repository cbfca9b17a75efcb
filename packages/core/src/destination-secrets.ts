import type { AnyDestination } from './destination.js';
import { decodePayload } from './payload-codec.js';
import { SecretRedactor } from './secret-redaction.js';

const adapterRedactors = new WeakMap<AnyDestination, SecretRedactor>();

/** The secrets a destination's adapter holds, as a redactor; worked out once per destination. */
export function destinationRedactor(destination: AnyDestination): SecretRedactor {
  let redactor = adapterRedactors.get(destination);
  if (redactor === undefined) {
    redactor = new SecretRedactor(adapterSecrets(destination));
    adapterRedactors.set(destination, redactor);
  }
  return redactor;
}

/**
 * A redactor for what one delivery reports: the adapter's secrets and those of every event in the
 * batch, since a receiver answering a batch may echo any event's credentials.
 */
export function deliveryRedactor(destination: AnyDestination, payloadsJson: readonly string[]): SecretRedactor {
  if (!destination.payloadSecrets) return destinationRedactor(destination);
  const secrets = adapterSecrets(destination);
  for (const json of payloadsJson) {
    try {
      secrets.push(...destination.payloadSecrets(decodePayload(json)));
    } catch {
      // A payload the adapter cannot read names no secrets; the patterns still apply.
    }
  }
  return new SecretRedactor(secrets);
}

/** A redactor for the secrets of every destination, for texts that belong to none in particular (logs). */
export function allDestinationsRedactor(destinations: Iterable<AnyDestination>): SecretRedactor {
  const secrets: string[] = [];
  for (const destination of destinations) secrets.push(...adapterSecrets(destination));
  return new SecretRedactor(secrets);
}

function adapterSecrets(destination: AnyDestination): string[] {
  try {
    return [...(destination.secrets?.() ?? [])];
  } catch {
    return [];
  }
}

/**
 * A copy of a payload for display (a dead letter listed by the API or the CLI) with every string
 * passed through the redactor: what the adapter's own `redact` did not know to mask, the known
 * secrets still are. The stored payload is untouched, since a retry needs it as it was sent.
 */
export function redactStrings(value: unknown, redactor: SecretRedactor, depth = 0): unknown {
  if (typeof value === 'string') return redactor.redact(value);
  if (depth > 64 || typeof value !== 'object' || value === null || value instanceof Uint8Array) return value;
  if (Array.isArray(value)) return value.map((entry) => redactStrings(entry, redactor, depth + 1));
  const copy: Record<string, unknown> = {};
  for (const [key, entry] of Object.entries(value)) {
    // Core's own snapshot guarantees plain own data; `__proto__` stays a key here too.
    Object.defineProperty(copy, key, { value: redactStrings(entry, redactor, depth + 1), enumerable: true, writable: true, configurable: true });
  }
  return copy;
}

/** A stored payload as dead letters show it: through the adapter's `redact`, then every known secret masked. */
export function redactedPayload(destination: AnyDestination, payloadJson: string, redactor: SecretRedactor = deliveryRedactor(destination, [payloadJson])): unknown {
  const payload = decodePayload(payloadJson);
  return redactStrings(destination.redact ? destination.redact(payload) : payload, redactor);
}
