import { join } from 'node:path';
import type { AnyDestination, PolicyOptions } from '@egress/core';
import Database from 'better-sqlite3';
import { importOptional } from './optional-import.js';
import type { Order } from './demo-shop.js';
import { startHttpReceiver } from './http-receiver.js';
import { startS3Server } from './s3-server.js';
import { startSmtpReceiver } from './smtp-receiver.js';

/** One destination taking part in the demo, with the local stand-in that plays its sink. */
export interface DemoParticipant {
  /** The `$send` name, also the adapter's type. */
  readonly name: string;
  readonly destination: AnyDestination;
  /** Fast retries and short batch windows, so the demo finishes in seconds. */
  readonly policy: PolicyOptions;
  /** The `$send` inputs one order produces. */
  inputs(order: Order): unknown[];
  /** What arrived at the stand-in, as facts for `--json` and tests. */
  arrived(): Promise<Record<string, unknown>>;
  /** The same, in a few lines for people. */
  describe(): Promise<string[]>;
  /** Waits until what was delivered is visible at the stand-in (a stream subscriber lags its server a little). */
  settle?(delivered: number): Promise<void>;
  close(): Promise<void>;
}

export interface DemoContext {
  /** A fresh temporary folder for files the stand-ins need. */
  directory: string;
}

type Factory = (options?: Record<string, unknown>) => AnyDestination;
type Setup = (factory: Factory, context: DemoContext) => Promise<DemoParticipant>;

/** Orders whose webhook fails once with 503 (then succeeds on retry), and the one that is refused for good. */
export const flakyOrderEvery = 6;
export const refusedOrderNumber = 1013;

const httpSetup: Setup = async (factory) => {
  const receiver = await startHttpReceiver((body, seenBefore) => {
    const number = (JSON.parse(body) as { data?: { number?: number } }).data?.number ?? 0;
    if (number === refusedOrderNumber) return 422;
    if (number % flakyOrderEvery === 0 && seenBefore === 0) return 503;
    return 200;
  });
  const facts = () => {
    const accepted = receiver.requests.filter((request) => request.status < 300);
    return {
      requests: receiver.requests.length,
      accepted: accepted.length,
      answered503: receiver.requests.filter((request) => request.status === 503).length,
      answered422: receiver.requests.filter((request) => request.status === 422).length,
      uniqueOrders: new Set(accepted.map((request) => (JSON.parse(request.body) as { data: { id: string } }).data.id)).size,
    };
  };
  return {
    name: 'http',
    destination: factory(),
    policy: { retry: { initialDelay: 50, maxDelay: 200, maxAttempts: 5 } },
    inputs: (order) => [
      {
        method: 'POST',
        url: `${receiver.url}/webhooks/orders`,
        headers: { 'x-shop': 'demo-shop' },
        data: { type: 'order.created', data: order },
      },
    ],
    arrived: async () => facts(),
    describe: async () => {
      const { requests, accepted, answered503, answered422, uniqueOrders } = facts();
      return [
        `${requests} webhook requests received at ${receiver.url}/webhooks/orders: ${accepted} accepted (${uniqueOrders} orders),`,
        `  ${answered503} answered 503 and retried, ${answered422} refused with 422 (order #${refusedOrderNumber}, dead-lettered)`,
      ];
    },
    close: () => receiver.close(),
  };
};

const emailSetup: Setup = async (factory) => {
  const smtp = await startSmtpReceiver();
  const facts = () => ({
    emails: smtp.emails.length,
    recipients: new Set(smtp.emails.flatMap((email) => email.to)).size,
    subjects: smtp.emails.slice(0, 3).map((email) => email.subject),
  });
  return {
    name: 'email',
    destination: factory({ smtp: { host: smtp.host, port: smtp.port, secure: false, ignoreTLS: true }, from: { name: 'Demo Shop', address: 'orders@shop.example' } }),
    policy: { retry: { initialDelay: 50, maxDelay: 200 } },
    inputs: (order) => [
      {
        to: order.customer.email,
        subject: `Your receipt for order #${order.number}`,
        text: [`Hello ${order.customer.name},`, '', ...order.items.map((item) => `${item.quantity} x ${item.name}  ${(item.price * item.quantity).toFixed(2)} EUR`), '', `Total ${order.total.toFixed(2)} EUR`].join('\n'),
      },
    ],
    arrived: async () => facts(),
    describe: async () => {
      const { emails, recipients, subjects } = facts();
      return [`${emails} receipts received by the SMTP server on port ${smtp.port}, for ${recipients} customers`, `  e.g. "${subjects[0] ?? ''}"`];
    },
    close: () => smtp.close(),
  };
};

