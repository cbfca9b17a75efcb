import type { Batch, DeliveryTrace, DeliveryTraceOutcome, Tracing } from '@egress/core';
import { EgressConfigurationError } from '@egress/core';
import { context, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Link, type Span, type Tracer, type TracerProvider } from '@opentelemetry/api';
import { messagingAttributes as names, messagingSystem } from './messaging-attributes.js';
import { formatStoredTraceContext, parseStoredTraceContext, traceContextHeaders } from './stored-trace-context.js';

export interface OpenTelemetryTracingOptions {
  /** Where the spans go; the globally registered provider when not given (none registered: no spans, next to no cost). */
  tracerProvider?: TracerProvider;
}

/** The instrumentation scope Egress's spans carry. */
export const tracerName = '@egress/opentelemetry';

/**
 * Traces for Egress, following the OpenTelemetry messaging conventions: each accepted `send` is a
 * PRODUCER span `send <destination>` under the caller's active span, and its context is stored
 * with the event; each delivery attempt is a CONSUMER span `process <destination>` linked to the
 * send span of every event in the batch, wherever and whenever the attempt runs (a retry, another
 * worker process, a replayed dead letter). Adapters send the attempt's context on (`traceparent`).
 *
 * ```ts
 * createEgress({ destinations, store, tracing: openTelemetryTracing() });
 * ```
 */
export function openTelemetryTracing(options: OpenTelemetryTracingOptions = {}): Tracing {
  if (typeof options !== 'object' || options === null) throw new EgressConfigurationError('expected an options object', '[opentelemetry] openTelemetryTracing');
  const provider = options.tracerProvider;
  if (provider !== undefined && typeof provider?.getTracer !== 'function') {
    throw new EgressConfigurationError('option "tracerProvider" must be an OpenTelemetry TracerProvider (with getTracer)', '[opentelemetry] openTelemetryTracing');
  }
  // The global provider's tracer forwards to an SDK registered after this call, once there is one.
  const tracer: Tracer = (provider ?? trace.getTracerProvider()).getTracer(tracerName);
  const attributes = new SamplingAttributes();
  return {
    sent: (destination, eventId) => traceSend(tracer, attributes.of('send', destination), eventId),
    delivering: (batch) => traceDelivery(tracer, attributes.of('process', batch.destination), batch),
  };
}

/**
 * Runs for every event. The attributes the messaging conventions name as relevant to sampling are
 * given to startSpan, where a sampler sees them; the rest are set only on a span that records, so an
 * unsampled send, or one with no SDK, makes no more than it must.
 */
function traceSend(tracer: Tracer, { name, attributes }: SpanStart, eventId: string): string | undefined {
  const span = tracer.startSpan(name, { kind: SpanKind.PRODUCER, attributes });
  if (span.isRecording()) span.setAttribute(names.messageId, eventId);
  // The send is over once the event is accepted; the commit of a unit of work is the caller's span.
  span.end();
  return formatStoredTraceContext(span.spanContext());
}

function traceDelivery(tracer: Tracer, { name, attributes }: SpanStart, batch: Batch): DeliveryTrace | undefined {
  const { events } = batch;
  // A single event's delivery continues its send's trace, so one trace runs from the request that
  // sent it to the receiver; a batch of many starts a trace of its own, linked to each send. Never
  // the lane's ambient context: that belongs to whichever caller happened to wake the lane.
  let parent = ROOT_CONTEXT;
  const links: Link[] = [];
  for (const event of events) {
    const sendContext = parseStoredTraceContext(event.trace);
    if (sendContext === undefined) continue;
    links.push({ context: sendContext, attributes: { [names.messageId]: event.id } });
    if (events.length === 1) parent = trace.setSpanContext(ROOT_CONTEXT, sendContext);
  }
  const span = tracer.startSpan(name, { kind: SpanKind.CONSUMER, attributes, links }, parent);
  if (span.isRecording()) {
    span.setAttribute(names.batchId, batch.id);
    span.setAttribute(names.deliveryAttempt, batch.attempt);
    if (events.length === 1) span.setAttribute(names.messageId, events[0]!.id);
    else span.setAttribute(names.batchMessageCount, events.length);
  }
  const headers = traceContextHeaders(span.spanContext());
  // No SDK, or none that gave this span an identity: nothing to propagate, make active or end.
  if (headers === undefined && !span.isRecording()) return undefined;
  return new DeliverySpan(span, trace.setSpan(parent, span), headers);
}

/** A span's name and the attributes it is started with. */
interface SpanStart {
  readonly name: string;
  readonly attributes: Attributes;
}

/**
 * What the messaging conventions ask to be given at a span's creation, for samplers to decide by,
 * made once per operation and destination instead of per event. The SDK copies what it is given,
 * so the shared objects are never changed; they are frozen to be sure.
 */
class SamplingAttributes {
  private readonly send = new Map<string, SpanStart>();
  private readonly process = new Map<string, SpanStart>();

  of(operation: 'send' | 'process', destination: string): SpanStart {
    const made = this[operation];
    let start = made.get(destination);
    if (start === undefined) {
      const attributes = { [names.system]: messagingSystem, [names.operationType]: operation, [names.operationName]: operation, [names.destinationName]: destination };
      made.set(destination, (start = Object.freeze({ name: `${operation} ${destination}`, attributes: Object.freeze(attributes) })));
    }
    return start;
  }
}

/** One delivery attempt's span; methods rather than closures, since one is made per attempt. */
class DeliverySpan implements DeliveryTrace {
  constructor(
    private readonly span: Span,
    private readonly active: Context,
    readonly headers: Readonly<Record<string, string>> | undefined,
  ) {}

  run<T>(deliver: () => T): T {
    return context.with(this.active, deliver);
  }

  ended(outcome: DeliveryTraceOutcome): void {
    const { span } = this;
    // Unsampled: the span only carried the context on, and has nothing to record.
    if (span.isRecording()) {
      span.setAttributes({ [names.delivered]: outcome.delivered, [names.retrying]: outcome.retrying, [names.dead]: outcome.dead });
      if (outcome.error) {
        span.setAttribute(names.errorType, outcome.error.name);
        span.setStatus({ code: SpanStatusCode.ERROR, message: outcome.error.message });
      }
    }
    span.end();
  }
}
