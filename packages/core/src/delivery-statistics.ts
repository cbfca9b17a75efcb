import { LatencyHistogram, type LatencySummary } from './latency-histogram.js';

interface Counters {
  delivered: number;
  failed: number;
  dropped: number;
  latency: LatencyHistogram;
}

/** Partitions tracked one by one per destination; the rest are counted together under `*`. */
const maxTrackedPartitions = 1000;

/** What this process has seen happen: deliveries, failed attempts, drops and latencies. */
export class DeliveryStatistics {
  private readonly byDestination = new Map<string, { total: Counters; partitions: Map<string, Counters> }>();

  delivered(destination: string, partition: string, latency: number): void {
    for (const counters of this.counters(destination, partition)) {
      counters.delivered += 1;
      counters.latency.record(latency);
    }
  }

  failed(destination: string, partition: string, events: number): void {
    for (const counters of this.counters(destination, partition)) counters.failed += events;
  }

  dropped(destination: string, events: number): void {
    this.entry(destination).total.dropped += events;
  }

  destination(destination: string): { delivered: number; failed: number; dropped: number; latency: LatencySummary | undefined } {
    const { total } = this.entry(destination);
    return { delivered: total.delivered, failed: total.failed, dropped: total.dropped, latency: total.latency.summary() };
  }

  partitions(destination: string): Map<string, { delivered: number; failed: number; latency: LatencySummary | undefined }> {
    const result = new Map<string, { delivered: number; failed: number; latency: LatencySummary | undefined }>();
    for (const [partition, counters] of this.entry(destination).partitions) {
      result.set(partition, { delivered: counters.delivered, failed: counters.failed, latency: counters.latency.summary() });
    }
    return result;
  }

  private entry(destination: string) {
    let entry = this.byDestination.get(destination);
    if (!entry) this.byDestination.set(destination, (entry = { total: emptyCounters(), partitions: new Map() }));
    return entry;
  }

  private counters(destination: string, partition: string): Counters[] {
    const entry = this.entry(destination);
    let counters = entry.partitions.get(partition);
    if (!counters) {
      const key = entry.partitions.size < maxTrackedPartitions ? partition : '*';
      counters = entry.partitions.get(key);
      if (!counters) entry.partitions.set(key, (counters = emptyCounters()));
    }
    return [entry.total, counters];
  }
}

function emptyCounters(): Counters {
  return { delivered: 0, failed: 0, dropped: 0, latency: new LatencyHistogram() };
}
