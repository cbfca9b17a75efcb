import type { IncomingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import { PermanentError, RetryableError, type DeliveryContext } from '@egress/core';
import type { Dispatcher } from 'undici';
import { AddressRefusedError } from './address-guard.js';
import { WatchedRequest, watchInterval, type DeadlineWatch } from './deadline-watch.js';
import { scrubSecrets } from './redaction.js';
import type { PreparedRequest } from './request-builder.js';

/** How many bytes of a response body are kept, by outcome; the rest is read and dropped. */
export interface BodyLimits {
  /** For a 2xx answer. */
  readonly success: number;
  /** For any other answer. */
  readonly failure: number;
}

/** What a response reader sees once the whole response has arrived. */
export interface ReceivedResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** The start of the body as text, up to the limit for its status. */
  readonly bodyStart: string;
}

/** Turns a complete response into the exchange's result, or throws the failure it means. */
export type ResponseReader<T> = (response: ReceivedResponse, request: PreparedRequest) => T;

// Until an answer arrives; shared, since a request that fails before one never needs its own.
const noHeaders: IncomingHttpHeaders = Object.freeze({});

// Bodies larger than this are not read to the end: closing the connection costs less.
const drainLimit = 1024 * 1024;

class RequestTimeout extends Error {
  override readonly name = 'RequestTimeout';
}

class BodyTooLarge extends Error {
  override readonly name = 'BodyTooLarge';
}

/**
 * One request and its response, as an undici dispatch handler. The body is read chunk by chunk as
 * it arrives and only its bounded start is kept, so no stream is built per response. The request
 * settles once: with the reader's result after the last byte, or with a failure when the
 * connection fails, the deadline passes (connect to last byte) or the delivery is aborted.
 */
export class HttpExchange<T> extends WatchedRequest implements Dispatcher.DispatchHandler {
  readonly result: Promise<T>;
  private resolve!: (value: T) => void;
  private reject!: (reason: unknown) => void;
  private readonly startedAt = performance.now();
  private readonly deadline: number;
  private controller: Dispatcher.DispatchController | undefined;
  private settled = false;
  /** Why the exchange was ended early, for a request undici starts only afterwards. */
  private abortReason: Error | undefined;
  private status = 0;
  private headers: IncomingHttpHeaders = noHeaders;
  private keepLimit = 0;
  /** Made only for a body worth keeping: most keep nothing. */
  private kept: Buffer[] | undefined;
  private keptBytes = 0;
  private receivedBytes = 0;

  constructor(
    readonly request: PreparedRequest,
    private readonly context: DeliveryContext,
    private readonly limits: BodyLimits,
    private readonly read: ResponseReader<T>,
    private readonly watch: DeadlineWatch,
  ) {
    super();
    this.deadline = this.startedAt + request.timeout;
    this.result = new Promise<T>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    watch.add(this);
  }

  /**
   * Called by the watch. The delivery's signal is read only once a request has been in flight for
   * a whole interval: reading it makes the engine create an abort controller, which a request that
   * ends sooner never needs.
   */
  check(now: number): void {
    if (now >= this.deadline) {
      this.fail(new RetryableError(`${where(this.request)} timed out after ${this.request.timeout} ms (connect to last byte)`), new RequestTimeout());
    } else if (now - this.startedAt >= watchInterval) {
      const signal = this.context.signal;
      if (signal.aborted) {
        const reason: unknown = signal.reason;
        this.fail(new RetryableError(`${where(this.request)} aborted: ${scrubSecrets(describeCause(reason), this.request.secrets)}`, { cause: reason }), reason instanceof Error ? reason : new Error(describeCause(reason)));
      }
    }
  }

  /** Settles with a failure undici reported, or one raised before the request could be dispatched. */
  failWith(error: unknown): void {
    this.fail(classifyFailure(error, this.request));
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    // A redirect, or undici retrying a request whose connection failed under it, starts again
    // with a new controller; only the last response counts.
    this.controller = controller;
    this.status = 0;
    this.kept = undefined;
    this.keptBytes = 0;
    this.receivedBytes = 0;
    // Ended before undici got to it (while queued or connecting): it must not be sent.
    if (this.abortReason) controller.abort(this.abortReason);
  }

  onRequestUpgrade(_controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders, socket: Duplex): void {
    // Only CONNECT upgrades; the tunnel is not used, only the answer to opening it.
    socket.destroy();
    this.status = statusCode;
    this.headers = headers;
    this.finish();
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    // 1xx answers are interim; the final one follows on the same request.
    if (statusCode < 200) return;
    this.status = statusCode;
    this.headers = headers;
    this.keepLimit = statusCode < 300 ? this.limits.success : this.limits.failure;
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.settled) return;
    this.receivedBytes += chunk.length;
    if (this.keptBytes < this.keepLimit) {
      const part = chunk.length <= this.keepLimit - this.keptBytes ? chunk : chunk.subarray(0, this.keepLimit - this.keptBytes);
      (this.kept ??= []).push(part);
      this.keptBytes += part.length;
    }
    if (this.receivedBytes > drainLimit) {
      this.finish();
      controller.abort(new BodyTooLarge(`response body over ${drainLimit} bytes`));
    }
  }

  onResponseEnd(): void {
    this.finish();
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    // After the exchange settled, undici reports the abort that settling caused; it changes nothing.
    if (this.settled) return;
    this.fail(classifyFailure(error, this.request));
  }

  private finish(): void {
    if (this.settled) return;
    this.settle();
    const kept = this.kept;
    const bodyStart = kept === undefined ? '' : kept.length === 1 ? kept[0]!.toString('utf8') : Buffer.concat(kept).toString('utf8');
    try {
      this.resolve(this.read({ status: this.status, headers: this.headers, bodyStart }, this.request));
    } catch (error) {
      this.reject(error);
    }
  }

  private fail(error: unknown, abortWith?: Error): void {
    if (this.settled) return;
    this.settle();
    this.reject(error);
    this.abortReason = abortWith;
    if (abortWith) this.controller?.abort(abortWith);
  }

  private settle(): void {
    this.settled = true;
    this.watch.delete(this);
  }
}

function where(request: PreparedRequest): string {
  return `[http] ${request.method} ${request.target.origin}`;
}

function findRefusal(error: unknown): AddressRefusedError | undefined {
  for (let current = error, depth = 0; current && depth < 5; current = (current as { cause?: unknown }).cause, depth++) {
    if (current instanceof AddressRefusedError) return current;
  }
  return undefined;
}

/** Network failures are retryable; a guard refusal or a request undici cannot form is not. */
function classifyFailure(error: unknown, request: PreparedRequest): unknown {
  if (RetryableError.isInstance(error) || PermanentError.isInstance(error)) return error;
  const refusal = findRefusal(error);
  if (refusal) return new PermanentError(`${where(request)} refused: ${refusal.message}`, { cause: refusal });
  const code = (error as { code?: unknown } | null)?.code;
  const detail = scrubSecrets(describeCause(error), request.secrets);
  if (code === 'UND_ERR_INVALID_ARG' || code === 'ERR_INVALID_URL' || code === 'ERR_INVALID_HTTP_TOKEN' || code === 'ERR_INVALID_CHAR') {
    return new PermanentError(`${where(request)} cannot be sent: ${detail}`, { cause: error });
  }
  return new RetryableError(`${where(request)} failed: ${typeof code === 'string' && !detail.includes(code) ? `${code} ` : ''}${detail}`, { cause: error });
}

function describeCause(cause: unknown): string {
  if (cause instanceof Error) return cause.message || cause.name;
  return String(cause);
}
