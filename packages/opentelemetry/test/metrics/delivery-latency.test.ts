import { MeterProvider, MetricReader, type Histogram } from '@opentelemetry/sdk-metrics';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { z } from 'zod';
import { createEgress, defineDestination, memoryStore, type EgressEvents } from '@egress/core';
import { createEgressMetrics, serveObservability } from '../../src/index.js';

class InMemoryReader extends MetricReader {
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
}

/** A destination that takes its events in batches of `size`, waiting as long as it takes to fill one. */
function batchedEgress(size: number) {
  const destination = defineDestination({ name: 'audit', input: z.strictObject({ n: z.number() }), async deliver() {} });
  return createEgress({
    destinations: [destination],
    store: memoryStore(),
    policies: { audit: { batch: { maxEvents: size, maxDelay: '1h' } } },
  });
}

/** The `le` bounds of the Prometheus latency histogram and their cumulative counts, for one destination. */
function latencyBuckets(text: string, destination: string): Map<string, number> {
  const lines = text.matchAll(new RegExp(`^egress_delivery_latency_seconds_bucket\\{messaging_destination_name="${destination}",le="([^"]+)"\\} (\\d+)$`, 'gm'));
  return new Map([...lines].map((match) => [match[1]!, Number(match[2])]));
}

describe('delivery latency, one observation per event', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  test("a batch of events sent at different times puts each event in its own age's bucket", async () => {
    // The clock stands still except where the test moves it, so each event's age is known exactly.
    const start = 1_800_000_000_000;
    let now = start;
    vi.spyOn(Date, 'now').mockImplementation(() => now);
    const egress = batchedEgress(3);
    const reader = new InMemoryReader();
    const provider = new MeterProvider({ readers: [reader] });
    const metrics = createEgressMetrics(egress, { meterProvider: provider });
    const delivered: EgressEvents['delivered'][] = [];
    egress.on('delivered', (event) => delivered.push(event));
    try {
      await egress.ready();
      egress.send.audit({ n: 1 });
      now = start + 1_500;
      egress.send.audit({ n: 2 });
      now = start + 1_800;
      // The third event fills the batch, which is delivered at once, the clock still at start + 1.8 s.
      egress.send.audit({ n: 3 });
      await egress.flush();

      expect(delivered).toHaveLength(1);
      const [batch] = delivered;
      expect(batch!.eventIds).toHaveLength(3);
      expect(batch!.latencies).toEqual([1_800, 300, 0]);
      expect(batch!.latency).toBe(1_800);

      const { resourceMetrics } = await reader.collect();
      const latency = resourceMetrics.scopeMetrics.flatMap((scope) => scope.metrics).find((metric) => metric.descriptor.name === 'egress.delivery.latency');
      const histogram = latency!.dataPoints[0]!.value as Histogram;
      expect(histogram.count).toBe(3);
      expect(histogram.sum).toBeCloseTo(2.1, 9);
      const bucketOf = (seconds: number) => histogram.buckets.boundaries.findIndex((boundary) => seconds <= boundary);
      const expected = new Array<number>(histogram.buckets.counts.length).fill(0);
      for (const seconds of [1.8, 0.3, 0]) expected[bucketOf(seconds)]! += 1;
      expect(histogram.buckets.counts).toEqual(expected);

      const text = await metrics.prometheus();
      expect(text).toMatch(/^egress_delivery_latency_seconds_count\{messaging_destination_name="audit"\} 3$/m);
      expect(text).toMatch(/^egress_delivery_latency_seconds_sum\{messaging_destination_name="audit"\} 2\.1\d*$/m);
      const buckets = latencyBuckets(text, 'audit');
      expect([buckets.get('0.005'), buckets.get('0.25'), buckets.get('0.5'), buckets.get('1'), buckets.get('2.5'), buckets.get('+Inf')]).toEqual([1, 1, 2, 2, 3, 3]);
    } finally {
      metrics.close();
      await egress.close({ timeout: 1000 });
      await provider.shutdown();
    }
  });

  test('the scraped /metrics counts delivered events, not batches', async () => {
    const egress = batchedEgress(5);
    const server = await serveObservability(egress, { listen: '127.0.0.1:0' });
    let batches = 0;
    egress.on('delivered', () => (batches += 1));
    try {
      await egress.ready();
      for (let n = 1; n <= 10; n += 1) egress.send.audit({ n });
      await egress.flush();
      expect(batches).toBe(2);
      const text = await (await fetch(`${server.url}/metrics`)).text();
      expect(text).toMatch(/^egress_delivery_latency_seconds_count\{messaging_destination_name="audit"\} 10$/m);
      expect(latencyBuckets(text, 'audit').get('+Inf')).toBe(10);
    } finally {
      await server.close();
      await egress.close({ timeout: 1000 });
    }
  });
});
