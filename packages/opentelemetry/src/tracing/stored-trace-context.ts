import { createTraceState, INVALID_SPANID, INVALID_TRACEID, type SpanContext } from '@opentelemetry/api';

// These run for every event and every delivery attempt, so they read and write the fixed W3C layout
// (`00-`, 32 hex digits, `-`, 16 hex digits, `-`, 2 hex digits) by position.

/**
 * The text kept with each event in the store: the W3C `traceparent` of its send span, followed by
 * `;` and the `tracestate` when there is one. A traceparent never holds `;`, so the first one
 * separates them; both travel unchanged to whichever process delivers the event.
 */
export function formatStoredTraceContext(spanContext: SpanContext): string | undefined {
  const traceparent = formatTraceparent(spanContext);
  if (traceparent === undefined) return undefined;
  const tracestate = spanContext.traceState?.serialize();
  return tracestate ? `${traceparent};${tracestate}` : traceparent;
}

/** The span context a stored text names, marked remote; undefined for text that is not one. */
export function parseStoredTraceContext(text: string | undefined): SpanContext | undefined {
  if (text === undefined) return undefined;
  if (text.length !== traceparentLength && text.charCodeAt(traceparentLength) !== semicolon) return undefined;
  if (!text.startsWith('00-') || text.charCodeAt(35) !== dash || text.charCodeAt(52) !== dash) return undefined;
  if (!isHexId(text, 3, 35) || !isHexId(text, 36, 52)) return undefined;
  const traceFlags = hexByte(text, 53);
  if (traceFlags === -1) return undefined;
  const spanContext: SpanContext = { traceId: text.slice(3, 35), spanId: text.slice(36, 52), traceFlags, isRemote: true };
  if (text.length > traceparentLength) spanContext.traceState = createTraceState(text.slice(traceparentLength + 1));
  return spanContext;
}

/**
 * W3C Trace Context headers for what a delivery attempt sends, or undefined when the span context
 * is invalid (nothing to continue, as with no SDK registered).
 */
export function traceContextHeaders(spanContext: SpanContext): Readonly<Record<string, string>> | undefined {
  const traceparent = formatTraceparent(spanContext);
  if (traceparent === undefined) return undefined;
  const tracestate = spanContext.traceState?.serialize();
  return tracestate ? { traceparent, tracestate } : { traceparent };
}

/**
 * The `traceparent` of a span context, or undefined for the invalid one a tracer with no SDK hands
 * out. The ids are not checked digit by digit: they come from the tracer, and what is read back from
 * the store is checked there.
 */
function formatTraceparent({ traceId, spanId, traceFlags }: SpanContext): string | undefined {
  if (traceId === INVALID_TRACEID || spanId === INVALID_SPANID || traceId.length !== 32 || spanId.length !== 16) return undefined;
  return `00-${traceId}-${spanId}-${traceFlags === 1 ? '01' : traceFlags === 0 ? '00' : (traceFlags & 0xff).toString(16).padStart(2, '0')}`;
}

const traceparentLength = 55;
const dash = 0x2d;
const semicolon = 0x3b;

/** Whether `text[start, end)` is lowercase hex digits and not all zeros, as W3C requires of trace and span ids. */
function isHexId(text: string, start: number, end: number): boolean {
  let nonZero = false;
  for (let index = start; index < end; index++) {
    const code = text.charCodeAt(index);
    if (code === 0x30) continue;
    if (!((code > 0x30 && code <= 0x39) || (code >= 0x61 && code <= 0x66))) return false;
    nonZero = true;
  }
  return nonZero;
}

/** The value of two lowercase hex digits at `start`, or -1. */
function hexByte(text: string, start: number): number {
  const high = hexDigit(text.charCodeAt(start));
  const low = hexDigit(text.charCodeAt(start + 1));
  return high === -1 || low === -1 ? -1 : high * 16 + low;
}

function hexDigit(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  if (code >= 0x61 && code <= 0x66) return code - 0x61 + 10;
  return -1;
}
