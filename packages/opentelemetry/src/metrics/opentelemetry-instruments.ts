import type { BatchObservableCallback, Histogram, Meter, Observable } from '@opentelemetry/api';
import type { MetricDefinition } from './metric-definitions.js';
import type { EachRecorder, MetricReading, Recorder } from './metric-registry.js';
import type { GaugeReading } from './queue-gauges.js';

/**
 * The metrics as OpenTelemetry instruments on a Meter. Without an SDK the API's meter is a no-op,
 * so recording costs a call; with one, the SDK aggregates and exports as configured.
 *
 * Counters are observable: the registry already sums them for Prometheus, so the SDK reads those
 * totals when it collects instead of being called for every delivery (each SDK call hashes its
 * attributes, a few microseconds). Histograms cannot be handed over pre-aggregated through the API,
 * so they are recorded as measurements arrive.
 */
export class OpenTelemetryInstruments {
  private readonly observables = new Map<MetricDefinition, Observable>();
  private readonly observe: BatchObservableCallback;

  constructor(
    private readonly meter: Meter,
    observed: { counters: readonly MetricDefinition[]; gauges: readonly MetricDefinition[] },
    read: { counters: () => readonly MetricReading[]; gauges: () => Promise<readonly GaugeReading[]> },
  ) {
    for (const definition of observed.counters) this.observables.set(definition, meter.createObservableCounter(definition.name, options(definition)));
    for (const definition of observed.gauges) this.observables.set(definition, meter.createObservableGauge(definition.name, options(definition)));
    this.observe = async (observer) => {
      for (const { definition, points } of read.counters()) {
        const counter = this.observables.get(definition);
        if (counter) for (const point of points) if ('value' in point) observer.observe(counter, point.value, point.attributes);
      }
      for (const reading of await read.gauges()) {
        const gauge = this.observables.get(reading.definition);
        if (gauge) observer.observe(gauge, reading.value, reading.attributes);
      }
    };
    meter.addBatchObservableCallback(this.observe, [...this.observables.values()]);
  }

  histogram(definition: MetricDefinition): Recorder {
    const histogram = this.createHistogram(definition);
    return (value, attributes) => histogram.record(value, attributes);
  }

  /** The API has no call for many measurements at once: each value is recorded by itself. */
  eachHistogram(definition: MetricDefinition): EachRecorder {
    const histogram = this.createHistogram(definition);
    return (values, divisor, attributes) => {
      for (const value of values) histogram.record(value / divisor, attributes);
    };
  }

  private createHistogram(definition: MetricDefinition): Histogram {
    return this.meter.createHistogram(definition.name, { ...options(definition), advice: { explicitBucketBoundaries: [...(definition.boundaries ?? [])] } });
  }

  close(): void {
    this.meter.removeBatchObservableCallback(this.observe, [...this.observables.values()]);
  }
}

function options(definition: MetricDefinition): { unit: string; description: string } {
  return { unit: definition.unit, description: definition.description };
}
