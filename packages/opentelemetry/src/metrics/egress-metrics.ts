import { EgressConfigurationError, parseDuration, type Duration, type Egress } from '@egress/core';
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
  let lastBatchId: string | undefined;
  let lastAttempt = 0;
  const attempt = (event: { batchId: string; attempt: number; eventIds: string[]; duration: number }, sets: AttributeSets): void => {
    sent(event.eventIds.length, sets.operation);
    if (lastBatchId === event.batchId && lastAttempt === event.attempt) return;
    lastBatchId = event.batchId;
    lastAttempt = event.attempt;
    operationDuration(event.duration / 1000, sets.operation);
    processDuration(event.duration / 1000, sets.operation);
  };

  const unsubscribe = [
    egress.on('delivered', (event) => {
      const sets = attributes.get(event.destination);
      attempt(event, sets);
      // One observation per event, each with its own latency, in seconds.
      latencyKept(event.latencies, 1000, sets.destination);
      latencyRecorded(event.latencies, 1000, sets.destination);
    }),
    egress.on('retrying', (event) => {
      const sets = attributes.get(event.destination, event.error.name);
      attempt(event, sets);
      retried(event.eventIds.length, sets.destination);
    }),
    egress.on('dead', (event) => {
      const sets = attributes.get(event.destination, event.error.name);
      attempt(event, sets);
      deadLettered(event.eventIds.length, sets.destination);
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

/** The attribute sets a destination's event metrics are recorded under, for one error type or none. */
interface AttributeSets {
  /** The messaging operation's: system, operation name, destination (and error type). */
  readonly operation: MetricAttributes;
  /** The destination's (and error type). */
  readonly destination: MetricAttributes;
}

/**
 * The attribute sets of the event metrics, made once per destination and error type: recording
 * reuses them instead of building an object per delivery, and the registry finds a series by them.
 * A delivery finds its sets with one lookup; failures, with a second by error type.
 */
class AttributeCache {
  private readonly byDestination = new Map<string, { succeeded: AttributeSets; failed: Map<string, AttributeSets> }>();

  get(destination: string, errorType?: string): AttributeSets {
    let entry = this.byDestination.get(destination);
    if (!entry) this.byDestination.set(destination, (entry = { succeeded: attributeSets(destination, undefined), failed: new Map() }));
    if (errorType === undefined) return entry.succeeded;
    let failed = entry.failed.get(errorType);
    if (!failed) entry.failed.set(errorType, (failed = attributeSets(destination, errorType)));
    return failed;
  }
}

function attributeSets(destination: string, errorType: string | undefined): AttributeSets {
  const error: MetricAttributes = errorType === undefined ? {} : { [attributeKeys.errorType]: errorType };
  return {
    operation: Object.freeze({ ...operation, [attributeKeys.destination]: destination, ...error }),
    destination: Object.freeze({ [attributeKeys.destination]: destination, ...error }),
  };
}
