import type { AnyDestination, PolicyOptions } from '@egress/core';
import type { Order } from './demo-shop.js';
import { startHttpReceiver } from './http-receiver.js';

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

/** Every destination type the demo knows, in the order they are shown. */
export const demoSetups: { type: string; setup: Setup }[] = [{ type: 'http', setup: httpSetup }];
