import type { BatchObservableCallback, Meter, Observable, ObservableGauge } from '@opentelemetry/api';
import type { MetricDefinition } from './metric-definitions.js';
import type { MetricSink, Recorder } from './metric-registry.js';
import type { GaugeReading } from './queue-gauges.js';

/**
 * The metrics as OpenTelemetry instruments on a Meter. Without an SDK the API's meter is a no-op,
 * so recording costs a call; with one, the SDK aggregates and exports as configured.
 */
export class OpenTelemetryInstruments implements MetricSink {
  private readonly gauges = new Map<MetricDefinition, ObservableGauge>();
  private readonly observe: BatchObservableCallback;

  constructor(
    private readonly meter: Meter,
    gaugeDefinitions: readonly MetricDefinition[],
    readGauges: () => Promise<readonly GaugeReading[]>,
  ) {
    for (const definition of gaugeDefinitions) {
      this.gauges.set(definition, meter.createObservableGauge(definition.name, { unit: definition.unit, description: definition.description }));
    }
    this.observe = async (observer) => {
      for (const reading of await readGauges()) {
        const gauge = this.gauges.get(reading.definition);
        if (gauge) observer.observe(gauge, reading.value, reading.attributes);
      }
    };
    meter.addBatchObservableCallback(this.observe, [...this.gauges.values()] as Observable[]);
  }

  recorder(definition: MetricDefinition): Recorder {
    const options = { unit: definition.unit, description: definition.description };
    if (definition.kind === 'histogram') {
      const histogram = this.meter.createHistogram(definition.name, { ...options, advice: { explicitBucketBoundaries: [...(definition.boundaries ?? [])] } });
      return (value, attributes) => histogram.record(value, attributes);
    }
    const counter = this.meter.createCounter(definition.name, options);
    return (value, attributes) => counter.add(value, attributes);
  }

  close(): void {
    this.meter.removeBatchObservableCallback(this.observe, [...this.gauges.values()] as Observable[]);
  }
}
