import { MeterProvider, MetricReader, type DataPoint, type Histogram, type MetricData } from '@opentelemetry/sdk-metrics';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { createEgress, memoryStore } from '@egress/core';
import { http } from '@egress/http';
import { createEgressMetrics, type EgressMetrics } from '../../src/index.js';
import { runKnownWorkload, startReceiver, webhookEgress } from './delivery-workload.js';

/** Collects on demand, the way a pull exporter does. */
class InMemoryReader extends MetricReader {
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }

  async metrics(): Promise<Map<string, MetricData>> {
    const { resourceMetrics, errors } = await this.collect();
    expect(errors).toEqual([]);
    return new Map(resourceMetrics.scopeMetrics.flatMap((scope) => scope.metrics).map((metric) => [metric.descriptor.name, metric]));
  }
}

function points(metric: MetricData | undefined): DataPoint<number | Histogram>[] {
  expect(metric).toBeDefined();
  return metric!.dataPoints as DataPoint<number | Histogram>[];
}

function pointWith(metric: MetricData | undefined, attributes: Record<string, string>): DataPoint<number | Histogram> | undefined {
  return points(metric).find((point) => Object.keys(point.attributes).length === Object.keys(attributes).length && Object.entries(attributes).every(([key, value]) => point.attributes[key] === value));
}

const deliver = { 'messaging.system': 'egress', 'messaging.operation.name': 'deliver', 'messaging.destination.name': 'http' };

