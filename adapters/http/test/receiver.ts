import { afterAll, beforeAll, beforeEach } from 'vitest';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { createBatchId, createEventId, silentLogger, type Batch, type DeliveryContext } from '@egress/core';
import { httpInputSchema, type HttpInput, type HttpPayload } from '../src/http-input-schema.js';

/** A request as the test server saw it. */
export interface ReceivedRequest {
  method: string;
  /** Path and query as sent. */
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** The client's port: the same port on two requests means the connection was reused. */
  remotePort: number;
}

export type Handler = (request: ReceivedRequest, response: ServerResponse, raw: IncomingMessage) => unknown;

export interface Receiver {
  /** `http://127.0.0.1:<port>` */
  readonly origin: string;
  readonly port: number;
  readonly requests: ReceivedRequest[];
  /** Replaces how the server answers; the default is 200 `ok`. */
  answer(handler: Handler): void;
  close(): Promise<void>;
}

const answerOk: Handler = (_request, response) => {
  response.end('ok');
};

/** A real node:http server on loopback that records every request it receives. */
export async function startReceiver(handler: Handler = answerOk): Promise<Receiver> {
  let current = handler;
  const requests: ReceivedRequest[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer(async (raw, response) => {
    const chunks: Buffer[] = [];
    for await (const chunk of raw) chunks.push(chunk as Buffer);
    const request: ReceivedRequest = { method: raw.method ?? '', url: raw.url ?? '', headers: raw.headers, body: Buffer.concat(chunks), remotePort: raw.socket.remotePort ?? 0 };
    requests.push(request);
    try {
      await current(request, response, raw);
    } catch {
      if (!response.headersSent) response.writeHead(500);
      response.end();
    }
  });
  server.on('connect', (raw: IncomingMessage, socket: Socket) => {
    requests.push({ method: raw.method ?? '', url: raw.url ?? '', headers: raw.headers, body: Buffer.alloc(0), remotePort: socket.remotePort ?? 0 });
    socket.end('HTTP/1.1 200 Connection Established\r\n\r\n');
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    port,
    requests,
    answer(next) {
      current = next;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * The receiver a test file shares: started before its first test, emptied before each (and set
 * back to answering 200 unless `keepAnswer`), closed after the last, after `stop` has run.
 */
export function useReceiver(options: { keepAnswer?: boolean; stop?: () => unknown } = {}): Receiver {
  let started: Receiver | undefined;
  const current = (): Receiver => {
    if (!started) throw new Error('the receiver starts in beforeAll');
    return started;
  };
  beforeAll(async () => {
    started = await startReceiver();
  });
  beforeEach(() => {
    current().requests.length = 0;
    if (!options.keepAnswer) current().answer(answerOk);
  });
  afterAll(async () => {
    await options.stop?.();
    await started?.close();
  });
  return {
    get origin() {
      return current().origin;
    },
    get port() {
      return current().port;
    },
    get requests() {
      return current().requests;
    },
    answer: (handler) => current().answer(handler),
    close: () => current().close(),
  };
}

/** Validates inputs as `$send.http` would and wraps them in a batch, as core hands it to `deliver`. */
export function batchOf(inputs: readonly HttpInput[], attempt = 1): Batch<HttpPayload> {
  const events = inputs.map((input) => ({ id: createEventId(), payload: httpInputSchema.parse(input), attempt, sentAt: Date.now() }));
  return { id: createBatchId('http', events.map((event) => event.id)), destination: 'http', partition: 'test', attempt, events };
}

export function deliveryContext(signal: AbortSignal = new AbortController().signal): DeliveryContext {
  return { signal, logger: silentLogger };
}

/** Resolves with what a promise rejected with; fails if it resolved. */
export async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection, but the promise resolved');
}
