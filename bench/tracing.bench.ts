// What tracing costs per event: send + delivery through the memory store to a no-op destination,
// without the `tracing` option (the baseline), with openTelemetryTracing() and no SDK registered,
// and with an SDK that records every span (no exporter, so the export's own cost is left out).
// All three run in this process, one after the other, on the same payloads.
import { writeFileSync } from 'node:fs';
import { z } from 'zod';
import { createEgress, defineDestination, memoryStore, silentLogger, type Tracing } from '@egress/core';
import { openTelemetryTracing } from '@egress/opentelemetry';
import { TracerProvider } from '@opentelemetry/sdk-trace';

const events = Number(process.env.EVENTS ?? 200_000);
const batchSize = 100;
const payloads = Array.from({ length: events }, (_, index) => ({ index, name: `user-${index}`, plan: index % 3 ? ('pro' as const) : ('free' as const), amount: index * 1.5 }));

async function run(tracing: Tracing | undefined): Promise<number> {
  let delivered = 0;
  const destination = defineDestination({
    name: 'noop',
    input: z.strictObject({ index: z.number(), name: z.string(), plan: z.enum(['free', 'pro']), amount: z.number() }),
    async deliver(batch) {
      delivered += batch.events.length;
    },
  });
  const egress = createEgress({
    destinations: [destination],
    store: memoryStore({ maxEvents: events + 1 }),
    logger: silentLogger,
    policies: { noop: { batch: { maxEvents: batchSize, maxDelay: 0 }, concurrency: 4 } },
    ...(tracing ? { tracing } : {}),
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

const variants: [string, () => Tracing | undefined][] = [
  ['no tracing option (baseline)', () => undefined],
  ['openTelemetryTracing(), no SDK', () => openTelemetryTracing()],
  ['openTelemetryTracing(), recording SDK', () => openTelemetryTracing({ tracerProvider: new TracerProvider() })],
  // The baseline again, last: how far two runs of the same code differ on this machine.
  ['no tracing option (again)', () => undefined],
];
// One warm-up round each, then six measured rounds, interleaved; the best round of each counts (the machine is shared).
const best = new Map<string, number>();
for (let round = 0; round < 7; round++) {
  for (const [name, tracing] of variants) {
    const milliseconds = await run(tracing());
    if (round > 0) best.set(name, Math.min(best.get(name) ?? Number.POSITIVE_INFINITY, milliseconds));
  }
}
const rate = (milliseconds: number) => Math.round(events / (milliseconds / 1000));
const baselineRate = rate(best.get(variants[0]![0])!);
const rows = Object.fromEntries(
  variants.map(([name]) => {
    const milliseconds = best.get(name)!;
    return [name, { milliseconds: Math.round(milliseconds), eventsPerSecond: rate(milliseconds), ratio: Number((rate(milliseconds) / baselineRate).toFixed(4)) }];
  }),
);
console.table(rows);
writeFileSync(new URL('./results/tracing.json', import.meta.url), `${JSON.stringify({ events, batchSize, variants: rows }, null, 2)}\n`);
