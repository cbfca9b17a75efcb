import { destinationTestSuite } from '@egress/testkit';
import { afterAll, beforeAll, describe, test } from 'vitest';
import { http } from '../src/index.js';
import { startReceiver, type Receiver } from './receiver.js';

let receiver: Receiver;

beforeAll(async () => {
  receiver = await startReceiver();
});
afterAll(async () => {
  await receiver.close();
});

/**
 * What the receiver stored, deduplicated as a real webhook consumer would: by the idempotency key
 * (the event id) in the default mode, by each element's event id in batch mode.
 */
function arrived(): number[] {
  const byEventId = new Map<string, number>();
  for (const request of receiver.requests) {
    if (!request.url.startsWith('/conformance')) continue;
    const body = JSON.parse(request.body.toString()) as { n: number } | { id: string; data: { n: number } }[];
    if (Array.isArray(body)) for (const element of body) byEventId.set(element.id, element.data.n);
    else byEventId.set(String(request.headers['idempotency-key']), body.n);
  }
  return [...byEventId.values()];
}

const invalidInputs = () => [
  { input: { url: 'ftp://example.com/' }, path: 'url' },
  { input: { url: `${receiver.origin}/conformance`, method: 'post' }, path: 'method' },
  { input: { url: `${receiver.origin}/conformance`, auth: { username: 'only' } }, path: 'auth' },
  { input: { url: `${receiver.origin}/conformance`, params: { q: { deep: 1 } } }, path: 'params' },
];

describe('http: destination conformance, one request per event', () => {
  destinationTestSuite(test, {
    createDestination: () => http(),
    input: (index) => ({ url: `${receiver.origin}/conformance`, data: { n: index } }),
    arrived: async () => arrived(),
    get invalidInputs() {
      return invalidInputs();
    },
  });
});

describe('http: destination conformance, batch mode', () => {
  destinationTestSuite(test, {
    createDestination: () => http({ batch: true }),
    input: (index) => ({ url: `${receiver.origin}/conformance`, data: { n: index } }),
    arrived: async () => arrived(),
    policy: { batch: { maxDelay: 20 } },
    get invalidInputs() {
      return invalidInputs();
    },
  });
});
