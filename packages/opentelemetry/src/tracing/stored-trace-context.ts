import { createTraceState, INVALID_TRACEID, isSpanContextValid, type SpanContext } from '@opentelemetry/api';

/**
 * The text kept with each event in the store: the W3C `traceparent` of its send span, followed by
 * `;` and the `tracestate` when there is one. A traceparent never holds `;`, so the first one
 * separates them; both travel unchanged to whichever process delivers the event.
 */
export function formatStoredTraceContext(spanContext: SpanContext): string | undefined {
  // A send outside any trace with no SDK: the cheap comparison answers before the full check.
  if (spanContext.traceId === INVALID_TRACEID || !isSpanContextValid(spanContext)) return undefined;
  const traceparent = formatTraceparent(spanContext);
  const tracestate = spanContext.traceState?.serialize();
  return tracestate ? `${traceparent};${tracestate}` : traceparent;
}

/** The span context a stored text names, marked remote; undefined for text that is not one. */
export function parseStoredTraceContext(text: string | undefined): SpanContext | undefined {
  if (text === undefined) return undefined;
  const separator = text.indexOf(';');
  const traceparent = separator === -1 ? text : text.slice(0, separator);
  const match = traceparentPattern.exec(traceparent);
  if (!match) return undefined;
  const spanContext: SpanContext = {
    traceId: match[1]!,
    spanId: match[2]!,
    traceFlags: Number.parseInt(match[3]!, 16),
    isRemote: true,
    ...(separator === -1 ? {} : { traceState: createTraceState(text.slice(separator + 1)) }),
  };
  return isSpanContextValid(spanContext) ? spanContext : undefined;
}

/** W3C Trace Context headers for what a delivery attempt sends, or undefined when the span context is invalid. */
export function traceContextHeaders(spanContext: SpanContext): Readonly<Record<string, string>> | undefined {
  if (!isSpanContextValid(spanContext)) return undefined;
  const traceparent = formatTraceparent(spanContext);
  const tracestate = spanContext.traceState?.serialize();
  return tracestate ? { traceparent, tracestate } : { traceparent };
}

const traceparentPattern = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

function formatTraceparent(spanContext: SpanContext): string {
  return `00-${spanContext.traceId}-${spanContext.spanId}-${(spanContext.traceFlags & 0xff).toString(16).padStart(2, '0')}`;
}
