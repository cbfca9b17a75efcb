// The demo on embedded defaults: a custom destination and the memory store. It shows batches
// forming by count and by time, a flaky sink retried with backoff, an event dead-lettered and then
// retried, and the statistics at the end.
import { createEgress, defineDestination, PermanentError, RetryableError } from '@egress/core';
import { z } from 'zod';

const received = [];
let failuresToInject = 2;

const warehouse = defineDestination({
  name: 'warehouse',
  input: z.strictObject({ orderId: z.string(), total: z.number().nonnegative(), customer: z.string() }),
  defaults: { batch: { maxEvents: 25, maxDelay: '200ms' }, retry: { initialDelay: '50ms', maxDelay: '200ms' } },
  async deliver(batch) {
    if (failuresToInject > 0) {
      failuresToInject -= 1;
      throw new RetryableError('warehouse busy (injected)');
    }
    const failures = batch.events
      .filter((event) => event.payload.customer === 'blocked')
      .map((event) => ({ eventId: event.id, error: new PermanentError('customer account is blocked') }));
    for (const event of batch.events) if (!failures.some((failure) => failure.eventId === event.id)) received.push({ batch: batch.id.slice(0, 8), ...event.payload });
    return { failures };
  },
});

const egress = createEgress({ destinations: [warehouse] });
egress.on('retrying', (event) => console.log(`  retrying ${event.eventIds.length} events (attempt ${event.attempt}): ${event.error.message}`));
egress.on('dead', (event) => console.log(`  dead-lettered ${event.eventIds.length} event: ${event.error.message}`));

console.log('Handling 60 orders, each in its own unit of work...');
const started = Date.now();
for (let index = 0; index < 60; index += 1) {
  await egress.run(async ($send) => {
    $send.warehouse({ orderId: `order-${index}`, total: 10 + index, customer: index === 42 ? 'blocked' : `customer-${index % 7}` });
  });
}
try {
  egress.send.warehouse({ orderId: 'bad', total: -1, body: 'oops' });
} catch (error) {
  console.log(`Refused at send time: ${error.message}`);
}
await egress.flush();
console.log(`Delivered ${received.length} orders in ${new Set(received.map((order) => order.batch)).size} batches in ${Date.now() - started} ms.`);

const [dead] = await egress.deadLetters.list();
console.log(`Dead letter: ${dead.payload.orderId} — ${dead.error.message}`);
const [stats] = await egress.stats();
console.log(`Stats: delivered ${stats.delivered}, failed attempts ${stats.failed}, dead ${stats.dead}, latency p50 ${stats.latency?.p50} ms / p99 ${stats.latency?.p99} ms`);
await egress.deadLetters.purge();
await egress.close();
