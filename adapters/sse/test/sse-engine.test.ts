import { afterEach, describe, expect, test } from 'vitest';
import { createEgress, EgressValidationError, silentLogger } from '@egress/core';
import { sse, subscribe } from '@egress/sse';
import { eventually, numbersOf, take } from './helpers.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

describe('sse through createEgress', () => {
  test('events sent with $send.sse reach a subscriber, in order per channel', async () => {
    const destination = sse({ replay: 0 });
    const egress = createEgress({ destinations: [destination], logger: silentLogger });
    cleanups.push(() => egress.close());
    const address = await destination.listen(0, '127.0.0.1');
    const controller = new AbortController();
    cleanups.push(() => controller.abort());
    const events = subscribe(address.url, { signal: controller.signal });
    const pending = take(events, 5);
    await eventually(() => destination.subscriberCount === 1);

    egress.send.sse({ channel: 'orders', payload: { n: 0 } });
    await egress.run(async ($send) => {
      for (const n of [1, 2, 3]) $send.sse({ channel: 'orders', payload: { n } });
      $send.sse({ channel: 'refunds', payload: { n: 4 } });
    });
    const received = await pending;
    expect(numbersOf(received.filter((event) => event.channel === 'orders'))).toEqual([0, 1, 2, 3]);
    expect(received.find((event) => event.channel === 'refunds')?.data).toEqual({ n: 4 });
  });

  test('an invalid call throws at once, naming the field, and is not published', async () => {
    const destination = sse();
    const egress = createEgress({ destinations: [destination], logger: silentLogger });
    cleanups.push(() => egress.close());
    expect(() => egress.send.sse({ channel: 'a\nevent: forged', payload: {} })).toThrow(EgressValidationError);
    // @ts-expect-error `data` is not a field of $send.sse (it is `payload`), which the types say too
    expect(() => egress.send.sse({ channel: 'a', data: {} })).toThrow(/data/);
    // @ts-expect-error a channel is a string
    expect(() => egress.send.sse({ channel: 7, payload: {} })).toThrow(/channel/);
    await egress.flush();
    const [stats] = await egress.stats();
    expect(stats?.delivered ?? 0).toBe(0);
  });

  test('close() stops the standalone server', async () => {
    const destination = sse();
    const egress = createEgress({ destinations: [destination], logger: silentLogger });
    const address = await destination.listen(0, '127.0.0.1');
    egress.send.sse({ channel: 'a', payload: 1 });
    await egress.flush();
    await egress.close();
    await expect(fetch(address.url)).rejects.toThrow();
  });
});
