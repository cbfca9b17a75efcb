import { EventEmitter } from 'node:events';
import { isIP } from 'node:net';
import { PermanentError, RetryableError } from '@egress/core';
import { Agent, buildConnector, interceptors, type Dispatcher } from 'undici';
import { AddressRefusedError, checkAddress, guardedLookup } from './address-guard.js';
import type { ResolvedHttpOptions } from './http-options.js';
import { scrubSecrets } from './redaction.js';
import type { PreparedRequest } from './request-builder.js';

/** What a response handler sees; its body must be consumed or dumped so the socket is reused. */
export interface ReceivedResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Dispatcher.ResponseData['body'] | undefined;
  /** The request's deadline; a body drained after it passed does not count as received. */
  readonly deadline: RequestDeadline;
}

// Bodies larger than this are not drained: closing the socket costs less than reading them.
const drainLimit = 1024 * 1024;

class RequestTimeout extends Error {
  override readonly name = 'RequestTimeout';
}

/**
 * One request's deadline (connect to last byte) joined with the delivery's abort signal. It has
 * the EventEmitter shape undici accepts as a signal, which costs a fraction of an AbortController
 * per request; undici destroys the request and its body when it fires.
 */
class RequestDeadline extends EventEmitter {
  aborted = false;
  reason: unknown = undefined;
  private readonly timer: NodeJS.Timeout;
  private readonly onDeliveryAbort = () => this.abort(this.delivery.reason);

  constructor(
    timeout: number,
    private readonly delivery: AbortSignal,
  ) {
    super();
    this.timer = setTimeout(() => this.abort(new RequestTimeout()), timeout);
    if (delivery.aborted) this.abort(delivery.reason);
    else delivery.addEventListener('abort', this.onDeliveryAbort, { once: true });
  }

  get timedOut(): boolean {
    return this.reason instanceof RequestTimeout;
  }

  private abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.emit('abort');
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.delivery.removeEventListener('abort', this.onDeliveryAbort);
  }
}

/**
 * One undici Agent per destination: a bounded keep-alive pool per origin, and, with the guard on,
 * a connector that checks the very address each socket is opened to.
 */
export class HttpClient {
  private agent: Agent | undefined;
  private redirecting: Dispatcher | undefined;

  constructor(private readonly options: ResolvedHttpOptions) {}

  private dispatchers(): { plain: Agent; redirecting: Dispatcher } {
    if (!this.agent) {
      const allow = this.options.guard;
      let connect: buildConnector.connector | undefined;
      if (allow) {
        const base = buildConnector({ lookup: guardedLookup(allow) } as buildConnector.BuildOptions);
        // An IP literal never reaches `lookup`, so it is checked here.
        connect = (connectOptions, callback) => {
          const host = connectOptions.hostname.replace(/^\[(.*)\]$/, '$1');
          const refusal = isIP(host) ? checkAddress(host, host, allow) : undefined;
          if (refusal) {
            callback(refusal, null);
            return;
          }
          base(connectOptions, callback);
        };
      }
      this.agent = new Agent({
        connections: this.options.connectionsPerOrigin,
        keepAliveTimeout: this.options.keepAliveTimeout,
        ...(connect ? { connect } : {}),
      });
      this.redirecting = this.options.maxRedirections > 0 ? this.agent.compose(interceptors.redirect({ maxRedirections: this.options.maxRedirections })) : this.agent;
    }
    return { plain: this.agent, redirecting: this.redirecting ?? this.agent };
  }

  /**
   * Sends one request and hands the response to `read`, all under one deadline that runs from
   * before the connect to the last byte read, and under the delivery's own abort signal.
   */
  async exchange<T>(request: PreparedRequest, signal: AbortSignal, read: (response: ReceivedResponse) => Promise<T>): Promise<T> {
    const deadline = new RequestDeadline(request.timeout, signal);
    try {
      const { plain, redirecting } = this.dispatchers();
      if (request.method === 'CONNECT') {
        const tunnel = await plain.connect({ origin: request.target.origin, path: request.target.path, headers: request.headers, signal: deadline });
        tunnel.socket.destroy();
        return await read({ status: tunnel.statusCode, headers: tunnel.headers, body: undefined, deadline });
      }
      const response = await redirecting.request({
        origin: request.target.origin,
        path: request.target.path,
        method: request.method,
        headers: request.headers,
        body: request.body,
        signal: deadline,
      });
      return await read({ status: response.statusCode, headers: response.headers, body: response.body, deadline });
    } catch (error) {
      throw classifyFailure(error, request, deadline);
    } finally {
      deadline.dispose();
    }
  }

  /** Lets in-flight requests finish, then closes every pooled connection. */
  async close(): Promise<void> {
    const agent = this.agent;
    this.agent = undefined;
    this.redirecting = undefined;
    await agent?.close();
  }
}

/** Reads and throws away a response body so its connection goes back to the pool. */
export async function discardBody(response: ReceivedResponse): Promise<void> {
  if (response.body) await response.body.dump({ limit: drainLimit });
  // dump() settles quietly when the deadline destroys the body; the response did not fully arrive.
  if (response.deadline.aborted) throw response.deadline.reason;
}

/** Reads the start of a body (up to `limit` bytes) and drains the rest. */
export async function readBodyStart(body: ReceivedResponse['body'], limit: number): Promise<string> {
  if (!body) return '';
  const kept: Buffer[] = [];
  let keptBytes = 0;
  let total = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (keptBytes < limit) {
      const part = chunk.subarray(0, limit - keptBytes);
      kept.push(part);
      keptBytes += part.length;
    }
    if (total > drainLimit) {
      body.destroy();
      break;
    }
  }
  return Buffer.concat(kept).toString('utf8');
}

function findRefusal(error: unknown): AddressRefusedError | undefined {
  for (let current = error, depth = 0; current && depth < 5; current = (current as { cause?: unknown }).cause, depth++) {
    if (current instanceof AddressRefusedError) return current;
  }
  return undefined;
}

/** Network failures are retryable; a guard refusal or a request undici cannot form is not. */
function classifyFailure(error: unknown, request: PreparedRequest, deadline: RequestDeadline): unknown {
  if (RetryableError.isInstance(error) || PermanentError.isInstance(error)) return error;
  const where = `[http] ${request.method} ${request.target.origin}`;
  if (deadline.aborted) {
    if (deadline.timedOut) {
      return new RetryableError(`${where} timed out after ${request.timeout} ms (connect to last byte)`, { cause: error });
    }
    return new RetryableError(`${where} aborted: ${scrubSecrets(describeCause(deadline.reason), request.secrets)}`, { cause: error });
  }
  const refusal = findRefusal(error);
  if (refusal) return new PermanentError(`${where} refused: ${refusal.message}`, { cause: refusal });
  const code = (error as { code?: unknown } | null)?.code;
  const detail = scrubSecrets(describeCause(error), request.secrets);
  if (code === 'UND_ERR_INVALID_ARG' || code === 'ERR_INVALID_URL' || code === 'ERR_INVALID_HTTP_TOKEN' || code === 'ERR_INVALID_CHAR') {
    return new PermanentError(`${where} cannot be sent: ${detail}`, { cause: error });
  }
  return new RetryableError(`${where} failed: ${typeof code === 'string' && !detail.includes(code) ? `${code} ` : ''}${detail}`, { cause: error });
}

function describeCause(cause: unknown): string {
  if (cause instanceof Error) return cause.message || cause.name;
  return String(cause);
}
