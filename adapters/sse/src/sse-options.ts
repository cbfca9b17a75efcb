import { EgressConfigurationError, parseDuration, parseSize, type Duration, type Size } from '@egress/core';
import { channelNameProblem } from './channel-name.js';
import { minimumSecretLength } from './subscriber-token.js';

export interface SseOptions extends SseServeOptions {
  /** Most recent events a new subscriber receives before live ones (default 100; 0 for none). */
  replay?: number;
  /** Events kept so a reconnecting subscriber resumes by `Last-Event-ID` (default 1,000; at least `replay`). */
  windowEvents?: number;
  /** Encoded bytes kept for resume, whatever the event count (default `'4MiB'`). */
  windowBytes?: Size;
  /** Interval of the `:keepalive` comment that keeps proxies from closing an idle stream (default `'15s'`). */
  keepalive?: Duration;
  /** Bytes that may wait unsent for one subscriber before it is disconnected as too slow (default `'256KiB'`). */
  subscriberBuffer?: Size;
  /** Subscribers connected at once; more get 503 (default 10,000). */
  maxSubscribers?: number;
  /** Longest wait to write events to subscribers together; a quiet stream writes at once (default `'10ms'`; 0 never waits). */
  coalesce?: Duration;
  /** Reconnection delay suggested to clients with the SSE `retry:` field (default `'3s'`). */
  reconnectDelay?: Duration;
  /** Path served by `listen()`; other paths get 404 (default `'/'`). */
  path?: string;
}

/** Options a request handler can also take on its own (see `createSseHandler`). */
export interface SseServeOptions {
  /** Who may subscribe; without it the stream is public. */
  auth?: SseAuthOptions;
  /** Origins browsers may subscribe from (`Access-Control-Allow-Origin`), or `'*'`; none by default. */
  corsOrigins?: '*' | readonly string[];
}

export interface SseAuthOptions {
  /** Static bearer tokens for services, each optionally limited to channels; accepted only in the `Authorization` header. */
  tokens?: readonly (string | SseStaticToken)[];
  /** Secret(s), 32+ characters, that verify signed tokens from `createSubscriberToken`; list several to rotate. */
  secret?: string | readonly string[];
}

export interface SseStaticToken {
  /** The bearer token. */
  token: string;
  /** Channels it may subscribe to; all when not given. */
  channels?: readonly string[];
}

export interface ResolvedAuth {
  readonly tokens: readonly { token: string; channels: readonly string[] | undefined }[];
  readonly secrets: readonly string[];
}

export interface ResolvedServing {
  readonly auth: ResolvedAuth | undefined;
  readonly corsOrigins: '*' | ReadonlySet<string>;
}

export interface ResolvedSseOptions extends ResolvedServing {
  readonly replay: number;
  readonly windowEvents: number;
  readonly windowBytes: number;
  readonly keepalive: number;
  readonly subscriberBuffer: number;
  readonly maxSubscribers: number;
  readonly reconnectDelay: number;
  readonly coalesce: number;
  readonly path: string;
}

const knownOptions = ['replay', 'coalesce', 'windowEvents', 'windowBytes', 'keepalive', 'subscriberBuffer', 'maxSubscribers', 'reconnectDelay', 'path', 'auth', 'corsOrigins'];

function fail(option: string, message: string): never {
  throw new EgressConfigurationError(message, `[sse] option "${option}"`);
}

export function resolveSseOptions(options: SseOptions): ResolvedSseOptions {
  if (typeof options !== 'object' || options === null) fail('options', 'expected an object');
  for (const key of Object.keys(options)) {
    if (!knownOptions.includes(key)) fail(key, `unknown option (known: ${knownOptions.join(', ')})`);
  }
  const replay = count('replay', options.replay, 100, 0);
  const windowEvents = count('windowEvents', options.windowEvents, Math.max(1000, replay), 1);
  if (windowEvents < replay) fail('windowEvents', `must be at least "replay" (${replay}), got ${windowEvents}`);
  const path = options.path ?? '/';
  if (typeof path !== 'string' || !path.startsWith('/')) fail('path', `expected a path starting with "/", got ${JSON.stringify(path)}`);
  return {
    replay,
    windowEvents,
    windowBytes: quantity('windowBytes', options.windowBytes, parseSize, 4 * 1024 * 1024, 1),
    keepalive: quantity('keepalive', options.keepalive, parseDuration, 15_000, 1),
    subscriberBuffer: quantity('subscriberBuffer', options.subscriberBuffer, parseSize, 256 * 1024, 1),
    maxSubscribers: count('maxSubscribers', options.maxSubscribers, 10_000, 1),
    reconnectDelay: quantity('reconnectDelay', options.reconnectDelay, parseDuration, 3000, 0),
    coalesce: quantity('coalesce', options.coalesce, parseDuration, 10, 0),
    path,
    ...resolveServing(options, 'sse'),
  };
}

