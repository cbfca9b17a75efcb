import type { Batch, DeliveryTrace, DeliveryTraceOutcome, Tracing } from '@egress/core';
import { EgressConfigurationError } from '@egress/core';
import { context, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Link, type Span, type Tracer, type TracerProvider } from '@opentelemetry/api';
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
  return {
    sent: (destination, eventId) => traceSend(tracer, destination, eventId),
    delivering: (batch) => traceDelivery(tracer, batch),
  };
}

const producer = { kind: SpanKind.PRODUCER };

/**
 * Runs for every event, so without an SDK it makes no attributes: they are set once the span is
 * known to record (a sampler sees the name and kind, not the attributes).
 */
function traceSend(tracer: Tracer, destination: string, eventId: string): string | undefined {
  const span = tracer.startSpan(`send ${destination}`, producer);
  if (span.isRecording()) {
    span.setAttributes({
      [names.system]: messagingSystem,
      [names.operationType]: 'send',
      [names.operationName]: 'send',
      [names.destinationName]: destination,
      [names.messageId]: eventId,
    });
  }
  // The send is over once the event is accepted; the commit of a unit of work is the caller's span.
  span.end();
  return formatStoredTraceContext(span.spanContext());
}

function traceDelivery(tracer: Tracer, batch: Batch): DeliveryTrace {
  const links: Link[] = [];
  for (const event of batch.events) {
    const sendContext = parseStoredTraceContext(event.trace);
    if (sendContext) links.push({ context: sendContext, attributes: { [names.messageId]: event.id } });
  }
  const attributes: Attributes = {
    [names.system]: messagingSystem,
    [names.operationType]: 'process',
    [names.operationName]: 'process',
    [names.destinationName]: batch.destination,
    [names.batchId]: batch.id,
    [names.deliveryAttempt]: batch.attempt,
  };
  if (batch.events.length === 1) attributes[names.messageId] = batch.events[0]!.id;
  else attributes[names.batchMessageCount] = batch.events.length;
  // A single event's delivery continues its send's trace, so one trace runs from the request that
  // sent it to the receiver; a batch of many starts a trace of its own, linked to each send. Never
  // the lane's ambient context: that belongs to whichever caller happened to wake the lane.
  const single = batch.events.length === 1 ? links[0] : undefined;
  const parent = single ? trace.setSpanContext(ROOT_CONTEXT, single.context) : ROOT_CONTEXT;
  const span = tracer.startSpan(`process ${batch.destination}`, { kind: SpanKind.CONSUMER, attributes, links, root: !single }, parent);
  const active = trace.setSpan(parent, span);
  return {
    headers: traceContextHeaders(span.spanContext()),
    run: (deliver) => context.with(active, deliver),
    ended: (outcome) => endDelivery(span, outcome),
  };
}

function endDelivery(span: Span, outcome: DeliveryTraceOutcome): void {
  span.setAttributes({ [names.delivered]: outcome.delivered, [names.retrying]: outcome.retrying, [names.dead]: outcome.dead });
  if (outcome.error) {
    span.setAttribute(names.errorType, outcome.error.name);
    span.setStatus({ code: SpanStatusCode.ERROR, message: outcome.error.message });
  }
  span.end();
}
