import type { MetricAttributes, MetricDefinition } from './metric-definitions.js';

/** Records one measurement of one metric. */
export type Recorder = (value: number, attributes: MetricAttributes) => void;

/** Records one measurement per value of a histogram, each divided by `divisor` first (milliseconds into seconds). */
export type EachRecorder = (values: readonly number[], divisor: number, attributes: MetricAttributes) => void;

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
    const entry = this.seriesOf(definition);
    if (definition.kind === 'histogram') {
      const boundaries = definition.boundaries ?? [];
      return (value, attributes) => observe(histogramOf(entry(attributes), boundaries), boundaries, value);
    }
    return (value, attributes) => {
      entry(attributes).value += value;
    };
  }

  /** A histogram's recorder for many measurements under the same attributes, found once for them all. */
  eachRecorder(definition: MetricDefinition): EachRecorder {
    const entry = this.seriesOf(definition);
    const boundaries = definition.boundaries ?? [];
    return (values, divisor, attributes) => {
      const histogram = histogramOf(entry(attributes), boundaries);
      for (const value of values) observe(histogram, boundaries, value / divisor);
    };
  }

  /** Finds (or starts) a metric's series by its attributes. */
  private seriesOf(definition: MetricDefinition): (attributes: MetricAttributes) => Series {
    const series = new Map<string, Series>();
    // Callers reuse attribute objects, so most measurements find their series without building a key.
    const byObject = new WeakMap<MetricAttributes, Series>();
    this.metrics.set(definition, series);
    let lastAttributes: MetricAttributes | undefined;
    let lastSeries: Series | undefined;
    return (attributes) => {
      // A burst of deliveries records under the same attributes, one after the other.
      if (attributes === lastAttributes) return lastSeries!;
      let found = byObject.get(attributes);
      if (!found) {
        const key = seriesKey(attributes);
        found = series.get(key);
        if (!found) series.set(key, (found = { attributes, value: 0 }));
        byObject.set(attributes, found);
      }
      lastAttributes = attributes;
      lastSeries = found;
      return found;
    };
  }

  readings(): MetricReading[] {
    return [...this.metrics].map(([definition, series]) => ({
      definition,
      points: [...series.values()].map(({ attributes, value, histogram }) => (histogram ? { attributes, histogram } : { attributes, value })),
    }));
  }
}

function histogramOf(series: Series, boundaries: readonly number[]): HistogramValue {
  return (series.histogram ??= { bucketCounts: new Array<number>(boundaries.length + 1).fill(0), sum: 0, count: 0 });
}

function observe(histogram: HistogramValue, boundaries: readonly number[], value: number): void {
  let bucket = 0;
  while (bucket < boundaries.length && value > boundaries[bucket]!) bucket += 1;
  histogram.bucketCounts[bucket]! += 1;
  histogram.sum += value;
  histogram.count += 1;
}

function seriesKey(attributes: MetricAttributes): string {
  let key = '';
  for (const name in attributes) key += `${name}\u0000${attributes[name]}\u0000`;
  return key;
}