/** Checks the serving options; `label` names where they were given in error messages. */
export function resolveServing(options: SseServeOptions, label: string): ResolvedServing {
  const option = (name: string) => `[${label}] option "${name}"`;
  let auth: ResolvedAuth | undefined;
  if (options.auth !== undefined) {
    const given = options.auth;
    if (typeof given !== 'object' || given === null) throw new EgressConfigurationError('expected { tokens?, secret? }', option('auth'));
    for (const key of Object.keys(given)) {
      if (key !== 'tokens' && key !== 'secret') throw new EgressConfigurationError('unknown key (known: tokens, secret)', option(`auth.${key}`));
    }
    const tokens = (given.tokens ?? []).map((entry, index) => {
      const token = typeof entry === 'string' ? entry : entry?.token;
      if (typeof token !== 'string' || token.length < 16 || /\s/.test(token)) {
        throw new EgressConfigurationError('expected a token of at least 16 characters without spaces', option(`auth.tokens[${index}]`));
      }
      const channels = typeof entry === 'string' ? undefined : entry.channels;
      if (channels !== undefined) checkChannels(channels, option(`auth.tokens[${index}].channels`));
      return { token, channels };
    });
    const secrets = given.secret === undefined ? [] : typeof given.secret === 'string' ? [given.secret] : [...given.secret];
    secrets.forEach((secret, index) => {
      if (typeof secret !== 'string' || secret.length < minimumSecretLength) {
        throw new EgressConfigurationError(`expected a string of at least ${minimumSecretLength} characters`, option(typeof given.secret === 'string' ? 'auth.secret' : `auth.secret[${index}]`));
      }
    });
    if (tokens.length === 0 && secrets.length === 0) {
      throw new EgressConfigurationError('give "tokens", "secret" or both; leave "auth" out for a public stream', option('auth'));
    }
    auth = { tokens, secrets };
  }
  let corsOrigins: '*' | ReadonlySet<string> = new Set();
  if (options.corsOrigins === '*') {
    corsOrigins = '*';
  } else if (options.corsOrigins !== undefined) {
    if (!Array.isArray(options.corsOrigins)) throw new EgressConfigurationError("expected '*' or a list of origins", option('corsOrigins'));
    for (const origin of options.corsOrigins as unknown[]) {
      if (typeof origin !== 'string' || !/^https?:\/\/[^/\s]+$/.test(origin)) {
        throw new EgressConfigurationError(`expected an origin like "https://app.example.com" (scheme and host, no path), got ${JSON.stringify(origin)}`, option('corsOrigins'));
      }
    }
    corsOrigins = new Set(options.corsOrigins as readonly string[]);
  }
  return { auth, corsOrigins };
}

function checkChannels(channels: unknown, where: string): void {
  if (!Array.isArray(channels)) throw new EgressConfigurationError('expected a list of channel names', where);
  for (const channel of channels as unknown[]) {
    const problem = typeof channel === 'string' ? channelNameProblem(channel) : 'expected a string';
    if (problem) throw new EgressConfigurationError(`${JSON.stringify(channel)}: ${problem}`, where);
  }
}

function count(option: string, value: unknown, fallback: number, minimum: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < minimum) fail(option, `expected an integer of at least ${minimum}, got ${JSON.stringify(value)}`);
  return value;
}

function quantity(option: string, value: unknown, parse: (value: unknown) => number | { error: string }, fallback: number, minimum: number): number {
  if (value === undefined) return fallback;
  const parsed = parse(value);
  if (typeof parsed !== 'number') fail(option, parsed.error);
  if (parsed < minimum) fail(option, `expected at least ${minimum}, got ${JSON.stringify(value)}`);
  return parsed;
}
