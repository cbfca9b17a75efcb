import { LatencyHistogram, type LatencySummary } from './latency-histogram.js';

interface Counters {
  delivered: number;
  failed: number;
  latency: LatencyHistogram;
}

/** Partitions tracked one by one per destination; the rest are counted together under `*`. */
const maxTrackedPartitions = 1000;

/**
 * What this process has seen happen: deliveries, failed attempts, drops and latencies. Counted per
 * partition only (a destination's totals are summed when asked for), so recording a batch costs
 * one lookup and one histogram entry per event.
 */
export class DeliveryStatistics {
  private readonly byDestination = new Map<string, { dropped: number; partitions: Map<string, Counters> }>();

  /** Records a delivered batch: `sentAt` holds each delivered event's send time. */
  delivered(destination: string, partition: string, now: number, sentAt: readonly number[]): void {
    const counters = this.counters(destination, partition);
    counters.delivered += sentAt.length;
    for (const time of sentAt) counters.latency.record(now - time);
  }

  failed(destination: string, partition: string, events: number): void {
    this.counters(destination, partition).failed += events;
  }

  dropped(destination: string, events: number): void {
    this.entry(destination).dropped += events;
  }

  destination(destination: string): { delivered: number; failed: number; dropped: number; latency: LatencySummary | undefined } {
    const entry = this.entry(destination);
    const latency = new LatencyHistogram();
    let delivered = 0;
    let failed = 0;
    for (const counters of entry.partitions.values()) {
      delivered += counters.delivered;
      failed += counters.failed;
      latency.merge(counters.latency);
    }
    return { delivered, failed, dropped: entry.dropped, latency: latency.summary() };
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
    if (!entry) this.byDestination.set(destination, (entry = { dropped: 0, partitions: new Map() }));
    return entry;
  }

  private counters(destination: string, partition: string): Counters {
    const { partitions } = this.entry(destination);
    let counters = partitions.get(partition);
    if (!counters) {
      const key = partitions.size < maxTrackedPartitions ? partition : '*';
      counters = partitions.get(key);
      if (!counters) partitions.set(key, (counters = { delivered: 0, failed: 0, latency: new LatencyHistogram() }));
    }
    return counters;
  }
}
