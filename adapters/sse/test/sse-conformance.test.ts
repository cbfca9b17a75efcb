import { afterAll, test } from 'vitest';
import { destinationTestSuite } from '@egress/testkit';
import { sse, subscribe, type SseDestination } from '@egress/sse';
import { eventually } from './helpers.js';

/**
 * Each destination gets its own stream served on loopback and one subscriber connected before
 * anything is sent; `arrived()` reports what those subscribers received over the wire.
 */
const received: number[] = [];
const finishedStreams: Promise<void>[] = [];
const created: SseDestination[] = [];
afterAll(async () => {
  for (const destination of created) await destination.stop?.();
});

async function createSubscribedDestination(): Promise<SseDestination> {
  const destination = sse({ replay: 0, windowEvents: 10_000 });
  created.push(destination);
  const address = await destination.listen(0, '127.0.0.1');
  let ended!: () => void;
  const streamEnded = new Promise<void>((resolve) => {
    ended = resolve;
  });
  void (async () => {
    try {
      for await (const event of subscribe<{ index: number }>(address.url, { reconnect: false })) received.push(event.data.index);
    } catch {
      // The stream closes with the destination; what was received until then is what counts.
    } finally {
      ended();
    }
  })();
  await eventually(() => destination.subscriberCount === 1);
  const stop = destination.stop!.bind(destination);
  destination.stop = async () => {
    await stop();
    finishedStreams.push(streamEnded);
  };
  return destination;
}

destinationTestSuite(test, {
  createDestination: createSubscribedDestination,
  input: (index) => ({ channel: `suite-${index % 3}`, payload: { index } }),
  arrived: async () => {
    // A stopped destination ends its streams after the last write, so its subscriber has read everything once it ends.
    await Promise.all(finishedStreams);
    return [...received];
  },
  invalidInputs: [
    { input: { payload: { index: 1 } }, path: 'channel' },
    { input: { channel: 'orders\nevent: forged', payload: { index: 1 } }, path: 'channel' },
    { input: { channel: 'orders' }, path: 'payload' },
    { input: { channel: 'orders', data: { index: 1 } }, path: '' },
  ],
});