describe('metrics through the OpenTelemetry SDK', () => {
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let egress: ReturnType<typeof webhookEgress>;
  let instrumentation: EgressMetrics;
  let provider: MeterProvider;
  let reader: InMemoryReader;

  beforeEach(async () => {
    receiver = await startReceiver();
    egress = webhookEgress();
    reader = new InMemoryReader();
    provider = new MeterProvider({ readers: [reader] });
    instrumentation = createEgressMetrics(egress, { meterProvider: provider });
  });

  afterEach(async () => {
    instrumentation.close();
    await egress.close({ timeout: 1000 });
    await provider.shutdown();
    await receiver.close();
  });

  test('after a known workload: messages sent per outcome with error.type, attempt durations, latency, retries and dead letters', async () => {
    await runKnownWorkload(egress, receiver.url);
    expect(receiver.accepted.sort()).toEqual(['flaky-1', 'ok-1', 'ok-2', 'ok-3']);
    const metrics = await reader.metrics();

    const sent = metrics.get('messaging.client.sent.messages');
    expect(sent?.descriptor.unit).toBe('{message}');
    expect(pointWith(sent, deliver)?.value).toBe(4);
    const failures = points(sent).filter((point) => point.attributes['error.type'] !== undefined);
    expect(failures.map((point) => point.value).sort()).toEqual([1, 1]);
    expect(failures.every((point) => point.attributes['messaging.destination.name'] === 'http')).toBe(true);

    for (const name of ['messaging.client.operation.duration', 'messaging.process.duration']) {
      const durations = points(metrics.get(name));
      expect(metrics.get(name)?.descriptor.unit).toBe('s');
      // Six attempts: three plain deliveries, the flaky event's two, the rejected event's one.
      expect(durations.reduce((total, point) => total + (point.value as Histogram).count, 0)).toBe(6);
      expect((pointWith(metrics.get(name), deliver)?.value as Histogram).count).toBe(4);
      expect(durations.every((point) => ((point.value as Histogram).sum ?? 0) > 0)).toBe(true);
    }

    const latency = pointWith(metrics.get('egress.delivery.latency'), { 'messaging.destination.name': 'http' })?.value as Histogram;
    expect(latency.count).toBe(4);
    expect(latency.buckets.boundaries[0]).toBe(0.005);

    const retried = points(metrics.get('egress.events.retried'));
    expect(retried).toHaveLength(1);
    expect(retried[0]!.value).toBe(1);
    const deadLettered = points(metrics.get('egress.events.dead_lettered'));
    expect(deadLettered).toHaveLength(1);
    expect(deadLettered[0]!.value).toBe(1);
    // The error type of a failed attempt is the error recorded for it.
    const [letter] = await egress.deadLetters.list();
    expect(deadLettered[0]!.attributes['error.type']).toBe(letter!.error.name);

    // The HTTP destination partitions by origin.
    const queue = { 'messaging.destination.name': 'http', 'messaging.destination.partition.id': new URL(receiver.url).origin };
    expect(pointWith(metrics.get('egress.dead_letters'), queue)?.value).toBe(1);
    expect(pointWith(metrics.get('egress.events.waiting'), queue)?.value).toBe(0);
    expect(pointWith(metrics.get('egress.events.in_flight'), queue)?.value).toBe(0);
    expect(pointWith(metrics.get('egress.events.buffered'), { 'messaging.destination.name': 'http' })?.value).toBe(0);
    expect(pointWith(metrics.get('egress.store.up'), { 'egress.store.kind': 'memory' })?.value).toBe(1);
  });

  test('the queue gauges count events waiting and their age while the destination holds them back', async () => {
    await egress.ready();
    // The receiver is gone: every attempt fails to connect and is retried later.
    await receiver.close();
    const firstRetry = new Promise((resolve) => egress.on('retrying', resolve));
    for (let n = 1; n <= 3; n += 1) egress.send.http({ method: 'POST', url: receiver.url, data: { kind: 'ok', n } });
    await firstRetry;
    const metrics = await reader.metrics();
    // The HTTP destination partitions by origin.
    const queue = { 'messaging.destination.name': 'http', 'messaging.destination.partition.id': new URL(receiver.url).origin };
    const waiting = pointWith(metrics.get('egress.events.waiting'), queue)!.value as number;
    const inFlight = pointWith(metrics.get('egress.events.in_flight'), queue)!.value as number;
    expect(waiting + inFlight).toBe(3);
    expect(pointWith(metrics.get('egress.events.oldest_age'), queue)!.value as number).toBeGreaterThan(0);
    expect(points(metrics.get('egress.events.retried')).reduce((total, point) => total + (point.value as number), 0)).toBeGreaterThan(0);
  });

  test('with more partitions than the limit, a destination reports one series without the partition label', async () => {
    instrumentation.close();
    instrumentation = createEgressMetrics(egress, { meterProvider: provider, partitionLimit: 0 });
    await runKnownWorkload(egress, receiver.url);
    const metrics = await reader.metrics();
    expect(pointWith(metrics.get('egress.dead_letters'), { 'messaging.destination.name': 'http' })?.value).toBe(1);
  });

  test('counts events dropped at send when the store is full, per destination and reason', async () => {
    const full = createEgress({ destinations: [http()], store: memoryStore({ maxEvents: 2 }), overflow: 'drop' });
    const fullMetrics = createEgressMetrics(full, { meterProvider: provider });
    try {
      await full.ready();
      // Sent in one go, before the commit buffer hands anything to the store: the store admits two.
      for (let n = 1; n <= 5; n += 1) full.send.http({ method: 'POST', url: receiver.url, data: { kind: 'ok', n } });
      const dropped = points((await reader.metrics()).get('egress.events.dropped'));
      expect(dropped.map((point) => [point.attributes, point.value])).toEqual([[{ 'messaging.destination.name': 'http', reason: 'capacity' }, 3]]);
      expect(await fullMetrics.prometheus()).toMatch(/^egress_events_dropped_total\{messaging_destination_name="http",reason="capacity"\} 3$/m);
    } finally {
      fullMetrics.close();
      await full.close({ timeout: 1000 });
    }
  });

  test('rejects a partition limit that is not a whole number, naming the option', () => {
    expect(() => createEgressMetrics(egress, { partitionLimit: -1 })).toThrow(/\[opentelemetry\] option "partitionLimit".*-1/);
    expect(() => createEgressMetrics(egress, { statsMaxAge: 'soon' as never })).toThrow(/statsMaxAge/);
  });
});