const s3Setup: Setup = async (factory, context) => {
  const bucket = 'shop-events';
  const server = await startS3Server(join(context.directory, 's3'), [bucket]);
  const facts = async () => {
    const objects = await server.list(bucket);
    return { bucket, objects: objects.length, keys: objects.map((object) => object.key), bytes: objects.reduce((sum, object) => sum + object.size, 0) };
  };
  return {
    name: 's3',
    destination: factory({ endpoint: server.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } }),
    policy: { batch: { maxDelay: 500, maxEvents: 1000 }, retry: { initialDelay: 50, maxDelay: 200 } },
    inputs: (order) => [{ bucket, prefix: 'orders/created/', payload: { type: 'order.created', orderId: order.id, total: order.total, items: order.items.length, at: order.placedAt } }],
    arrived: facts,
    describe: async () => {
      const { objects, keys, bytes } = await facts();
      return [`${objects} gzip NDJSON object${objects === 1 ? '' : 's'} (${bytes} bytes) in s3://${bucket} at ${server.endpoint}:`, ...keys.slice(0, 3).map((key) => `  ${key}`)];
    },
    close: () => server.close(),
  };
};

const sqlSetup: Setup = async (factory, context) => {
  const filename = join(context.directory, 'shop.db');
  const facts = () => {
    const database = new Database(filename, { readonly: true, fileMustExist: true });
    try {
      const rows = (database.prepare('select count(*) as count from orders').get() as { count: number }).count;
      const columns = (database.prepare('select name from pragma_table_info(?)').all('orders') as { name: string }[]).map((column) => column.name);
      return { database: filename, table: 'orders', rows, columns };
    } finally {
      database.close();
    }
  };
  return {
    name: 'sql',
    destination: factory({ knex: { client: 'better-sqlite3', connection: { filename }, useNullAsDefault: true } }),
    policy: { batch: { maxDelay: 300, maxEvents: 500 }, retry: { initialDelay: 50, maxDelay: 200 } },
    inputs: (order) => [{ table: 'orders', payload: { order_id: order.id, customer: order.customer.email, total: order.total, currency: order.currency, items: order.items.length, placed_at: order.placedAt } }],
    arrived: async () => facts(),
    describe: async () => {
      const { rows, columns } = facts();
      return [`${rows} rows in table "orders" of ${filename}`, `  columns: ${columns.join(', ')}`];
    },
    close: async () => undefined,
  };
};

const sseSetup: Setup = async (factory) => {
  const destination = factory({ replay: 100 }) as AnyDestination & { listen(port: number, host?: string): Promise<{ url: string }> };
  const { url } = await destination.listen(0, '127.0.0.1');
  const client = await importOptional('@egress/sse');
  const subscribe = (client.ok ? client.module.subscribe : undefined) as ((url: string, options: { channels: string[]; signal: AbortSignal }) => AsyncIterable<{ id: string; channel: string; data: unknown }>) | undefined;
  const received: { id: string; channel: string; data: unknown }[] = [];
  const controller = new AbortController();
  const listening = (async () => {
    if (!subscribe) return;
    try {
      for await (const event of subscribe(url, { channels: ['orders'], signal: controller.signal })) received.push(event);
    } catch (error) {
      if (!controller.signal.aborted) throw error;
    }
  })();
  const facts = () => ({ url, subscriberEvents: received.length, lastId: received.at(-1)?.id });
  return {
    name: 'sse',
    destination,
    policy: { retry: { initialDelay: 50, maxDelay: 200 } },
    inputs: (order) => [{ channel: 'orders', payload: { orderId: order.id, status: 'paid', total: order.total } }],
    arrived: async () => facts(),
    settle: async (delivered) => {
      const deadline = Date.now() + 5000;
      while (received.length < delivered && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    },
    describe: async () => {
      const { subscriberEvents, lastId } = facts();
      return [`${subscriberEvents} live events received by a subscriber of ${url} (channel "orders", last id ${lastId ?? '-'})`];
    },
    close: async () => {
      controller.abort();
      await listening.catch(() => undefined);
    },
  };
};

/** Every destination type the demo knows, in the order they are shown. */
export const demoSetups: { type: string; setup: Setup }[] = [
  { type: 'http', setup: httpSetup },
  { type: 'email', setup: emailSetup },
  { type: 's3', setup: s3Setup },
  { type: 'sql', setup: sqlSetup },
  { type: 'sse', setup: sseSetup },
];
