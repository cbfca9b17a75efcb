// What the metrics instrumentation costs per event: the same workload (send + delivery through the
// memory store to a no-op destination) without instrumentation, with it and no OpenTelemetry SDK
// (the API's no-op meter; the Prometheus registry still counts), and with an SDK MeterProvider
// aggregating every instrument. Each round runs the three back to back, in an order that rotates
// from round to round, so that load from other processes falls on all three alike; the overhead is
// the median over rounds of each round's ratio to its own plain run. The time measured is the CPU
// time this process spent (process.cpuUsage), which other processes on a loaded machine disturb far
// less than wall-clock time; wall-clock medians are reported beside it. The instrumentation records per batch, so it
// runs at the default batch size (100) and at 10, where per-batch costs weigh ten times more.
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { z } from 'zod';
import { createEgress, defineDestination, memoryStore, silentLogger, type Egress } from '@egress/core';
import { createEgressMetrics } from '@egress/opentelemetry';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';

const events = Number(process.env.EVENTS ?? 100_000);
const rounds = Number(process.env.ROUNDS ?? 15);
const payloads = Array.from({ length: events }, (_, index) => ({ index, name: `user-${index}`, amount: index * 1.5 }));

class PullReader extends MetricReader {
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
}

type Variant = 'plain' | 'metrics, no SDK' | 'metrics, OpenTelemetry SDK';

async function round(variant: Variant, batchSize: number): Promise<{ cpu: number; wall: number }> {
  let delivered = 0;
  const destination = defineDestination({
    name: 'noop',
    input: z.strictObject({ index: z.number(), name: z.string(), amount: z.number() }),
    async deliver(batch) {
      delivered += batch.events.length;
    },
  });
  const egress = createEgress({
    destinations: [destination],
    store: memoryStore({ maxEvents: events + 1 }),
    logger: silentLogger,
    policies: { noop: { batch: { maxEvents: batchSize, maxDelay: 0 }, concurrency: 4 } },
  }) as unknown as Egress & { send: { noop(payload: unknown): void } };
  const reader = new PullReader();
  const provider = variant === 'metrics, OpenTelemetry SDK' ? new MeterProvider({ readers: [reader] }) : undefined;
  const metrics = variant === 'plain' ? undefined : createEgressMetrics(egress, provider ? { meterProvider: provider } : {});
  await egress.ready();
  const started = performance.now();
  const cpuBefore = process.cpuUsage();
  for (const payload of payloads) egress.send.noop(payload);
  await egress.flush();
  const cpuUsed = process.cpuUsage(cpuBefore);
  const elapsed = { cpu: (cpuUsed.user + cpuUsed.system) / 1000, wall: performance.now() - started };
  if (metrics) {
    // What was recorded is read once, as a scrape would, so that nothing is optimised away.
    const text = await metrics.prometheus();
    if (!text.includes(`messaging_client_sent_messages_total{messaging_system="egress",messaging_operation_name="deliver",messaging_destination_name="noop"} ${events}`)) throw new Error('the exposition misses sent events');
    if (provider) await reader.collect();
    metrics.close();
  }
  await provider?.shutdown();
  await egress.close();
  if (delivered !== events) throw new Error(`delivered ${delivered} of ${events}`);
  return elapsed;
}

const variants: Variant[] = ['plain', 'metrics, no SDK', 'metrics, OpenTelemetry SDK'];
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function measure(batchSize: number) {
  for (const variant of variants) await round(variant, batchSize);
  const times = new Map<Variant, number[]>(variants.map((variant) => [variant, []]));
  const wallTimes = new Map<Variant, number[]>(variants.map((variant) => [variant, []]));
  for (let index = 0; index < rounds; index += 1) {
    for (let offset = 0; offset < variants.length; offset += 1) {
      const variant = variants[(index + offset) % variants.length]!;
      (globalThis as { gc?: () => void }).gc?.();
      const { cpu, wall } = await round(variant, batchSize);
      times.get(variant)!.push(cpu);
      wallTimes.get(variant)!.push(wall);
    }
  }
  const summary = (variant: Variant) => {
    const cpu = median(times.get(variant)!);
    const wall = median(wallTimes.get(variant)!);
    return { cpuMilliseconds: Math.round(cpu), cpuNanosecondsPerEvent: Math.round((cpu * 1e6) / events), wallMilliseconds: Math.round(wall), eventsPerSecond: Math.round(events / (wall / 1000)) };
  };
  const plainTimes = times.get('plain')!;
  const overhead = (variant: Variant) => Number((median(times.get(variant)!.map((time, index) => time / plainTimes[index]!)) - 1).toFixed(4));
  const measured = {
    batchSize,
    plain: summary('plain'),
    metricsWithoutSdk: { ...summary('metrics, no SDK'), overhead: overhead('metrics, no SDK') },
    metricsWithSdk: { ...summary('metrics, OpenTelemetry SDK'), overhead: overhead('metrics, OpenTelemetry SDK') },
  };
  console.log(`batches of ${batchSize}:`);
  console.table({ plain: measured.plain, 'metrics, no SDK': measured.metricsWithoutSdk, 'metrics, OpenTelemetry SDK': measured.metricsWithSdk });
  console.log(`instrumentation costs ${(measured.metricsWithoutSdk.overhead * 100).toFixed(1)} % without an SDK and ${(measured.metricsWithSdk.overhead * 100).toFixed(1)} % with the OpenTelemetry SDK`);
  return measured;
}

const loadBefore = loadavg();
const runs = [await measure(100), await measure(10)];
const result = {
  events,
  rounds,
  measured: 'CPU time of this process per event; overhead is the median per-round ratio to the plain run minus 1',
  loadAverage: { before: loadBefore.map((load) => Number(load.toFixed(2))), after: loadavg().map((load) => Number(load.toFixed(2))) },
  target: 'overhead under 0.10 of the plain run, in the same run',
  runs,
};
writeFileSync(new URL('./results/observability.json', import.meta.url), `${JSON.stringify(result, null, 2)}\n`);
