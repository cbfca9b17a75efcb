import { EgressConfigurationError, parseDuration, type Duration, type Egress, type ErrorRecord } from '@egress/core';
import { metrics, type MeterProvider } from '@opentelemetry/api';
import { attributeKeys, metricDefinitions, type MetricAttributes, type MetricDefinition } from './metric-definitions.js';
import { MetricRegistry, type Recorder } from './metric-registry.js';
import { OpenTelemetryInstruments } from './opentelemetry-instruments.js';
import { prometheusContentType, writePrometheusText } from './prometheus-exposition.js';
import { QueueGauges, gaugeDefinitions, gaugeMetricReadings } from './queue-gauges.js';

export interface EgressMetricsOptions {
  /** Where the OpenTelemetry instruments come from; default the global provider of `@opentelemetry/api`, a no-op until an SDK registers one. */
  meterProvider?: MeterProvider;
  /** Destinations with at most this many partitions report queue gauges per partition; others one series per destination. Default 10. */
  partitionLimit?: number;
  /** How long one `egress.stats()` reading serves collections, so frequent scrapes do not each query the store. Default `'1s'`. */
  statsMaxAge?: Duration;
}

/** Egress's metrics, recorded from its events and read from `stats()`: as OpenTelemetry instruments and as Prometheus text. */
export interface EgressMetrics {
  /** Every metric in the Prometheus text exposition format. */
  prometheus(): Promise<string>;
  /** The content type to serve `prometheus()` with. */
  readonly prometheusContentType: string;
  /** Stops recording and detaches the gauges from the Meter; idempotent. */
  close(): void;
}

const instrumentationName = '@egress/opentelemetry';
const instrumentationVersion = '0.1.0';
const operation = { [attributeKeys.system]: 'egress', [attributeKeys.operationName]: 'deliver' } as const;

/**
 * Instruments an engine. Counters and histograms are recorded from its `delivered`, `retrying`,
 * `dead`, `dropped` and `lost` events; queue gauges are read from `stats()` when collected.
 */
export function createEgressMetrics(egress: Egress, options: EgressMetricsOptions = {}): EgressMetrics {
  const partitionLimit = options.partitionLimit ?? 10;
  if (!Number.isInteger(partitionLimit) || partitionLimit < 0) throw new EgressConfigurationError(`must be a whole number of partitions, 0 or more (got ${String(partitionLimit)})`, '[opentelemetry] option "partitionLimit"');
  const statsMaxAge = parseDuration(options.statsMaxAge ?? 1000);
  if (typeof statsMaxAge !== 'number') throw new EgressConfigurationError(statsMaxAge.error, '[opentelemetry] option "statsMaxAge"');

  const gauges = new QueueGauges(egress, partitionLimit, statsMaxAge);
  const registry = new MetricRegistry();
  const meter = (options.meterProvider ?? metrics.getMeterProvider()).getMeter(instrumentationName, instrumentationVersion);
  const counterDefinitions = Object.values(metricDefinitions).filter((definition) => definition.kind === 'counter');
  const instruments = new OpenTelemetryInstruments(
    meter,
    { counters: counterDefinitions, gauges: gaugeDefinitions },
    { counters: () => registry.readings().filter((reading) => reading.definition.kind === 'counter'), gauges: () => gauges.read() },
  );
  /** Counters are kept by the registry alone (the Meter observes its totals); histograms go to both. */
  const recorder = (definition: MetricDefinition): Recorder => {
    const kept = registry.recorder(definition);
    if (definition.kind !== 'histogram') return kept;
    const recorded = instruments.histogram(definition);
    return (value, attributes) => {
      kept(value, attributes);
      recorded(value, attributes);
    };
  };
  const sent = recorder(metricDefinitions.sentMessages);
  const operationDuration = recorder(metricDefinitions.operationDuration);
  const processDuration = recorder(metricDefinitions.processDuration);
  const latencyKept = registry.eachRecorder(metricDefinitions.deliveryLatency);
  const latencyRecorded = instruments.eachHistogram(metricDefinitions.deliveryLatency);
  const retried = recorder(metricDefinitions.retries);
  const deadLettered = recorder(metricDefinitions.deadLettered);
  const dropped = recorder(metricDefinitions.dropped);
  const lost = recorder(metricDefinitions.lost);

  const attributes = new AttributeCache();

  /**
   * An attempt whose batch half-succeeded is reported by several events, one after the other: its
   * events count under each outcome, its duration once, so the last attempt recorded is remembered.
   */
  let lastAttempt: { batchId: string; attempt: number } | undefined;
  const attempt = (event: { destination: string; batchId: string; attempt: number; eventIds: string[]; duration: number }, error: ErrorRecord | undefined): void => {
    const operationAttributes = attributes.get('operation', event.destination, error?.name);
    sent(event.eventIds.length, operationAttributes);
    if (lastAttempt?.batchId === event.batchId && lastAttempt.attempt === event.attempt) return;
    lastAttempt = { batchId: event.batchId, attempt: event.attempt };
    operationDuration(event.duration / 1000, operationAttributes);
    processDuration(event.duration / 1000, operationAttributes);
  };

  const unsubscribe = [
    egress.on('delivered', (event) => {
      attempt(event, undefined);
      const destination = attributes.get('destination', event.destination);
      // One observation per event, each with its own latency, in seconds.
      latencyKept(event.latencies, 1000, destination);
      latencyRecorded(event.latencies, 1000, destination);
    }),
    egress.on('retrying', (event) => {
      attempt(event, event.error);
      retried(event.eventIds.length, attributes.get('destination', event.destination, event.error.name));
    }),
    egress.on('dead', (event) => {
      attempt(event, event.error);
      deadLettered(event.eventIds.length, attributes.get('destination', event.destination, event.error.name));
    }),
    egress.on('dropped', (event) => dropped(event.count, { [attributeKeys.destination]: event.destination, reason: event.reason })),
    egress.on('lost', (event) => lost(event.count, { [attributeKeys.destination]: event.destination, reason: event.reason })),
  ];

  let closed = false;
  return {
    prometheusContentType,
    async prometheus() {
      const readings = gaugeMetricReadings(await gauges.read());
      return writePrometheusText([...registry.readings(), ...readings]);
    },
    close() {
      if (closed) return;
      closed = true;
      for (const stop of unsubscribe) stop();
      instruments.close();
    },
  };
}

/**
 * The attribute sets of the event metrics, made once per destination and error type: recording
 * reuses them instead of building an object per delivery, and the registry finds a series by them.
 */
class AttributeCache {
  private readonly sets = new Map<string, Map<string, MetricAttributes>>();

  get(kind: 'operation' | 'destination', destination: string, errorType?: string): MetricAttributes {
    const group = `${kind}\u0000${errorType ?? ''}`;
    let byDestination = this.sets.get(group);
    if (!byDestination) this.sets.set(group, (byDestination = new Map()));
    let found = byDestination.get(destination);
    if (!found) {
      const base = kind === 'operation' ? { ...operation, [attributeKeys.destination]: destination } : { [attributeKeys.destination]: destination };
      found = Object.freeze(errorType === undefined ? base : { ...base, [attributeKeys.errorType]: errorType });
      byDestination.set(destination, found);
    }
    return found;
  }
}
