import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createEgress, memoryStore, silentLogger, type QueuedEvent, type Store } from '@egress/core';
import { http } from '@egress/http';
import type { SendOf } from '@egress/middleware';

declare module '@egress/middleware' {
  interface Register {
    egress: TestEgress;
  }
}

/** What the application sends: one event from the handler and one from a helper it calls. */
export interface OrderEvent {
  tag: string;
  step: 'handler' | 'helper';
}

/** A node:http receiver standing for the webhook endpoint the events go to. */
export async function startReceiver() {
  const received: OrderEvent[] = [];
  const server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      received.push(JSON.parse(body) as OrderEvent);
      response.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`,
    /** The steps that arrived for one request, in a stable order. */
    steps: (tag: string) => received.filter((event) => event.tag === tag).map((event) => event.step).sort(),
    count: () => received.length,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/**
 * The memory store, watched: which events it took (to see that a commit landed before the answer
 * arrived), and a switch that makes it refuse every write, as a full disk or a lost database would.
 */
export function watchedStore() {
  const inner = memoryStore();
  const control = { refusing: false, enqueued: [] as QueuedEvent[] };
  const store = new Proxy(inner, {
    get(target, property) {
      const value = Reflect.get(target, property, target) as unknown;
      if (property === 'enqueue') {
        return async (events: readonly QueuedEvent[]) => {
          if (control.refusing) throw new Error('the disk is full');
          await inner.enqueue(events);
          control.enqueued.push(...events);
        };
      }
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  }) as Store;
  return {
    store,
    control,
    /** How many events of one request the store holds or held. */
    enqueuedFor: (tag: string) => control.enqueued.filter((event) => event.payload.includes(`"tag":"${tag}"`)).length,
  };
}

export function createTestEgress(store: Store) {
  return createEgress({ store, destinations: [http()], logger: silentLogger });
}

export type TestEgress = ReturnType<typeof createTestEgress>;
export type TestSend = SendOf<TestEgress>;

const pause = () => new Promise((resolve) => setTimeout(resolve, Math.floor(Math.random() * 4)));

/**
 * The application under test. `order` sends once through the `$send` it is given, waits (so that
 * concurrent requests interleave), then calls a helper that reaches `$send` only through
 * `egress.send`, the async context carrying the request's unit of work.
 */
export function createShop(egress: TestEgress, url: string) {
  function recordStep(tag: string): void {
    egress.send.http({ url, data: { tag, step: 'helper' } });
  }
  return {
    async order(send: TestSend, tag: string): Promise<void> {
      send.http({ url, data: { tag, step: 'handler' } });
      await pause();
      recordStep(tag);
    },
  };
}

export type Shop = ReturnType<typeof createShop>;
