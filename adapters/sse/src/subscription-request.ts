import { createHash, timingSafeEqual } from 'node:crypto';
import { channelNameProblem } from './channel-name.js';
import type { ResolvedAuth, ResolvedServing } from './sse-options.js';
import { StreamHub, type StartPoint } from './stream-hub.js';
import { isSignedToken, verifySubscriberToken } from './subscriber-token.js';

/** The parts of an HTTP request a subscription depends on, whatever the framework. */
export interface SubscriptionRequest {
  readonly method: string;
  /** Path and query, e.g. `/events?channel=orders`. */
  readonly url: string;
  readonly authorization: string | undefined;
  readonly lastEventId: string | undefined;
  readonly origin: string | undefined;
}

/** Either a plain response (error, preflight) or the go-ahead to open a stream. */
export type SubscriptionDecision =
  | { kind: 'respond'; status: number; headers: Record<string, string>; body: string }
  | { kind: 'stream'; headers: Record<string, string>; channels: ReadonlySet<string> | undefined; start: StartPoint };

const allowedParameters = new Set(['channel', 'lastEventId', 'token']);

export interface DecisionContext {
  readonly serving: ResolvedServing;
  readonly hub: StreamHub;
  readonly replay: number;
  readonly maxSubscribers: number;
  /** Path the standalone server answers on; handlers mounted by the user take any path. */
  readonly path: string | undefined;
}

export function decideSubscription(request: SubscriptionRequest, context: DecisionContext): SubscriptionDecision {
  const cors = corsHeaders(request.origin, context.serving.corsOrigins);
  const respond = (status: number, error: string, message: string, extra: Record<string, string> = {}): SubscriptionDecision => ({
    kind: 'respond',
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...cors, ...extra },
    body: JSON.stringify({ error, message }),
  });

  let url: URL;
  try {
    url = new URL(request.url, 'http://stream.invalid');
  } catch {
    return respond(400, 'bad_request', 'the request URL cannot be parsed');
  }
  if (context.path !== undefined && url.pathname !== context.path) {
    return respond(404, 'not_found', `the stream is served at ${context.path}`);
  }
  if (request.method === 'OPTIONS') {
    if (request.origin !== undefined && !('access-control-allow-origin' in cors)) return respond(403, 'forbidden', `origin ${request.origin} is not allowed`);
    return {
      kind: 'respond',
      status: 204,
      headers: { ...cors, 'access-control-allow-methods': 'GET', 'access-control-allow-headers': 'Authorization, Last-Event-ID, Cache-Control', 'access-control-max-age': '600' },
      body: '',
    };
  }
  if (request.method !== 'GET') return respond(405, 'method_not_allowed', 'subscribe with GET', { allow: 'GET, OPTIONS' });
  if (context.hub.isClosed) return respond(503, 'unavailable', 'the stream is closed');

  const unknown = [...new Set(url.searchParams.keys())].filter((key) => !allowedParameters.has(key));
  if (unknown.length > 0) return respond(400, 'bad_request', `unknown query parameter(s) ${unknown.map((key) => JSON.stringify(key)).join(', ')} (known: channel, lastEventId, token)`);
  for (const single of ['lastEventId', 'token']) {
    if (url.searchParams.getAll(single).length > 1) return respond(400, 'bad_request', `query parameter "${single}" given more than once`);
  }
  let requested: Set<string> | undefined;
  const channelValues = url.searchParams.getAll('channel');
  if (channelValues.length > 0) {
    requested = new Set();
    for (const channel of channelValues) {
      const problem = channelNameProblem(channel);
      if (problem) return respond(400, 'bad_request', `query parameter "channel" ${JSON.stringify(channel.slice(0, 140))}: ${problem}`);
      requested.add(channel);
    }
  }
  const fromHeader = request.lastEventId !== undefined && request.lastEventId !== '';
  const lastEventId = fromHeader ? request.lastEventId : url.searchParams.get('lastEventId') ?? undefined;
  if (lastEventId !== undefined && !StreamHub.isWellFormedId(lastEventId)) {
    const where = fromHeader ? 'header Last-Event-ID' : 'query parameter "lastEventId"';
    return respond(400, 'bad_request', `${where} ${JSON.stringify(lastEventId.slice(0, 80))} is not an id this stream issues (expected <stream>-<sequence>, as sent in the "id" field)`);
  }

  let channels = requested;
  if (context.serving.auth !== undefined) {
    const verdict = authenticate(request.authorization, url.searchParams.get('token') ?? undefined, context.serving.auth);
    if (!verdict.ok) {
      return respond(401, 'unauthorized', verdict.reason, { 'www-authenticate': `Bearer realm="egress-sse", error="invalid_token"` });
    }
    if (verdict.channels !== undefined) {
      const allowed = new Set(verdict.channels);
      if (requested === undefined) {
        channels = allowed;
      } else {
        const forbidden = [...requested].filter((channel) => !allowed.has(channel));
        if (forbidden.length > 0) {
          return respond(403, 'forbidden', `the token does not allow channel(s) ${forbidden.map((channel) => JSON.stringify(channel)).join(', ')}`);
        }
      }
    }
  }
  if (context.hub.subscriberCount >= context.maxSubscribers) {
    return respond(503, 'unavailable', `the stream has its maximum of ${context.maxSubscribers} subscribers; retry later`, { 'retry-after': '5' });
  }

  return {
    kind: 'stream',
    headers: {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      // Keeps nginx and similar proxies from buffering the stream.
      'x-accel-buffering': 'no',
      ...cors,
    },
    channels,
    start: lastEventId === undefined ? { kind: 'recent', count: context.replay } : { kind: 'after', lastEventId },
  };
}

function corsHeaders(origin: string | undefined, allowed: '*' | ReadonlySet<string>): Record<string, string> {
  if (allowed === '*') return { 'access-control-allow-origin': '*' };
  if (origin !== undefined && allowed.has(origin)) return { 'access-control-allow-origin': origin, vary: 'Origin' };
  return allowed.size > 0 ? { vary: 'Origin' } : {};
}

type AuthVerdict = { ok: true; channels: readonly string[] | undefined } | { ok: false; reason: string };

function authenticate(authorization: string | undefined, queryToken: string | undefined, auth: ResolvedAuth): AuthVerdict {
  if (authorization !== undefined) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (!match) return { ok: false, reason: 'the Authorization header must be "Bearer <token>"' };
    const token = match[1]!;
    if (isSignedToken(token)) return verifySigned(token, auth);
    const found = auth.tokens.find((entry) => sameSecret(entry.token, token));
    return found ? { ok: true, channels: found.channels } : { ok: false, reason: 'unknown token' };
  }
  if (queryToken !== undefined) {
    if (isSignedToken(queryToken)) return verifySigned(queryToken, auth);
    // A static token in a URL ends up in access logs and browser history, so it is refused there.
    return { ok: false, reason: 'the "token" query parameter takes only signed tokens (createSubscriberToken); send static tokens in the Authorization header' };
  }
  return { ok: false, reason: 'missing token: send "Authorization: Bearer <token>" or a signed token in the "token" query parameter' };
}

function verifySigned(token: string, auth: ResolvedAuth): AuthVerdict {
  if (auth.secrets.length === 0) return { ok: false, reason: 'signed tokens are not accepted by this stream' };
  return verifySubscriberToken(token, auth.secrets);
}

function sameSecret(expected: string, given: string): boolean {
  // Hashing first gives equal lengths, so the comparison time says nothing about the token.
  const digest = (value: string) => createHash('sha256').update(value).digest();
  return timingSafeEqual(digest(expected), digest(given));
}
