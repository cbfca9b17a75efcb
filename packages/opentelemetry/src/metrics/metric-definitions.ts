/** What kind of instrument a metric is; gauges are read at collection time, the others recorded as events happen. */
export type MetricKind = 'counter' | 'histogram' | 'gauge';

/** One metric, defined once: the OpenTelemetry instruments and the Prometheus exposition are both made from it. */
export interface MetricDefinition {
  /** The OpenTelemetry name, e.g. `messaging.client.sent.messages`. */
  readonly name: string;
  readonly kind: MetricKind;
  /** UCUM unit: `s` for durations, `{message}` or `{event}` for counts. */
  readonly unit: string;
  readonly description: string;
  /** Histogram bucket boundaries, in the metric's unit. */
  readonly boundaries?: readonly number[];
}

/** The bucket boundaries the messaging semantic conventions advise for operation durations, in seconds. */
const durationBoundaries = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

/** From `send` to delivery spans queueing and retries, so the buckets reach further than one request's. */
const latencyBoundaries = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

/** The metrics Egress reports: the messaging semantic conventions where they fit, `egress.*` for the rest. */
export const metricDefinitions = {
  sentMessages: {
    name: 'messaging.client.sent.messages',
    kind: 'counter',
    unit: '{message}',
    description: 'Events handed to a destination in delivery attempts; failed attempts carry error.type.',
  },
  operationDuration: {
    name: 'messaging.client.operation.duration',
    kind: 'histogram',
    unit: 's',
    description: "Duration of each delivery attempt, from the adapter's deliver call to its outcome.",
    boundaries: durationBoundaries,
  },
  processDuration: {
    name: 'messaging.process.duration',
    kind: 'histogram',
    unit: 's',
    description: 'Duration of processing each batch taken from the queue; in Egress a batch is processed by its delivery attempt.',
    boundaries: durationBoundaries,
  },
  deliveryLatency: {
    name: 'egress.delivery.latency',
    kind: 'histogram',
    unit: 's',
    description: 'Seconds from send to confirmed delivery, one observation per delivered event, each measured from its own send.',
    boundaries: latencyBoundaries,
  },
  retries: {
    name: 'egress.events.retried',
    kind: 'counter',
    unit: '{event}',
    description: 'Events whose delivery failed and that were scheduled to be tried again.',
  },
  deadLettered: {
    name: 'egress.events.dead_lettered',
    kind: 'counter',
    unit: '{event}',
    description: 'Events moved to the dead-letter queue: a permanent failure, or retries exhausted.',
  },
  dropped: {
    name: 'egress.events.dropped',
    kind: 'counter',
    unit: '{event}',
    description: "Events refused at send because the store or the commit buffer was full and overflow is 'drop'.",
  },
  lost: {
    name: 'egress.events.lost',
    kind: 'counter',
    unit: '{event}',
    description: 'Accepted events that never reached the store (close timed out, or the store failed for good).',
  },
  waiting: {
    name: 'egress.events.waiting',
    kind: 'gauge',
    unit: '{event}',
    description: 'Events in the store waiting to be delivered (including those waiting for a retry).',
  },
  inFlight: {
    name: 'egress.events.in_flight',
    kind: 'gauge',
    unit: '{event}',
    description: 'Events claimed by a worker and being delivered.',
  },
  deadLetters: {
    name: 'egress.dead_letters',
    kind: 'gauge',
    unit: '{event}',
    description: 'Events in the dead-letter queue.',
  },
  oldestAge: {
    name: 'egress.events.oldest_age',
    kind: 'gauge',
    unit: 's',
    description: 'Age of the oldest event still waiting or in flight.',
  },
  buffered: {
    name: 'egress.events.buffered',
    kind: 'gauge',
    unit: '{event}',
    description: "Events accepted by this process and waiting in its commit buffer for the store.",
  },
  storeUp: {
    name: 'egress.store.up',
    kind: 'gauge',
    unit: '{status}',
    description: 'Whether the store is connected (1) or connecting, unreachable or failed (0).',
  },
} as const satisfies Record<string, MetricDefinition>;

/** Attribute keys, from the OpenTelemetry semantic conventions. */
export const attributeKeys = {
  system: 'messaging.system',
  operationName: 'messaging.operation.name',
  operationType: 'messaging.operation.type',
  destination: 'messaging.destination.name',
  partition: 'messaging.destination.partition.id',
  errorType: 'error.type',
  storeKind: 'egress.store.kind',
} as const;

export type MetricAttributes = Readonly<Record<string, string>>;
