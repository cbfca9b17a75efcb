import type { Logger } from './logger.js';
import type { SecretRedactor } from './secret-redaction.js';

/**
 * The user's logger behind the redaction step: every string and every error in the fields, and
 * the message, pass through `redactor` before the logger sees them. Errors are replaced by copies
 * of the same name whose message, stack and cause are redacted, so a logger that prints errors
 * (pino's serializer) still gets an Error.
 */
export function redactingLogger(logger: Logger, redactor: () => SecretRedactor): Logger {
  const pass = (level: keyof Logger) => (fields: Record<string, unknown>, message: string) => {
    const current = redactor();
    logger[level](redactFields(fields, current), current.redact(message));
  };
  return { debug: pass('debug'), info: pass('info'), warn: pass('warn'), error: pass('error') };
}

function redactFields(fields: Record<string, unknown>, redactor: SecretRedactor): Record<string, unknown> {
  const copy: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) copy[key] = redactValue(value, redactor, 0);
  return copy;
}

function redactValue(value: unknown, redactor: SecretRedactor, depth: number): unknown {
  if (typeof value === 'string') return redactor.redact(value);
  if (value instanceof Error) return redactError(value, redactor, depth);
  if (depth < 4 && Array.isArray(value)) return value.map((entry) => redactValue(entry, redactor, depth + 1));
  if (depth < 4 && typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype) {
    const copy: Record<string, unknown> = {};
    for (const [key, entry] of Object.entries(value)) copy[key] = redactValue(entry, redactor, depth + 1);
    return copy;
  }
  return value;
}

function redactError(error: Error, redactor: SecretRedactor, depth: number): Error {
  const copy = new Error(redactor.redact(error.message));
  copy.name = error.name;
  copy.stack = error.stack === undefined ? undefined : redactor.redact(error.stack);
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' || typeof code === 'number') (copy as { code?: unknown }).code = code;
  if (error.cause !== undefined && depth < 4) copy.cause = redactValue(error.cause, redactor, depth + 1);
  return copy;
}
