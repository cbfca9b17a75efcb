import type { MetricAttributes, MetricDefinition } from './metric-definitions.js';

/** Records one measurement of one metric. */
export type Recorder = (value: number, attributes: MetricAttributes) => void;

export interface HistogramValue {
  /** Count per bucket, not cumulative; the last bucket is above the highest boundary. */
  readonly bucketCounts: number[];
  sum: number;
  count: number;
}

/** One series: a metric's value under one set of attributes. */
export type MetricPoint = { readonly attributes: MetricAttributes; readonly value: number } | { readonly attributes: MetricAttributes; readonly histogram: HistogramValue };

export interface MetricReading {
  readonly definition: MetricDefinition;
  readonly points: readonly MetricPoint[];
}

interface Series {
  readonly attributes: MetricAttributes;
  value: number;
  histogram?: HistogramValue;
}

/**
 * Sums counters and fills histogram buckets in memory, for the Prometheus exposition: Prometheus
 * scrapes cumulative totals, and keeping them here means no OpenTelemetry SDK is needed for it.
 */
export class MetricRegistry {
  private readonly metrics = new Map<MetricDefinition, Map<string, Series>>();

  recorder(definition: MetricDefinition): Recorder {
    const series = new Map<string, Series>();
    // Callers reuse attribute objects, so most measurements find their series without building a key.
    const byObject = new WeakMap<MetricAttributes, Series>();
    this.metrics.set(definition, series);
    const boundaries = definition.boundaries ?? [];
    const entry = (attributes: MetricAttributes): Series => {
      let found = byObject.get(attributes);
      if (found) return found;
      const key = seriesKey(attributes);
      found = series.get(key);
      if (!found) series.set(key, (found = { attributes, value: 0 }));
      byObject.set(attributes, found);
      return found;
    };
    if (definition.kind === 'histogram') {
      return (value, attributes) => {
        const found = entry(attributes);
        const histogram = (found.histogram ??= { bucketCounts: new Array<number>(boundaries.length + 1).fill(0), sum: 0, count: 0 });
        let bucket = 0;
        while (bucket < boundaries.length && value > boundaries[bucket]!) bucket += 1;
        histogram.bucketCounts[bucket]! += 1;
        histogram.sum += value;
        histogram.count += 1;
      };
    }
    return (value, attributes) => {
      entry(attributes).value += value;
    };
  }

  readings(): MetricReading[] {
    return [...this.metrics].map(([definition, series]) => ({
      definition,
      points: [...series.values()].map(({ attributes, value, histogram }) => (histogram ? { attributes, histogram } : { attributes, value })),
    }));
  }
}

function seriesKey(attributes: MetricAttributes): string {
  let key = '';
  for (const name in attributes) key += `${name}\u0000${attributes[name]}\u0000`;
  return key;
}
