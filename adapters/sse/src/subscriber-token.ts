import { createHmac, timingSafeEqual } from 'node:crypto';
import { EgressConfigurationError, parseDuration, type Duration } from '@egress/core';
import { channelNameProblem } from './channel-name.js';

export interface SubscriberTokenOptions {
  /** The stream's signing secret (one of `auth.secrets`); at least 32 characters. */
  secret: string;
  /** How long the token is valid, e.g. `'5m'` or 300000 (milliseconds). */
  expiresIn: Duration;
  /** Channels the token may subscribe to; all channels when not given. */
  channels?: readonly string[];
  /** The time to count from, in Unix milliseconds; now when not given. */
  now?: number;
}

const tokenPrefix = 'egs1';
export const minimumSecretLength = 32;

interface TokenClaims {
  /** Expiry in Unix milliseconds. */
  exp: number;
  /** Allowed channels, or absent for all. */
  ch?: string[];
}

/**
 * A short-lived token a browser can put in the stream URL (`?token=`), because an `EventSource`
 * cannot send an `Authorization` header. It is HMAC-SHA256 signed, so the server keeps no state.
 */
export function createSubscriberToken(options: SubscriberTokenOptions): string {
  const { secret, channels } = options;
  if (typeof secret !== 'string' || secret.length < minimumSecretLength) {
    throw new EgressConfigurationError(`expected a string of at least ${minimumSecretLength} characters`, '[sse] createSubscriberToken option "secret"');
  }
  const expiresIn = parseDuration(options.expiresIn);
  if (typeof expiresIn !== 'number' || expiresIn <= 0) {
    const problem = typeof expiresIn === 'number' ? 'expected a positive duration' : expiresIn.error;
    throw new EgressConfigurationError(problem, '[sse] createSubscriberToken option "expiresIn"');
  }
  const claims: TokenClaims = { exp: (options.now ?? Date.now()) + expiresIn };
  if (channels !== undefined) {
    for (const channel of channels) {
      const problem = typeof channel === 'string' ? channelNameProblem(channel) : 'expected a string';
      if (problem) throw new EgressConfigurationError(`${JSON.stringify(channel)}: ${problem}`, '[sse] createSubscriberToken option "channels"');
    }
    claims.ch = [...channels];
  }
  const body = Buffer.from(JSON.stringify(claims)).toString('base64url');
  return `${tokenPrefix}.${body}.${sign(secret, body)}`;
}

export function isSignedToken(token: string): boolean {
  return token.startsWith(`${tokenPrefix}.`);
}

/** The verdict on a signed token: its channel limit, or why it is refused (never echoing the token). */
export type SignedTokenVerdict = { ok: true; channels: readonly string[] | undefined } | { ok: false; reason: string };

export function verifySubscriberToken(token: string, secrets: readonly string[], now = Date.now()): SignedTokenVerdict {
  const parts = token.split('.');
  if (parts.length !== 3 || parts[0] !== tokenPrefix || !parts[1] || !parts[2]) return { ok: false, reason: 'malformed signed token' };
  const [, body, signature] = parts as [string, string, string];
  const given = Buffer.from(signature, 'base64url');
  const valid = secrets.some((secret) => {
    const expected = Buffer.from(sign(secret, body), 'base64url');
    return expected.length === given.length && timingSafeEqual(expected, given);
  });
  if (!valid) return { ok: false, reason: 'token signature does not match' };
  let claims: Partial<TokenClaims>;
  try {
    claims = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as Partial<TokenClaims>;
  } catch {
    return { ok: false, reason: 'malformed signed token' };
  }
  if (typeof claims.exp !== 'number') return { ok: false, reason: 'malformed signed token' };
  if (claims.exp <= now) return { ok: false, reason: `token expired at ${new Date(claims.exp).toISOString()}` };
  if (claims.ch !== undefined && !(Array.isArray(claims.ch) && claims.ch.every((channel) => typeof channel === 'string'))) {
    return { ok: false, reason: 'malformed signed token' };
  }
  return { ok: true, channels: claims.ch };
}

function sign(secret: string, body: string): string {
  return createHmac('sha256', secret).update(`${tokenPrefix}.${body}`).digest('base64url');
}
