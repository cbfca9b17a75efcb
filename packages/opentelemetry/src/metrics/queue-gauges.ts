import type { DestinationStats, Egress } from '@egress/core';
import { attributeKeys, metricDefinitions, type MetricAttributes, type MetricDefinition } from './metric-definitions.js';
import type { MetricPoint, MetricReading } from './metric-registry.js';

/** One gauge value, read at collection time. */
export interface GaugeReading {
  readonly definition: MetricDefinition;
  readonly value: number;
  readonly attributes: MetricAttributes;
}

export const gaugeDefinitions: readonly MetricDefinition[] = [
  metricDefinitions.waiting,
  metricDefinitions.inFlight,
  metricDefinitions.deadLetters,
  metricDefinitions.oldestAge,
  metricDefinitions.buffered,
  metricDefinitions.storeUp,
];

/**
 * Reads the queue gauges from `egress.stats()` and `egress.storeStatus()`. One `stats()` reading
 * serves every collection within `maxAge`, so that several scrapers or a Meter plus a scrape do not
 * each query the store. A destination with more partitions than `partitionLimit` reports one series
 * without the partition label instead of one per partition, so the series stay bounded.
 */
export class QueueGauges {
  private cached: { at: number; stats: Promise<DestinationStats[]> } | undefined;

  constructor(
    private readonly egress: Egress,
    private readonly partitionLimit: number,
    private readonly maxAge: number,
  ) {}

  async read(): Promise<GaugeReading[]> {
    const status = this.egress.storeStatus();
    const readings: GaugeReading[] = [{ definition: metricDefinitions.storeUp, value: status.state === 'connected' ? 1 : 0, attributes: { [attributeKeys.storeKind]: status.kind } }];
    // While the store is away its queue cannot be counted; the commit buffer still can.
    if (status.state !== 'connected') {
      readings.push({ definition: metricDefinitions.buffered, value: status.buffered, attributes: {} });
      return readings;
    }
    let stats: DestinationStats[];
    try {
      stats = await this.stats();
    } catch {
      readings.push({ definition: metricDefinitions.buffered, value: status.buffered, attributes: {} });
      return readings;
    }
    for (const destination of stats) {
      const base = { [attributeKeys.destination]: destination.destination };
      readings.push({ definition: metricDefinitions.buffered, value: destination.buffered, attributes: base });
      type Row = { row: Pick<DestinationStats, 'waiting' | 'inFlight' | 'dead' | 'oldestAge'>; attributes: MetricAttributes };
      const rows: Row[] = destination.partitions.length <= this.partitionLimit ? destination.partitions.map((row) => ({ row, attributes: { ...base, [attributeKeys.partition]: row.partition } })) : [{ row: destination, attributes: base }];
      if (rows.length === 0) rows.push({ row: destination, attributes: base });
      for (const { row, attributes } of rows) {
        readings.push(
          { definition: metricDefinitions.waiting, value: row.waiting, attributes },
          { definition: metricDefinitions.inFlight, value: row.inFlight, attributes },
          { definition: metricDefinitions.deadLetters, value: row.dead, attributes },
          { definition: metricDefinitions.oldestAge, value: (row.oldestAge ?? 0) / 1000, attributes },
        );
      }
    }
    return readings;
  }

  private stats(): Promise<DestinationStats[]> {
    const now = Date.now();
    if (!this.cached || now - this.cached.at >= this.maxAge) {
      const stats = this.egress.stats();
      this.cached = { at: now, stats };
      // A failed reading is not kept: the next collection asks the store again.
      stats.catch(() => {
        if (this.cached?.stats === stats) this.cached = undefined;
      });
    }
    return this.cached.stats;
  }
}

/** Groups gauge readings by metric, in the order of `gaugeDefinitions`, for the exposition. */
export function gaugeMetricReadings(readings: readonly GaugeReading[]): MetricReading[] {
  return gaugeDefinitions.map((definition) => ({
    definition,
    points: readings.filter((reading) => reading.definition === definition).map((reading): MetricPoint => ({ attributes: reading.attributes, value: reading.value })),
  }));
}
