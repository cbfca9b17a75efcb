import type { StreamHub, Subscriber } from './stream-hub.js';
import type { StreamSettings } from './node-handler.js';
import { openingBytes } from './stream-opening.js';
import { decideSubscription, type DecisionContext } from './subscription-request.js';

/** A fetch-style handler (Hono, Deno-style servers): takes a `Request`, returns a streaming `Response`. */
export type FetchSseHandler = (request: Request) => Response;

export function createFetchHandler(context: DecisionContext, settings: StreamSettings): FetchSseHandler {
  return (request) => {
    const decision = decideSubscription(
      {
        method: request.method,
        url: request.url,
        authorization: request.headers.get('authorization') ?? undefined,
        lastEventId: request.headers.get('last-event-id') ?? undefined,
        origin: request.headers.get('origin') ?? undefined,
      },
      context,
    );
    if (decision.kind === 'respond') {
      return new Response(decision.status === 204 ? null : decision.body, { status: decision.status, headers: decision.headers });
    }
    let subscriber: StreamSubscriber | undefined;
    const body = new ReadableStream<Uint8Array>(
      {
        start(controller) {
          subscriber = new StreamSubscriber(controller, decision.channels, settings, context.hub);
          const plan = context.hub.attach(subscriber, decision.start);
          subscriber.open(openingBytes(plan, settings.reconnectDelay));
          request.signal?.addEventListener('abort', () => subscriber?.end(), { once: true });
        },
        pull() {
          subscriber?.drained();
        },
        cancel() {
          subscriber?.cancelled();
        },
      },
      new ByteLengthQueuingStrategy({ highWaterMark: settings.subscriberBuffer }),
    );
    return new Response(body, { status: 200, headers: decision.headers });
  };
}

/** Enqueues into a `ReadableStream`; its queue size is the backlog the bound applies to. */
class StreamSubscriber implements Subscriber {
  private gone = false;
  private allowance: number;

  constructor(
    private readonly controller: ReadableStreamDefaultController<Uint8Array>,
    readonly channels: ReadonlySet<string> | undefined,
    private readonly settings: StreamSettings,
    private readonly hub: StreamHub,
  ) {
    this.allowance = settings.subscriberBuffer;
  }

  open(bytes: Uint8Array): void {
    this.allowance = this.settings.subscriberBuffer + bytes.byteLength;
    this.write(bytes);
  }

  /** The consumer asked for more: the queue is below its high-water mark again. */
  drained(): void {
    this.allowance = this.settings.subscriberBuffer;
  }

  write(chunk: Uint8Array): boolean {
    if (this.gone) return false;
    this.controller.enqueue(chunk);
    const queued = this.settings.subscriberBuffer - (this.controller.desiredSize ?? 0);
    if (queued > this.allowance) {
      this.settings.logger().warn({ destination: 'sse', pendingBytes: queued, bound: this.settings.subscriberBuffer }, 'subscriber too slow: disconnected (it can resume by Last-Event-ID)');
      this.gone = true;
      this.controller.error(new Error('subscriber too slow: disconnected'));
      this.hub.detach(this);
      return false;
    }
    return true;
  }

  end(): void {
    if (this.gone) return;
    this.gone = true;
    this.hub.detach(this);
    try {
      this.controller.close();
    } catch {
      // Already closed or errored by the consumer.
    }
  }

  cancelled(): void {
    this.gone = true;
    this.hub.detach(this);
  }
}
