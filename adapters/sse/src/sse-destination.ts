import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { defineDestination, silentLogger, type Destination, type Logger } from '@egress/core';
import { createFetchHandler, type FetchSseHandler } from './fetch-handler.js';
import { createNodeHandler, type NodeSseHandler, type StreamSettings } from './node-handler.js';
import { sseInputSchema, type SseInput, type SsePayload } from './sse-input.js';
import { resolveServing, resolveSseOptions, type ResolvedServing, type SseOptions, type SseServeOptions } from './sse-options.js';
import { StreamHub } from './stream-hub.js';
import type { DecisionContext } from './subscription-request.js';

/** Where `listen()` is serving. */
export interface SseAddress {
  readonly host: string;
  readonly port: number;
  /** The stream's URL, e.g. `http://127.0.0.1:8080/`. */
  readonly url: string;
}

/** The request handlers of a stream. */
export interface SseHandlers {
  /** For node:http, Express (`app.get(path, handler)`) and Fastify (`reply.hijack()` then `handler(request.raw, reply.raw)`). */
  readonly handler: NodeSseHandler;
  /** For fetch-style frameworks such as Hono: `(request: Request) => Response`. */
  readonly fetch: FetchSseHandler;
}

/** The `sse` destination together with the stream it publishes to. */
export interface SseDestination extends Destination<'sse', SseInput, SsePayload>, SseHandlers {
  /** Serves the stream on its own HTTP server at `options.path`; closed by `stop()`. */
  listen(port: number, host?: string): Promise<SseAddress>;
  /** Subscribers connected now. */
  readonly subscriberCount: number;
}

const streamInternals = new WeakMap<object, { context: Omit<DecisionContext, 'serving' | 'path'>; settings: StreamSettings; serving: ResolvedServing }>();

/**
 * Publishes `$send.sse({ channel, payload })` to a server-sent-events stream. Subscribers get the
 * most recent events, then live ones, and resume by `Last-Event-ID` after a reconnect.
 */
export function sse(options: SseOptions = {}): SseDestination {
  const resolved = resolveSseOptions(options);
  const hub = new StreamHub({
    windowEvents: resolved.windowEvents,
    windowBytes: resolved.windowBytes,
    dedupeEvents: Math.max(resolved.windowEvents, 10_000),
    keepaliveInterval: resolved.keepalive,
    coalesce: resolved.coalesce,
  });
  let logger: Logger = silentLogger;
  const settings: StreamSettings = { subscriberBuffer: resolved.subscriberBuffer, reconnectDelay: resolved.reconnectDelay, logger: () => logger };
  const baseContext = { hub, replay: resolved.replay, maxSubscribers: resolved.maxSubscribers };
  const mounted: DecisionContext = { ...baseContext, serving: resolved, path: undefined };
  const servers = new Set<Server>();

  const destination = defineDestination({
    name: 'sse',
    input: sseInputSchema,
    defaults: {
      // Publishing is an in-memory fan-out: large batches cost nothing, waiting would only add latency.
      batch: { maxEvents: 1000, maxDelay: 0 },
      retry: { maxAttempts: 5, initialDelay: 100, maxDelay: 5000 },
      ordering: 'fifo',
      timeout: '5s',
    },
    // Every subscriber's buffer and the replay window hold the payload: it stays modest.
    limits: { maxEvents: 10_000, maxDepth: 64, maxInputBytes: 4 * 1024 * 1024 },
    partition: (payload) => payload.channel,
    secrets: () => [...(resolved.auth?.tokens.map((entry) => entry.token) ?? []), ...(resolved.auth?.secrets ?? [])],
    async deliver(batch) {
      hub.publish(batch.events.map((event) => ({ eventId: event.id, channel: event.payload.channel, json: JSON.stringify(event.payload.payload) })));
    },
    start(context) {
      logger = context.logger;
    },
    async stop() {
      hub.close();
      await Promise.all([...servers].map(closeServer));
      servers.clear();
    },
    async health() {
      return { ok: !hub.isClosed, message: hub.isClosed ? 'stream closed' : `${hub.subscriberCount} subscriber(s)` };
    },
  });

  const handlers = {
    handler: createNodeHandler(mounted, settings),
    fetch: createFetchHandler(mounted, settings),
    async listen(port: number, host?: string): Promise<SseAddress> {
      const standalone = createNodeHandler({ ...baseContext, serving: resolved, path: resolved.path }, settings);
      const server = createServer(standalone);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve();
        });
      });
      servers.add(server);
      const address = server.address() as AddressInfo;
      const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      return { host: address.address, port: address.port, url: `http://${shownHost}:${address.port}${resolved.path}` };
    },
  };
  const result = Object.assign(destination, handlers);
  Object.defineProperty(result, 'subscriberCount', { get: () => hub.subscriberCount, enumerable: true });
  streamInternals.set(result, { context: baseContext, settings, serving: resolved });
  return result as SseDestination;
}

/**
 * Handlers for the same stream with their own authentication or CORS, e.g. one for browsers taking
 * signed tokens beside an internal one taking static tokens. Options left out keep the destination's.
 */
export function createSseHandler(destination: SseDestination, options: SseServeOptions = {}): SseHandlers {
  const internals = streamInternals.get(destination);
  if (internals === undefined) throw new TypeError('createSseHandler expects a destination created by sse()');
  const given = resolveServing(options, 'sse handler');
  // An option left out keeps the destination's setting, so a handler never opens up by omission.
  const serving: ResolvedServing = {
    auth: options.auth !== undefined ? given.auth : internals.serving.auth,
    corsOrigins: options.corsOrigins !== undefined ? given.corsOrigins : internals.serving.corsOrigins,
  };
  const context: DecisionContext = { ...internals.context, serving, path: undefined };
  return { handler: createNodeHandler(context, internals.settings), fetch: createFetchHandler(context, internals.settings) };
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    // Subscribers were ended by the hub; idle keep-alive sockets would otherwise hold close() open.
    server.closeAllConnections();
  });
}
