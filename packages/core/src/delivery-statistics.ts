import { LatencyHistogram, type LatencySummary } from './latency-histogram.js';

/** Partitions tracked one by one per destination; the rest are measured together under `*`. */
const maxTrackedPartitions = 1000;

/**
 * What only this process can see: delivery latencies, events dropped at `send` and accepted events lost before the store took them. Delivered and
 * failed totals are not kept here: the store records them with each settlement, for every process.
 * Latency is kept per partition (a destination's summary is merged when asked for), so recording a
 * batch costs one lookup and one histogram entry per event.
 */
export class DeliveryStatistics {
  private readonly byDestination = new Map<string, { dropped: number; lost: number; partitions: Map<string, LatencyHistogram> }>();

  /** Records a delivered batch: `sentAt` holds each delivered event's send time. */
  delivered(destination: string, partition: string, now: number, sentAt: readonly number[]): void {
    const latency = this.latency(destination, partition);
    for (const time of sentAt) latency.record(now - time);
  }

  dropped(destination: string, events: number): void {
    this.entry(destination).dropped += events;
  }

  /** Accepted events that never reached the store. */
  lost(destination: string, events: number): void {
    this.entry(destination).lost += events;
  }

  destination(destination: string): { dropped: number; lost: number; latency: LatencySummary | undefined } {
    const entry = this.entry(destination);
    const latency = new LatencyHistogram();
    for (const histogram of entry.partitions.values()) latency.merge(histogram);
    return { dropped: entry.dropped, lost: entry.lost, latency: latency.summary() };
  }

  /** Latency per partition (partitions beyond the tracked ones under `*`). */
  partitions(destination: string): Map<string, LatencySummary | undefined> {
    const result = new Map<string, LatencySummary | undefined>();
    for (const [partition, histogram] of this.entry(destination).partitions) result.set(partition, histogram.summary());
    return result;
  }

  private entry(destination: string) {
    let entry = this.byDestination.get(destination);
    if (!entry) this.byDestination.set(destination, (entry = { dropped: 0, lost: 0, partitions: new Map() }));
    return entry;
  }

  private latency(destination: string, partition: string): LatencyHistogram {
    const { partitions } = this.entry(destination);
    let histogram = partitions.get(partition);
    if (!histogram) {
      const key = partitions.size < maxTrackedPartitions ? partition : '*';
      histogram = partitions.get(key);
      if (!histogram) partitions.set(key, (histogram = new LatencyHistogram()));
    }
    return histogram;
  }
}
