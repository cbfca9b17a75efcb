import { createParser, type EventSourceMessage } from 'eventsource-parser';

/** One event received from an Egress SSE stream. */
export interface SseEvent<Data = unknown> {
  /** The stream's id for the event; pass it as `lastEventId` to resume after it. */
  readonly id: string;
  /** The channel (SSE `event` field); `egress-reset` when the stream could not resume where asked. */
  readonly channel: string;
  /** The payload, parsed from JSON (the raw text when it is not JSON). */
  readonly data: Data;
}

export interface SubscribeOptions {
  /** Channels to receive; every channel the token allows when not given. */
  channels?: readonly string[];
  /** A static or signed token, sent as `Authorization: Bearer <token>`. */
  token?: string;
  /** Start right after this id instead of with the most recent events. */
  lastEventId?: string;
  /** Ends the iteration when aborted. */
  signal?: AbortSignal;
  /** Reconnect and resume after the stream ends or the network fails (default true). */
  reconnect?: boolean | SubscribeReconnectOptions;
  /** Reconnect when nothing, not even a keepalive, arrived for this many milliseconds (default 45,000). */
  idleTimeout?: number;
  /** Extra request headers. */
  headers?: Record<string, string>;
  /** The fetch implementation (default: the global `fetch`). */
  fetch?: typeof fetch;
}

export interface SubscribeReconnectOptions {
  /** First delay in milliseconds when the server suggests none (default 1,000). */
  initialDelay?: number;
  /** Largest delay between attempts in milliseconds (default 30,000). */
  maxDelay?: number;
  /** Failed attempts in a row before giving up (default unlimited). */
  maxAttempts?: number;
}

const subscribeErrorBrand = Symbol.for('egress.sse.subscribe-error');

/** The stream refused the subscription (400, 401, 403...) or could not be reached within the allowed attempts. */
export class SseSubscribeError extends Error {
  private readonly [subscribeErrorBrand] = true;
  override readonly name = 'SseSubscribeError';

  constructor(
    message: string,
    /** The HTTP status, when the server answered. */
    readonly status: number | undefined,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  static isInstance(error: unknown): error is SseSubscribeError {
    return typeof error === 'object' && error !== null && subscribeErrorBrand in error;
  }
}

/** Statuses after which trying again cannot help. */
const finalStatuses = new Set([400, 401, 403, 404, 405, 410]);

/**
 * Subscribes to an Egress SSE stream: an async iterator of events that reconnects and resumes by
 * id after a dropped connection. Breaking out of the loop or aborting `signal` closes it.
 */
export async function* subscribe<Data = unknown>(url: string | URL, options: SubscribeOptions = {}): AsyncGenerator<SseEvent<Data>, void, undefined> {
  const fetchImplementation = options.fetch ?? globalThis.fetch;
  const reconnect = options.reconnect ?? true;
  const backoff = { initialDelay: 1000, maxDelay: 30_000, maxAttempts: Number.POSITIVE_INFINITY, ...(typeof reconnect === 'object' ? reconnect : {}) };
  const idleTimeout = options.idleTimeout ?? 45_000;
  const target = new URL(url);
  for (const channel of options.channels ?? []) target.searchParams.append('channel', channel);

  let lastEventId = options.lastEventId;
  let serverDelay: number | undefined;
  let failures = 0;

  while (!options.signal?.aborted) {
    const connection = new AbortController();
    const abortConnection = () => connection.abort();
    options.signal?.addEventListener('abort', abortConnection, { once: true });
    let idleTimer: NodeJS.Timeout | undefined;
    const touch = () => {
      clearTimeout(idleTimer);
      idleTimer = setTimeout(abortConnection, idleTimeout);
      idleTimer.unref?.();
    };
    let failure: unknown;
    try {
      const headers: Record<string, string> = { accept: 'text/event-stream', 'cache-control': 'no-cache', ...options.headers };
      if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
      if (lastEventId !== undefined) headers['last-event-id'] = lastEventId;
      touch();
      const response = await fetchImplementation(target, { headers, signal: connection.signal });
      if (!response.ok) {
        const message = await describeRefusal(response);
        if (finalStatuses.has(response.status)) throw new SseSubscribeError(`subscription refused with ${response.status}: ${message}`, response.status);
        throw new SseSubscribeError(`stream answered ${response.status}: ${message}`, response.status);
      }
      if (!response.headers.get('content-type')?.startsWith('text/event-stream') || response.body === null) {
        throw new SseSubscribeError(`expected a text/event-stream response, got ${response.headers.get('content-type') ?? 'no content type'}`, response.status);
      }
      failures = 0;
      const received: EventSourceMessage[] = [];
      const parser = createParser({
        onEvent: (message) => received.push(message),
        onRetry: (milliseconds) => {
          serverDelay = milliseconds;
        },
      });
      const decoder = new TextDecoder();
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        touch();
        parser.feed(decoder.decode(chunk, { stream: true }));
        while (received.length > 0) {
          const message = received.shift()!;
          if (message.id !== undefined) lastEventId = message.id;
          yield { id: message.id ?? '', channel: message.event ?? 'message', data: parseData(message.data) as Data };
        }
      }
    } catch (error) {
      if (SseSubscribeError.isInstance(error) && error.status !== undefined && finalStatuses.has(error.status)) throw error;
      failure = error;
    } finally {
      clearTimeout(idleTimer);
      options.signal?.removeEventListener('abort', abortConnection);
      connection.abort();
    }
    if (options.signal?.aborted) return;
    if (reconnect === false) {
      if (failure !== undefined) throw failure instanceof SseSubscribeError ? failure : new SseSubscribeError(`stream failed: ${describe(failure)}`, undefined, { cause: failure });
      return;
    }
    if (failure !== undefined) {
      failures += 1;
      if (failures >= backoff.maxAttempts) {
        throw new SseSubscribeError(`stream unreachable after ${failures} attempt(s): ${describe(failure)}`, SseSubscribeError.isInstance(failure) ? failure.status : undefined, { cause: failure });
      }
    }
    const base = serverDelay ?? backoff.initialDelay;
    const delay = failures === 0 ? base : Math.min(backoff.maxDelay, base * 2 ** (failures - 1)) * (0.5 + Math.random() / 2);
    await sleep(delay, options.signal);
  }
}

function parseData(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

async function describeRefusal(response: Response): Promise<string> {
  const text = (await response.text().catch(() => '')).slice(0, 500);
  try {
    const body = JSON.parse(text) as { message?: unknown };
    if (typeof body.message === 'string') return body.message;
  } catch {
    // Not JSON: show the text itself.
  }
  return text || response.statusText;
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const cause = error.cause instanceof Error ? ` (${error.cause.message})` : '';
    return `${error.message}${cause}`;
  }
  return String(error);
}

function sleep(milliseconds: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, milliseconds);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
