import { EgressStoreUnavailableError } from '@egress/core';

/** Socket errors that say the database could not be reached or the connection broke, not that a statement was wrong. */
const socketErrorCodes = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EADDRNOTAVAIL',
]);

/**
 * SQLSTATEs of a server that is going away or cannot take the connection now: admin shutdown
 * (57P01, also what `pg_terminate_backend` sends), crash shutdown, starting up, too many connections.
 * Class 08 (connection exception) is matched as a class.
 */
const serverUnavailableStates = new Set(['57P01', '57P02', '57P03', '53300']);

/** node-postgres reports a dead or unusable connection with these messages and no code. */
const brokenConnectionMessage = /Connection terminated|is not queryable|timeout exceeded when trying to connect|Query read timeout/i;

/** A connection given up by the store itself: an operation outlived its timeout. */
export class ConnectionTimeout extends Error {
  override readonly name = 'ConnectionTimeout';
}

/** Whether `error` means PostgreSQL could not be reached or the connection broke (so the same call may succeed later). */
export function isConnectionFailure(error: unknown): boolean {
  if (error instanceof ConnectionTimeout || EgressStoreUnavailableError.isInstance(error)) return true;
  if (typeof error !== 'object' || error === null) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (socketErrorCodes.has(code) || serverUnavailableStates.has(code) || /^08[0-9A-Z]{3}$/.test(code)) return true;
  }
  // Node reports a failed connection attempt to every address of a host as an AggregateError.
  const errors = (error as { errors?: unknown }).errors;
  if (Array.isArray(errors) && errors.length > 0 && errors.every(isConnectionFailure)) return true;
  return error instanceof Error && brokenConnectionMessage.test(error.message);
}

/** Turns a connectivity failure into the typed error the engine retries; anything else is returned unchanged. */
export function asStoreError(error: unknown, doing: string): unknown {
  if (EgressStoreUnavailableError.isInstance(error) || !isConnectionFailure(error)) return error;
  return new EgressStoreUnavailableError('postgres', `PostgreSQL could not be reached while ${doing}: ${describeConnectionFailure(error)}`, { cause: error });
}

/** The cause in a few words for status and logs, without credentials a URL might carry. */
export function describeConnectionFailure(error: unknown): string {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  let text = describeError(error);
  const nested = typeof error === 'object' && error !== null ? (error as { errors?: unknown }).errors : undefined;
  if (!text && Array.isArray(nested)) text = nested.map(describeError).join('; ');
  if (typeof code === 'string' && !text.includes(code)) text = `${code}: ${text}`;
  return text.replace(/\/\/[^/@\s]*@/g, '//***@');
}

/** An error's message, or the value in words when something other than an Error was thrown. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}
