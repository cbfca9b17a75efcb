import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '@egress/core';
import type { StreamHub, Subscriber } from './stream-hub.js';
import { openingBytes } from './stream-opening.js';
import { decideSubscription, type DecisionContext } from './subscription-request.js';

/** A node:http request handler; Express passes a third `next` argument, which is not needed. */
export type NodeSseHandler = (request: IncomingMessage, response: ServerResponse) => void;

export interface StreamSettings {
  readonly subscriberBuffer: number;
  readonly reconnectDelay: number;
  readonly logger: () => Logger;
}

export function createNodeHandler(context: DecisionContext, settings: StreamSettings): NodeSseHandler {
  return (request, response) => {
    const decision = decideSubscription(
      {
        method: request.method ?? 'GET',
        url: request.url ?? '/',
        authorization: request.headers.authorization,
        lastEventId: single(request.headers['last-event-id']),
        origin: request.headers.origin,
      },
      context,
    );
    if (decision.kind === 'respond') {
      response.writeHead(decision.status, decision.headers).end(decision.body);
      return;
    }
    // The body runs until the connection closes instead of in chunked framing: each write is then one
    // buffer, not four (size, CRLF, data, CRLF), and writes to subscribers are most of a large fan-out's cost.
    response.removeHeader('transfer-encoding');
    response.writeHead(200, { ...decision.headers, connection: 'close' });
    // Small frames must leave at once rather than wait for Nagle's algorithm.
    response.socket?.setNoDelay(true);
    const subscriber = new NodeSubscriber(response, decision.channels, settings, context.hub);
    const plan = context.hub.attach(subscriber, decision.start);
    subscriber.open(openingBytes(plan, settings.reconnectDelay));
    response.on('close', () => context.hub.detach(subscriber));
  };
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/**
 * Writes to a node:http response. `writableLength` counts what the response and its socket still
 * hold; once that passes the bound the subscriber is cut off instead of growing memory.
 */
class NodeSubscriber implements Subscriber {
  private gone = false;
  // The opening replay may be larger than the bound; it is tolerated until the socket drains once.
  private allowance: number;

  constructor(
    private readonly response: ServerResponse,
    readonly channels: ReadonlySet<string> | undefined,
    private readonly settings: StreamSettings,
    private readonly hub: StreamHub,
  ) {
    this.allowance = settings.subscriberBuffer;
    response.on('close', () => {
      this.gone = true;
    });
  }

  open(bytes: Uint8Array): void {
    this.allowance = this.settings.subscriberBuffer + bytes.byteLength;
    const reset = () => {
      this.allowance = this.settings.subscriberBuffer;
    };
    if (this.write(bytes) && this.response.writableLength <= this.settings.subscriberBuffer) reset();
    else this.response.once('drain', reset);
  }

  write(chunk: Uint8Array): boolean {
    if (this.gone) return false;
    this.response.write(chunk);
    if (this.response.writableLength > this.allowance) {
      this.gone = true;
      this.settings.logger().warn({ destination: 'sse', pendingBytes: this.response.writableLength, bound: this.settings.subscriberBuffer }, 'subscriber too slow: disconnected (it can resume by Last-Event-ID)');
      this.response.destroy();
      this.hub.detach(this);
      return false;
    }
    return true;
  }

  end(): void {
    this.gone = true;
    this.response.end();
  }
}
