// What the outbox tests share: an HTTP sink that counts what arrives, the destination that
// delivers there, and Egress instances on a store whose workers learn of work only through LISTEN.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createEgress, defineDestination, RetryableError, silentLogger } from '@egress/core';
import { z } from 'zod';
import { postgresStore } from '../../src/index.js';

/** Receives deliveries and counts the arrivals of each order number. */
export function startSink() {
  const arrivals = new Map<number, number>();
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const orders = JSON.parse(Buffer.concat(chunks).toString('utf8')) as number[];
      for (const order of orders) arrivals.set(order, (arrivals.get(order) ?? 0) + 1);
      response.end('ok');
    });
  });
  return {
    arrivals,
    listen: () => new Promise<string>((done) => server.listen(0, '127.0.0.1', () => done(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`))),
    close: () => new Promise<void>((done) => server.close(() => done())),
  };
}

export function orderDestination(sinkUrl: string) {
  return defineDestination({
    name: 'orders',
    input: z.strictObject({ order: z.number().int() }),
    defaults: { batch: { maxEvents: 10, maxDelay: 0 }, concurrency: 2, timeout: 5000, retry: { initialDelay: 20, maxDelay: 200 } },
    async deliver(batch, { signal }) {
      const response = await fetch(sinkUrl, { method: 'POST', body: JSON.stringify(batch.events.map((event) => event.payload.order)), signal });
      await response.arrayBuffer();
      if (!response.ok) throw new RetryableError(`sink answered ${response.status}`);
    },
  });
}

export interface OutboxEgressOptions {
  connectionString: string;
  /** The application's schema: the queue's tables go beside its own, named with the prefix `egress_`. */
  schema: string;
  sinkUrl: string;
  role: 'producer' | 'worker';
}

/**
 * A producer, or a worker that hears of new work only through LISTEN/NOTIFY: its store polls once
 * an hour, so an event it delivers within a test was announced by a notification.
 */
export function outboxEgress(options: OutboxEgressOptions) {
  return createEgress({
    role: options.role,
    destinations: [orderDestination(options.sinkUrl)],
    store: postgresStore({ connectionString: options.connectionString, schema: options.schema, tablePrefix: 'egress_', pollInterval: '1h' }),
    logger: silentLogger,
  });
}

export async function until(condition: () => boolean | Promise<boolean>, what: string, timeout = 30_000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
