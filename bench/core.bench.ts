// send + delivery through the memory store to a no-op destination, beside a plain baseline that
// pushes the same payloads into an array and loops over it in batches. Both run in this process,
// one after the other, on the same payloads; the ratio is what the engine costs per event.
import { writeFileSync } from 'node:fs';
import { z } from 'zod';
import { createEgress, defineDestination, memoryStore, silentLogger } from '@egress/core';

const events = Number(process.env.EVENTS ?? 200_000);
const batchSize = 100;
const payloads = Array.from({ length: events }, (_, index) => ({ index, name: `user-${index}`, plan: index % 3 ? ('pro' as const) : ('free' as const), amount: index * 1.5 }));

function noop(_batch: readonly unknown[]): Promise<void> {
  return Promise.resolve();
}

async function baseline(): Promise<number> {
  const started = performance.now();
  const queue: unknown[] = [];
  for (const payload of payloads) queue.push(payload);
  for (let offset = 0; offset < queue.length; offset += batchSize) await noop(queue.slice(offset, offset + batchSize));
  return performance.now() - started;
}

async function throughEgress(): Promise<number> {
  let delivered = 0;
  const destination = defineDestination({
    name: 'noop',
    input: z.strictObject({ index: z.number(), name: z.string(), plan: z.enum(['free', 'pro']), amount: z.number() }),
    async deliver(batch) {
      delivered += batch.events.length;
      await noop(batch.events);
    },
  });
  const egress = createEgress({
    destinations: [destination],
    store: memoryStore({ maxEvents: events + 1 }),
    logger: silentLogger,
    policies: { noop: { batch: { maxEvents: batchSize, maxDelay: 0 }, concurrency: 4 } },
  });
  await egress.ready();
  const started = performance.now();
  for (const payload of payloads) egress.send.noop(payload);
  await egress.flush();
  const elapsed = performance.now() - started;
  await egress.close();
  if (delivered !== events) throw new Error(`delivered ${delivered} of ${events}`);
  return elapsed;
}

// One warm-up round each, then the measured round.
await baseline();
await throughEgress();
const baselineMs = await baseline();
const egressMs = await throughEgress();
const rate = (milliseconds: number) => Math.round(events / (milliseconds / 1000));
const result = {
  events,
  batchSize,
  baseline: { milliseconds: Math.round(baselineMs), eventsPerSecond: rate(baselineMs) },
  egress: { milliseconds: Math.round(egressMs), eventsPerSecond: rate(egressMs) },
  ratio: Number((rate(egressMs) / rate(baselineMs)).toFixed(4)),
};
console.table({ 'array push + loop (baseline)': result.baseline, 'egress send + delivery (memory store)': result.egress });
console.log(`egress runs at ${(result.ratio * 100).toFixed(2)} % of the baseline's rate (${result.egress.eventsPerSecond} vs ${result.baseline.eventsPerSecond} events/s)`);
writeFileSync(new URL('./results/core.json', import.meta.url), `${JSON.stringify(result, null, 2)}\n`);
